"""Incidents and the cross-camera search that only exists inside one.

Following a person or vehicle across cameras is powerful, so it is fenced in: a
search needs an open incident (who opened it, why, until when), every search is
audited, its results are stored under the incident only, and they are deleted when
the incident is closed or expires (:meth:`IncidentService.purge_expired`, run by
the retention job). Similarity uses clothing/vehicle colour, never face identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import cv2
from sqlalchemy import Float, ForeignKey, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from safecity.db import Base, UTCDateTime
from safecity.events.models import EventRow
from safecity.events.store import EventStore
from safecity.governance.audit import AuditLog
from safecity.governance.watchlists import GovernanceError
from safecity.tracking.appearance import describe, similarity

MAX_INCIDENT_DAYS = 30


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text)
    opened_by: Mapped[str] = mapped_column(String(256))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def is_open(self, now: datetime) -> bool:
        return self.closed_at is None and self.expires_at > now


class IncidentResult(Base):
    __tablename__ = "incident_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    query_event_id: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class Reappearance:
    event_id: int
    camera: str
    label: str | None
    start_time: datetime
    score: float


def _now() -> datetime:
    return datetime.now(timezone.utc)


class IncidentService:
    def __init__(self, store: EventStore, actor: str) -> None:
        self.store = store
        self.actor = actor
        self.audit = AuditLog(store.engine)

    def open(self, title: str, reason: str, days: float = 7) -> int:
        if not title.strip() or not reason.strip():
            raise GovernanceError("an incident needs a title and a reason")
        if not 0 < days <= MAX_INCIDENT_DAYS:
            raise GovernanceError(f"an incident lasts at most {MAX_INCIDENT_DAYS} days")
        now = _now()
        with Session(self.store.engine, expire_on_commit=False) as session, session.begin():
            incident = Incident(
                title=title.strip(), reason=reason.strip(), opened_by=self.actor, opened_at=now,
                expires_at=now + timedelta(days=days),
            )
            session.add(incident)
        self.audit.append(self.actor, "incident.open", "incident", incident.id, reason, {"title": title, "days": days})
        return incident.id

    def close(self, incident_id: int, reason: str) -> int:
        """Close an incident; its search results go with it. Returns how many were deleted."""
        with Session(self.store.engine) as session, session.begin():
            incident = self._incident(session, incident_id)
            incident.closed_at = _now()
            deleted = session.execute(delete(IncidentResult).where(IncidentResult.incident_id == incident_id)).rowcount
        self.audit.append(self.actor, "incident.close", "incident", incident_id, reason, {"results_deleted": deleted})
        return deleted or 0

    def purge_expired(self) -> int:
        """Delete the results of every incident that is closed or past its expiry."""
        now = _now()
        with Session(self.store.engine) as session, session.begin():
            ended = select(Incident.id).where((Incident.closed_at.is_not(None)) | (Incident.expires_at <= now))
            deleted = session.execute(delete(IncidentResult).where(IncidentResult.incident_id.in_(ended))).rowcount
        if deleted:
            self.audit.append("system:retention", "incident.purge", "incident_results", "*", "incident ended",
                              {"deleted": deleted})
        return deleted or 0

    def _incident(self, session: Session, incident_id: int) -> Incident:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise GovernanceError(f"no incident {incident_id}")
        return incident

    def search(
        self, incident_id: int, event_id: int, reason: str, window_minutes: float = 30, limit: int = 20,
        min_score: float = 0.5,
    ) -> list[Reappearance]:
        """Likely reappearances of the tracked object of ``event_id`` on other cameras."""
        if not reason.strip():
            raise GovernanceError("a search needs a reason")
        now = _now()
        with Session(self.store.engine) as session:
            incident = self._incident(session, incident_id)
            if not incident.is_open(now):
                raise GovernanceError(f"incident {incident_id} is closed or expired")
            query = session.get(EventRow, event_id)
            if query is None or query.type != "object" or not query.snapshot or not query.box:
                raise GovernanceError(f"event {event_id} is not a tracked person or vehicle with a snapshot")
            family = query.attributes.get("family", query.label)
            window = timedelta(minutes=window_minutes)
            candidates = session.scalars(
                select(EventRow).where(
                    EventRow.type == "object",
                    EventRow.camera != query.camera,
                    EventRow.start_time >= query.start_time - window,
                    EventRow.start_time <= query.start_time + window,
                    EventRow.snapshot.is_not(None),
                )
            ).all()
        target = self._descriptor(query, family)
        found = []
        for candidate in candidates:
            if candidate.attributes.get("family", candidate.label) != family or not candidate.box:
                continue
            descriptor = self._descriptor(candidate, family)
            if descriptor is None:
                continue
            score = similarity(target, descriptor)
            if score >= min_score:
                found.append(Reappearance(candidate.id, candidate.camera, candidate.label, candidate.start_time, score))
        found.sort(key=lambda r: r.score, reverse=True)
        found = found[:limit]
        with Session(self.store.engine) as session, session.begin():
            session.add_all(
                IncidentResult(incident_id=incident_id, query_event_id=event_id, event_id=r.event_id, score=r.score,
                               created_at=now)
                for r in found
            )
        self.audit.append(
            self.actor, "incident.search", "incident", incident_id, reason,
            {"event": event_id, "window_minutes": window_minutes, "candidates": len(candidates),
             "results": [r.event_id for r in found]},
        )
        return found

    def results(self, incident_id: int) -> list[IncidentResult]:
        with Session(self.store.engine) as session:
            return list(session.scalars(select(IncidentResult).where(IncidentResult.incident_id == incident_id)))

    def _descriptor(self, row: EventRow, family: str):
        path = self.store.snapshot_path(row)
        image = cv2.imread(str(path)) if path is not None and path.is_file() else None
        if image is None:
            return None
        try:
            return describe(image, row.box, family)
        except ValueError:
            return None
