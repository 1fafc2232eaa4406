import pytest

from safecity.events.store import EventQuery, EventStore
from safecity.governance.alerts import record_followup, review_alert
from safecity.governance.audit import AuditLog
from safecity.governance.watchlists import GovernanceError
from safecity.records import Event


def test_alerts_need_a_person_before_follow_up(store_url, tmp_path):
    store = EventStore(store_url, tmp_path / "media")
    store.add_events(
        [
            Event(camera="gate", type="face_match", label="Person A", start_ts=100.0, score=0.7),
            Event(camera="gate", type="plate_match", label="AB12CDE", start_ts=200.0, score=0.9),
            Event(camera="gate", type="motion", start_ts=300.0),
        ]
    )
    rows = {r.type: r for r in store.search(EventQuery())[0]}
    face, plate, motion = rows["face_match"], rows["plate_match"], rows["motion"]
    assert face.review_state == plate.review_state == "pending" and motion.review_state is None

    with pytest.raises(GovernanceError, match="confirm it before"):
        record_followup(store, face.id, "op:carol", "officer sent")
    with pytest.raises(GovernanceError, match="not an alert"):
        review_alert(store, motion.id, "confirmed", "op:carol", "looked")
    with pytest.raises(GovernanceError, match="needs a note"):
        review_alert(store, face.id, "confirmed", "op:carol", " ")

    review_alert(store, face.id, "confirmed", "op:carol", "compared with the reference photo")
    record_followup(store, face.id, "op:carol", "patrol informed")
    review_alert(store, plate.id, "rejected", "op:carol", "plate misread: AB12CDF")
    with pytest.raises(GovernanceError, match="rejected already"):
        review_alert(store, plate.id, "confirmed", "op:dave", "second opinion")
    with pytest.raises(GovernanceError, match="is rejected"):
        record_followup(store, plate.id, "op:carol", "stop vehicle")

    # a replayed alert (same key) must not reset its review
    store.add_events([Event(camera="gate", type="face_match", label="Person A", start_ts=100.0, score=0.7)])
    assert store.get(face.id).review_state == "confirmed" and store.get(face.id).reviewed_by == "op:carol"
    actions = [r.action for r in AuditLog(store.engine).records()]
    assert actions == ["alert.confirm", "alert.followup", "alert.reject"]
    store.close()
