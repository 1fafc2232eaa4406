"""Event queries the API and console need beyond the store's basic search.

Plate text and watchlist entry live in the event's JSON ``attributes`` (``plate``,
``entry_id``); SQLAlchemy's JSON accessors compile to ``json_extract`` on SQLite and
``->>`` on PostgreSQL, so one query serves both stores. Callers audit the search.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from safecity.events.models import EventRow


@dataclass(slots=True)
class EventFilter:
    camera: str | None = None
    type: str | None = None
    label: str | None = None
    after: datetime | None = None
    before: datetime | None = None
    plate: str | None = None  # partial, case and punctuation ignored
    entry_id: int | None = None
    limit: int = 50
    offset: int = 0

    def audit_details(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items() if v not in (None, "")}


def normalise_plate(text: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def _statement(f: EventFilter):
    statement = select(EventRow)
    if f.camera:
        statement = statement.where(EventRow.camera == f.camera)
    if f.type:
        statement = statement.where(EventRow.type == f.type)
    if f.label:
        statement = statement.where(EventRow.label == f.label)
    if f.after:
        statement = statement.where(EventRow.start_time >= f.after)
    if f.before:
        statement = statement.where(EventRow.start_time < f.before)
    if f.plate and normalise_plate(f.plate):
        plate = func.upper(EventRow.attributes["plate"].as_string())
        statement = statement.where(plate.contains(normalise_plate(f.plate), autoescape=True))
    if f.entry_id is not None:
        statement = statement.where(EventRow.attributes["entry_id"].as_integer() == f.entry_id)
    return statement


def search_events(engine: Engine, f: EventFilter) -> tuple[Sequence[EventRow], int]:
    """Matching events, newest first, and how many match in all."""
    statement = _statement(f)
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
        rows = session.scalars(
            statement.order_by(EventRow.start_time.desc(), EventRow.id.desc()).limit(f.limit).offset(f.offset)
        ).all()
    return rows, total


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
