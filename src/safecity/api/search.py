"""Event queries the console needs besides search (which is :meth:`EventStore.search`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Sequence

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from safecity.events.models import EventRow


def recent_events(engine: Engine, limit: int = 20) -> Sequence[EventRow]:
    with Session(engine) as session:
        return session.scalars(select(EventRow).order_by(EventRow.id.desc()).limit(limit)).all()


def newest_snapshot(engine: Engine, camera: str) -> EventRow | None:
    """The camera's most recent event that has a snapshot (the tile when no live frame exists)."""
    with Session(engine) as session:
        return session.scalar(
            select(EventRow)
            .where(EventRow.camera == camera, EventRow.snapshot.is_not(None))
            .order_by(EventRow.id.desc())
            .limit(1)
        )


def event_types(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(session.scalars(select(EventRow.type).distinct()).all())


def hourly_counts(engine: Engine, hours: int = 24, now: datetime | None = None) -> list[tuple[datetime, int]]:
    """Events per hour over the last ``hours`` hours, oldest first, empty hours included.

    Only start times are read (not whole rows), and bucketing is done here so that the
    same code runs on SQLite and PostgreSQL.
    """
    now = (now or datetime.now(timezone.utc)).replace(minute=0, second=0, microsecond=0)
    first = now - timedelta(hours=hours - 1)
    counts = {first + timedelta(hours=i): 0 for i in range(hours)}
    with Session(engine) as session:
        for (start,) in session.execute(select(EventRow.start_time).where(EventRow.start_time >= first)):
            bucket = start.replace(minute=0, second=0, microsecond=0)
            if bucket in counts:
                counts[bucket] += 1
    return sorted(counts.items())
