"""Alerts wait for a person: a match is confirmed or rejected before anyone acts on it.

A face or plate match is stored as ``pending``. Only a confirmed alert accepts a
follow-up (an action taken because of it); a rejected one is closed as a false
alert, which the accuracy reports count. Every decision and follow-up is audited.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.orm import Session

from safecity.events.models import EventRow
from safecity.events.store import EventStore
from safecity.governance.audit import AuditLog
from safecity.governance.watchlists import GovernanceError
from safecity.records import ALERT_TYPES

DECISIONS = ("confirmed", "rejected")


def review_alert(store: EventStore, event_id: int, decision: str, actor: str, note: str) -> None:
    if decision not in DECISIONS:
        raise GovernanceError(f"decision must be one of {', '.join(DECISIONS)}")
    if not note.strip():
        raise GovernanceError("a review needs a note saying what was checked")
    with Session(store.engine) as session, session.begin():
        row = session.get(EventRow, event_id)
        if row is None or row.type not in ALERT_TYPES:
            raise GovernanceError(f"event {event_id} is not an alert")
        if row.review_state != "pending":
            raise GovernanceError(f"alert {event_id} was {row.review_state} already by {row.reviewed_by}")
        row.review_state, row.reviewed_by, row.review_note = decision, actor, note.strip()
        row.reviewed_at = datetime.now(timezone.utc)
    action = {"confirmed": "alert.confirm", "rejected": "alert.reject"}[decision]
    AuditLog(store.engine).append(actor, action, "event", event_id, note.strip())


def record_followup(store: EventStore, event_id: int, actor: str, action: str) -> None:
    """Record what was done because of an alert; refused unless a person confirmed it."""
    row = store.get(event_id)
    if row is None or row.type not in ALERT_TYPES:
        raise GovernanceError(f"event {event_id} is not an alert")
    if row.review_state != "confirmed":
        raise GovernanceError(f"alert {event_id} is {row.review_state}: confirm it before recording a follow-up")
    if not action.strip():
        raise GovernanceError("say what was done")
    AuditLog(store.engine).append(actor, "alert.followup", "event", event_id, action.strip())
