"""Retention: rows and files past their keeping period are deleted, and the deletion audited.

Each event type has a limit (``retention`` in the config). Snapshots of events that
raised no alert go sooner (``media_days``): the event row stays, its picture goes.
Alerts (face and plate matches) keep their media as long as the event itself.
The audit log is never subject to retention.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from safecity.config import Retention
from safecity.events.models import EventRow
from safecity.events.store import EventStore
from safecity.governance.audit import AuditLog
from safecity.records import ALERT_TYPES

log = logging.getLogger(__name__)

_DAYS_BY_TYPE = {
    "face_match": "face_matches_days",
    "plate_read": "plate_reads_days",
    "plate_match": "plate_reads_days",
    "line_crossing": "counts_days",
    "zone_occupancy": "counts_days",
    "zone_dwell": "counts_days",
    "count": "counts_days",
}
BATCH = 500


def days_for(retention: Retention, event_type: str) -> int:
    return getattr(retention, _DAYS_BY_TYPE.get(event_type, "events_days"))


@dataclass
class RetentionReport:
    dry_run: bool
    events_by_type: dict[str, int] = field(default_factory=dict)
    media_files: int = 0
    incident_results: int = 0  # cross-camera search results of ended incidents (audited on their own)
    cutoffs: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.events_by_type.values()) + self.media_files


class RetentionJob:
    def __init__(self, store: EventStore, retention: Retention, actor: str = "system:retention") -> None:
        self.store = store
        self.retention = retention
        self.actor = actor

    def run(self, dry_run: bool = False, now: datetime | None = None) -> RetentionReport:
        now = now or datetime.now(timezone.utc)
        report = RetentionReport(dry_run=dry_run)
        with Session(self.store.engine) as session:
            types = session.scalars(select(EventRow.type).distinct()).all()
        for event_type in sorted(types):
            cutoff = now - timedelta(days=days_for(self.retention, event_type))
            report.cutoffs[event_type] = cutoff.isoformat()
            count = self._expire_events(event_type, cutoff, dry_run)
            if count:
                report.events_by_type[event_type] = count
        media_cutoff = now - timedelta(days=self.retention.media_days)
        report.cutoffs["media"] = media_cutoff.isoformat()
        report.media_files = self._expire_media(media_cutoff, dry_run)
        if not dry_run:
            from safecity.governance.incidents import IncidentService

            report.incident_results = IncidentService(self.store, self.actor).purge_expired()
        if report.total and not dry_run:
            AuditLog(self.store.engine).append(
                self.actor,
                "retention.delete",
                "events",
                "*",
                "retention limits",
                {"events_by_type": report.events_by_type, "media_files": report.media_files, "cutoffs": report.cutoffs},
            )
        return report

    def _expire_events(self, event_type: str, cutoff: datetime, dry_run: bool) -> int:
        due = select(EventRow.id, EventRow.snapshot).where(EventRow.type == event_type, EventRow.start_time < cutoff)
        if dry_run:
            with Session(self.store.engine) as session:
                return session.scalar(select(func.count()).select_from(due.subquery())) or 0
        deleted = 0
        while True:
            with Session(self.store.engine) as session, session.begin():
                rows = session.execute(due.order_by(EventRow.id).limit(BATCH)).all()
                if not rows:
                    return deleted
                session.execute(delete(EventRow).where(EventRow.id.in_([r.id for r in rows])))
            for row in rows:  # files go once their rows are gone for good
                self._unlink(row.snapshot)
            deleted += len(rows)

    def _expire_media(self, cutoff: datetime, dry_run: bool) -> int:
        due = select(EventRow.id, EventRow.snapshot).where(
            EventRow.snapshot.is_not(None), EventRow.type.not_in(ALERT_TYPES), EventRow.start_time < cutoff
        )
        if dry_run:
            with Session(self.store.engine) as session:
                return session.scalar(select(func.count()).select_from(due.subquery())) or 0
        cleared = 0
        while True:
            with Session(self.store.engine) as session, session.begin():
                rows = session.execute(due.order_by(EventRow.id).limit(BATCH)).all()
                if not rows:
                    return cleared
                ids = [r.id for r in rows]
                session.execute(update(EventRow).where(EventRow.id.in_(ids)).values(snapshot=None))
            for row in rows:
                self._unlink(row.snapshot)
            cleared += len(rows)

    def _unlink(self, snapshot: str | None) -> None:
        if not snapshot:
            return
        try:
            self.store.media.path(snapshot).unlink(missing_ok=True)
        except (OSError, ValueError) as error:
            log.warning("retention: could not delete %s: %s", snapshot, error)
