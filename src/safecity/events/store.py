"""The event store: events in SQL, snapshots as files beside the database.

Writes are idempotent by event key, so a replayed segment or a restarted worker never
duplicates an event. Searching goes through :meth:`EventStore.search`; the API and CLI
add the audit record, since they know who asked and why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from safecity.db import make_engine, sqlite_path, upgrade
from safecity.events.media import MediaStore
from safecity.events.models import EventRow
from safecity.records import ALERT_TYPES, Event, normalise_plate


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


@dataclass(slots=True)
class EventQuery:
    """What to search for; ``plate`` is partial, case and punctuation ignored.

    Plate text and watchlist entry live in the event's JSON ``attributes`` (``plate``,
    ``entry_id``); SQLAlchemy's JSON accessors compile to ``json_extract`` on SQLite and
    ``->>`` on PostgreSQL, so one query serves both stores.
    """

    camera: str | None = None
    type: str | None = None
    label: str | None = None
    after: datetime | None = None
    before: datetime | None = None
    plate: str | None = None
    entry_id: int | None = None
    limit: int = 50
    offset: int = 0

    def audit_details(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items() if v not in (None, "")}


def default_media_dir(url: str) -> Path:
    path = sqlite_path(url)
    return (path.parent if path is not None else Path("var")) / "media"


class EventStore:
    def __init__(self, url: str, media_dir: str | Path | None = None, *, migrate: bool = True) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        if migrate:
            upgrade(self.engine)
        self.media = MediaStore(Path(media_dir) if media_dir else default_media_dir(url))

    @classmethod
    def from_config(cls, store_config) -> "EventStore":
        return cls(store_config.url, store_config.media_dir)

    def close(self) -> None:
        self.engine.dispose()

    def add_events(self, events: Iterable[Event]) -> int:
        """Store events and their snapshots; returns how many keys were new.

        An event published again under the same key (an ongoing event that has now
        ended) updates the stored row; a replayed identical event changes nothing.
        """
        rows: dict[str, dict] = {}
        now = datetime.now(timezone.utc)
        for event in events:
            snapshot = None
            if event.snapshot is not None:
                snapshot = self.media.save_snapshot(event.camera, event.key, event.start_ts, event.snapshot)
            rows[event.key] = {
                "key": event.key,
                "camera": event.camera,
                "type": event.type,
                "label": event.label,
                "start_time": _utc(event.start_ts),
                "end_time": _utc(event.end_ts) if event.end_ts is not None else None,
                "score": event.score,
                "box": [round(float(v), 1) for v in event.box] if event.box is not None else None,
                "attributes": event.attributes,
                "snapshot": snapshot,
                "created_at": now,
                "review_state": "pending" if event.type in ALERT_TYPES else None,
            }
        if not rows:
            return 0
        insert = (pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert)(EventRow)
        statement = insert.values(list(rows.values())).on_conflict_do_update(
            index_elements=["key"],
            set_={name: insert.excluded[name] for name in ("end_time", "score", "box", "attributes", "snapshot")},
        )
        with self.engine.begin() as connection:
            known = connection.scalars(select(EventRow.key).where(EventRow.key.in_(rows))).all()
            connection.execute(statement)
        return len(rows) - len(known)

    def _filtered(self, query: EventQuery):
        statement = select(EventRow)
        if query.camera:
            statement = statement.where(EventRow.camera == query.camera)
        if query.type:
            statement = statement.where(EventRow.type == query.type)
        if query.label:
            statement = statement.where(EventRow.label == query.label)
        if query.after:
            statement = statement.where(EventRow.start_time >= query.after)
        if query.before:
            statement = statement.where(EventRow.start_time < query.before)
        if query.plate and normalise_plate(query.plate):
            plate = func.upper(EventRow.attributes["plate"].as_string())
            statement = statement.where(plate.contains(normalise_plate(query.plate), autoescape=True))
        if query.entry_id is not None:
            statement = statement.where(EventRow.attributes["entry_id"].as_integer() == query.entry_id)
        return statement

    def search(self, query: EventQuery) -> tuple[Sequence[EventRow], int]:
        """Events matching ``query``, newest first, and the total that match."""
        statement = self._filtered(query)
        with Session(self.engine) as session:
            total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
            rows = session.scalars(
                statement.order_by(EventRow.start_time.desc(), EventRow.id.desc())
                .limit(query.limit)
                .offset(query.offset)
            ).all()
        return rows, total

    def get(self, event_id: int) -> EventRow | None:
        with Session(self.engine) as session:
            return session.get(EventRow, event_id)

    def count(self) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(EventRow)) or 0

    def snapshot_path(self, row: EventRow) -> Path | None:
        return self.media.path(row.snapshot) if row.snapshot else None
