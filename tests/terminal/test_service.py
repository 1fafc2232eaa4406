"""Sites and enrolments on the central database: consent first, own tables, everything audited."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from safecity.events.store import EventQuery, EventStore
from safecity.faces.calibration import OPERATING_THRESHOLD
from safecity.governance.audit import AuditLog
from safecity.governance.models import FaceTemplate
from safecity.governance.watchlists import WatchlistService
from safecity.terminal.decisions import Decision, badge_digest
from safecity.terminal.models import TerminalEnrolment, TerminalTemplate
from safecity.terminal.service import Consent, FaceEnroller, TerminalError, TerminalService

NOW = datetime.now(timezone.utc)
CONSENT = Consent("Ann Example", NOW - timedelta(hours=1), "signed paper form", "F-2026-17")


@pytest.fixture
def central(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'var' / 'safecity.db'}")
    yield store
    store.close()


@pytest.fixture(scope="module")
def enroller(verifier):
    return FaceEnroller(verifier.pipeline)


def actions(store) -> list[str]:
    return [r.action for r in AuditLog(store.engine).records()]


def test_enrolment_needs_a_consent_record_and_refuses_without_storing_anything(central, people, enroller):
    svc = TerminalService(central.engine, "user:sam")
    svc.create_site("hq", "new office door")
    photo = [("ann.jpg", people("s10").enrolment_jpeg())]
    for missing in (
        Consent("", CONSENT.given_at, CONSENT.method),
        Consent("Ann Example", CONSENT.given_at, "  "),
        Consent("Ann Example", CONSENT.given_at.replace(tzinfo=None), CONSENT.method),
        Consent("Ann Example", NOW + timedelta(days=2), CONSENT.method),
    ):
        with pytest.raises(TerminalError, match="consent"):
            svc.enrol("hq", "1234", "Ann Example", missing, photo, "new starter", enroller)
    with Session(central.engine) as session:
        assert session.scalar(select(func.count()).select_from(TerminalEnrolment)) == 0
    assert "terminal.enrol" not in actions(central)

    enrolment = svc.enrol("hq", "1234", "Ann Example", CONSENT, photo, "new starter", enroller)
    [view] = svc.enrolments("hq", "checking the new starter")
    assert (view.id, view.consent_subject, view.consent_method, view.consent_reference) == (
        enrolment, "Ann Example", "signed paper form", "F-2026-17",
    )
    assert view.consent_recorded_by == "user:sam" and view.templates == 1
    record = [r.as_dict() for r in AuditLog(central.engine).records() if r.action == "terminal.enrol"][0]
    assert record["details"]["consent"]["method"] == "signed paper form" and record["reason"] == "new starter"
    assert "1234" not in str(record)  # the badge number itself is nowhere in the log
    with pytest.raises(TerminalError, match="enrolled at 'hq' already"):
        svc.enrol("hq", "1234", "Ann Again", CONSENT, photo, "twice", enroller)


def test_terminal_templates_stay_in_their_own_tables_and_never_reach_a_watchlist(central, people, enroller):
    svc = TerminalService(central.engine, "user:sam")
    svc.create_site("hq", "door")
    svc.enrol("hq", "1234", "Ann Example", CONSENT, [("ann.jpg", people("s10").enrolment_jpeg())], "starter", enroller)
    with Session(central.engine) as session:
        assert session.scalar(select(func.count()).select_from(TerminalTemplate)) == 1
        assert session.scalar(select(func.count()).select_from(FaceTemplate)) == 0
    gallery = WatchlistService(central.engine, "user:sam").face_gallery()
    assert len(gallery.entry_ids) == 0  # the watchlist matcher sees nothing of the terminal's people
    holder = svc.holder("hq", badge_digest("hq", "1234"))
    assert holder.templates.shape == (1, 128) and abs(float(np.linalg.norm(holder.templates[0])) - 1) < 1e-4
    with pytest.raises(TerminalError, match="no terminal site"):
        svc.holder("annex", badge_digest("annex", "1234"))


def test_a_photo_without_a_usable_face_is_refused(central, enroller):
    svc = TerminalService(central.engine, "user:sam")
    svc.create_site("hq", "door")
    import cv2

    blank = cv2.imencode(".jpg", np.full((300, 300, 3), 128, np.uint8))[1].tobytes()
    with pytest.raises(TerminalError, match="no face"):
        svc.enrol("hq", "1234", "Nobody", CONSENT, [("wall.jpg", blank)], "test", enroller)


def test_withdrawal_deletes_the_templates_and_settings_changes_are_audited(central, people, enroller):
    svc = TerminalService(central.engine, "user:sam")
    svc.create_site("hq", "door")
    enrolment = svc.enrol("hq", "1234", "Ann Example", CONSENT, [("a.jpg", people("s10").enrolment_jpeg())], "starter", enroller)
    svc.update_settings("hq", {"threshold": 0.6, "steps": 4}, "stricter after review")
    with pytest.raises(TerminalError, match="steps"):
        svc.update_settings("hq", {"steps": 0}, "bad")
    with pytest.raises(TerminalError, match="unknown action"):
        svc.update_settings("hq", {"actions": ["blink"]}, "bad")
    changed = [r.as_dict() for r in AuditLog(central.engine).records() if r.action == "terminal.settings"]
    assert len(changed) == 1 and changed[0]["details"]["changed"]["threshold"] == {"before": OPERATING_THRESHOLD, "after": 0.6}
    svc.withdraw("hq", enrolment, "consent withdrawn by email")
    with Session(central.engine) as session:
        assert session.scalar(select(func.count()).select_from(TerminalTemplate)) == 0
    assert svc.holder("hq", badge_digest("hq", "1234")) is None
    assert "terminal.withdraw" in actions(central)
    assert AuditLog(central.engine).verify().ok


def test_decisions_are_stored_once_as_door_events_and_audited_once(central):
    svc = TerminalService(central.engine, "terminal:door-1")
    TerminalService(central.engine, "user:sam").create_site("hq", "door")
    decisions = [
        Decision("hq", "door-1", badge_digest("hq", "1234"), False, "unknown_badge", "not enrolled", offline=True),
        Decision("hq", "door-1", badge_digest("hq", "99"), False, "no_face", "no face was seen"),
    ]
    keys, new = svc.record(decisions, central)
    assert new == 2 and keys == [d.key for d in decisions]
    keys, new = svc.record(decisions, central)  # the same upload again (a lost reply)
    assert new == 0
    rows, total = central.search(EventQuery(type="door"))
    assert total == 2 and {r.attributes["code"] for r in rows} == {"unknown_badge", "no_face"}
    assert actions(central).count("terminal.decision") == 2
    # the two denials count for the badge's lockout on the server too
    assert svc.refusal("hq", "door-2", badge_digest("hq", "1234")) is None
    svc.record([Decision("hq", "door-2", badge_digest("hq", "1234"), False, "no_match", "x") for _ in range(2)], central)
    assert svc.refusal("hq", "door-2", badge_digest("hq", "1234"))[0] == "badge_locked"


class FixedEnroller:
    """A stand-in for the face models where only the storage is under test."""

    def template(self, image):
        vector = np.zeros(128, np.float32)
        vector[int(image.mean()) % 128] = 1.0
        return vector, 0.9


def test_the_terminal_tables_work_on_sqlite_and_postgresql(store_url):
    import cv2

    store = EventStore(store_url)
    try:
        svc = TerminalService(store.engine, "user:sam")
        svc.create_site("hq", "door", settings={"steps": 2})
        photo = cv2.imencode(".png", np.full((64, 64, 3), 77, np.uint8))[1].tobytes()
        enrolment = svc.enrol("hq", "1234", "Ann", CONSENT, [("a.png", photo)], "starter", FixedEnroller())
        assert svc.holder("hq", badge_digest("hq", "1234")).templates.shape == (1, 128)
        copy = svc.snapshot("hq", "door-1")
        assert copy["settings"]["steps"] == 2 and copy["enrolments"][0]["enrolment_id"] == enrolment
        decisions = [Decision("hq", "door-1", badge_digest("hq", "1234"), False, "no_match", "x") for _ in range(3)]
        assert svc.record(decisions, store)[1] == 3 and svc.record(decisions, store)[1] == 0
        assert svc.refusal("hq", "door-1", badge_digest("hq", "1234"))[0] == "badge_locked"
        svc.unlock("hq", "confirmed by phone", badge="1234")
        assert svc.refusal("hq", "door-1", badge_digest("hq", "1234")) is None
        svc.withdraw("hq", enrolment, "left the company")
        assert AuditLog(store.engine).verify().ok
    finally:
        store.close()
