"""The terminal API: people manage sites and consented enrolments; devices get challenges and verify.

Route authorisation for every terminal route and role is checked by the generated
tests in tests/api/test_route_auth.py; these check what the routes do.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from safecity.events.store import EventQuery
from safecity.governance.audit import AuditLog
from tests.api.conftest import bearer
from tests.terminal.conftest import blank_frames, jpeg

CONSENT = {
    "badge": "1234", "label": "Ann Example", "consent_subject": "Ann Example",
    "consent_at": (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat(),
    "consent_method": "signed paper form", "consent_reference": "F-17", "reason": "new starter",
}


@pytest.fixture
def site(client, users):
    response = client.post("/api/terminal/sites", json={"name": "hq", "reason": "new door"}, headers=bearer(users, "supervisor"))
    assert response.status_code == 201, response.text
    return "hq"


@pytest.fixture
def enrolled(client, users, site, people):
    photo = {"images": ("ann.jpg", people("s10").enrolment_jpeg(), "image/jpeg")}
    response = client.post(f"/api/terminal/sites/{site}/enrolments", data=CONSENT, files=photo, headers=bearer(users, "operator"))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def actions_of(store, name):
    return [r.as_dict() for r in AuditLog(store.engine).records() if r.action == name]


def test_enrolment_over_the_api_needs_consent_and_lists_the_consent_record(client, users, site, people, store):
    photo = {"images": ("ann.jpg", people("s10").enrolment_jpeg(), "image/jpeg")}
    no_consent = {k: v for k, v in CONSENT.items() if not k.startswith("consent_")}
    refused = client.post(f"/api/terminal/sites/{site}/enrolments", data=no_consent, files=photo, headers=bearer(users, "operator"))
    assert refused.status_code == 400 and "consent" in refused.json()["detail"]
    created = client.post(f"/api/terminal/sites/{site}/enrolments", data=CONSENT, files=photo, headers=bearer(users, "operator"))
    assert created.status_code == 201, created.text
    listed = client.get(f"/api/terminal/sites/{site}/enrolments", headers={**bearer(users, "auditor"), "X-Reason": "audit"}).json()
    assert [(e["label"], e["consent_method"], e["consent_recorded_by"]) for e in listed] == [
        ("Ann Example", "signed paper form", "user:operator")
    ]
    assert "template" not in str(listed[0].keys()).replace("templates", "")  # a count, never the vectors
    assert actions_of(store, "terminal.enrolments.read")[-1]["reason"] == "audit"
    gone = client.delete(f"/api/terminal/sites/{site}/enrolments/{created.json()['id']}",
                         headers={**bearer(users, "operator"), "X-Reason": "consent withdrawn"})
    assert gone.status_code == 204
    assert client.get(f"/api/terminal/sites/{site}/enrolments", headers=bearer(users, "operator")).json() == []


def test_settings_changes_are_validated_and_audited(client, users, site, store):
    bad = client.patch(f"/api/terminal/sites/{site}", json={"settings": {"steps": 0}, "reason": "x" * 5}, headers=bearer(users, "supervisor"))
    assert bad.status_code == 400 and "steps" in bad.json()["detail"]
    ok = client.patch(f"/api/terminal/sites/{site}", json={"settings": {"time_limit": 8}, "reason": "faster door"},
                      headers=bearer(users, "supervisor"))
    assert ok.status_code == 200 and ok.json()["settings"]["time_limit"] == 8
    record = actions_of(store, "terminal.settings")[-1]
    assert record["details"]["changed"] == {"time_limit": {"before": 10.0, "after": 8.0}} and record["reason"] == "faster door"


def verify(client, users, site, challenge, badge, frames):
    files = [("frames", (f"{i}.jpg", jpeg(image), "image/jpeg")) for i, (_, image) in enumerate(frames)]
    data = {"challenge_id": challenge, "badge": badge, "terminal": "door-1", "ts": ",".join(f"{t:.2f}" for t, _ in frames)}
    return client.post(f"/api/terminal/{site}/verify", data=data, files=files, headers=bearer(users, "terminal"))


def challenge(client, users, site, badge="1234"):
    response = client.post(f"/api/terminal/{site}/challenge", json={"terminal": "door-1", "badge": badge}, headers=bearer(users, "terminal"))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_device_verifies_a_genuine_user_once_per_challenge_and_the_decision_is_a_door_event(client, users, site, enrolled, people, store):
    issued = challenge(client, users, site)
    assert len(issued["actions"]) == 3 and issued["prompts"] and issued["refused"] is None
    frames = people("s10").sequence(issued["actions"])
    decided = verify(client, users, site, issued["challenge_id"], "1234", frames)
    assert decided.status_code == 200 and decided.json()["granted"], decided.text
    assert verify(client, users, site, issued["challenge_id"], "1234", frames).status_code == 409  # single use
    [row], total = store.search(EventQuery(type="door"))
    assert total == 1 and row.label == "Ann Example" and row.attributes["source"] == "central"
    assert row.attributes["challenge"] == issued["actions"] and row.key == decided.json()["key"]
    assert actions_of(store, "terminal.decision")[-1]["actor"] == "user:terminal"
    # someone else's face with Ann's badge
    other = challenge(client, users, site)
    impostor = verify(client, users, site, other["challenge_id"], "1234", people("s13").sequence(other["actions"]))
    assert impostor.json()["granted"] is False and impostor.json()["code"] == "no_match"


def test_repeated_failures_lock_the_badge_until_a_supervisor_unlocks_it(client, users, site, enrolled, store):
    for _ in range(3):
        issued = challenge(client, users, site)
        assert verify(client, users, site, issued["challenge_id"], "1234", blank_frames()).json()["code"] == "no_face"
    locked = challenge(client, users, site)
    assert locked["challenge_id"] is None and locked["refused"]["code"] == "badge_locked"
    assert challenge(client, users, site, badge="5678")["challenge_id"]  # only that badge
    unlock = client.post(f"/api/terminal/sites/{site}/unlock", json={"badge": "1234", "reason": "owner confirmed by phone"},
                         headers=bearer(users, "supervisor"))
    assert unlock.status_code == 204
    assert challenge(client, users, site)["challenge_id"]
    codes = [r.attributes["code"] for r in store.search(EventQuery(type="door", limit=20))[0]]
    assert codes.count("no_face") == 3 and codes.count("badge_locked") == 1
    assert actions_of(store, "terminal.unlock")[-1]["reason"] == "owner confirmed by phone"


def test_the_offline_copy_and_decision_upload_are_for_devices_and_idempotent(client, users, site, enrolled, store):
    copy = client.get(f"/api/terminal/{site}/snapshot", params={"terminal": "door-1"}, headers=bearer(users, "terminal"))
    assert copy.status_code == 200 and len(copy.json()["enrolments"][0]["templates"][0]) == 128
    assert client.get(f"/api/terminal/{site}/snapshot", params={"terminal": "door-1"}, headers=bearer(users, "supervisor")).status_code == 403
    decision = {
        "site": site, "terminal": "door-2", "badge_digest": None, "granted": False, "code": "unknown_badge",
        "reason": "not enrolled", "decided_at": 1_790_000_000.0, "id": "ab" * 16, "offline": True,
    }
    first = client.post(f"/api/terminal/{site}/decisions", json={"decisions": [decision]}, headers=bearer(users, "terminal"))
    again = client.post(f"/api/terminal/{site}/decisions", json={"decisions": [decision]}, headers=bearer(users, "terminal"))
    assert first.json()["new"] == 1 and again.json()["new"] == 0 and again.json()["stored"] == first.json()["stored"]
    wrong_site = client.post("/api/terminal/annex/decisions", json={"decisions": [decision]}, headers=bearer(users, "terminal"))
    assert wrong_site.status_code == 400
    forged = client.post(f"/api/terminal/{site}/decisions", json={"decisions": [{**decision, "code": "door_forced"}]},
                         headers=bearer(users, "terminal"))
    assert forged.status_code == 400
    assert store.search(EventQuery(type="door"))[1] == 1
