"""Console pages as a browser gets them: sign-in, role-filtered navigation, audited actions."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from safecity.api.app import create_app
from safecity.events.store import EventQuery
from safecity.governance.audit import AuditLog
from safecity.governance.redaction import FaceRedactor
from safecity.governance.watchlists import WatchlistService
from safecity.records import Event
from tests.api.conftest import PASSWORD
from tests.events.test_store import T0


def signed_in(app, role: str) -> TestClient:
    client = TestClient(app, headers={"Origin": "http://testserver", "Accept": "text/html"})
    response = client.post("/login", data={"name": role, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303
    return client


def nav(html: str) -> list[str]:
    return re.findall(r'<a href="(/[a-z]+)"(?: aria-current="page")?>', html.split("</nav>")[0])


def test_sign_in_lands_on_the_roles_first_page_and_shows_only_its_pages(app):
    expected = {
        "viewer": ("/live", ["/live", "/system"]),
        "operator": ("/live", ["/live", "/search", "/watchlists", "/system"]),
        "auditor": ("/search", ["/search", "/watchlists", "/audit", "/users", "/system"]),
        "admin": ("/users", ["/users", "/system"]),
    }
    for role, (home, pages) in expected.items():
        client = TestClient(app, headers={"Origin": "http://testserver"})
        response = client.post("/login", data={"name": role, "password": PASSWORD}, follow_redirects=False)
        assert response.headers["location"] == home
        page = client.get(home)
        assert page.status_code == 200 and nav(page.text) == pages, role
        assert "default-src 'self'" in page.headers["content-security-policy"]


def test_wrong_password_is_shown_on_the_form_and_next_stays_local(client):
    page = client.post("/login", data={"name": "viewer", "password": "nope nope nope", "next": "/search"})
    assert page.status_code == 401 and "wrong user name or password" in page.text
    assert 'value="viewer"' in page.text
    response = client.post(
        "/login", data={"name": "viewer", "password": PASSWORD, "next": "//evil.example/x"}, follow_redirects=False
    )
    assert response.headers["location"] == "/live"


def test_forbidden_page_is_html_for_a_browser(app):
    page = signed_in(app, "viewer").get("/audit")
    assert page.status_code == 403 and "Not allowed" in page.text and "audit.read" in page.text


def test_search_needs_a_reason_then_audits_what_was_shown(app, store):
    client = signed_in(app, "operator")
    refused = client.get("/search", params={"camera": "gate", "reason": ""})
    assert refused.status_code == 400 and "State a reason" in refused.text
    assert not [r for r in AuditLog(store.engine).records() if r.action == "event.search"]

    page = client.get("/search", params={"camera": "gate", "reason": "case 77"})
    assert page.status_code == 200 and "2 events" in page.text
    assert "/api/events/1/thumbnail.jpg?reason=case%2077" in page.text
    record = AuditLog(store.engine).tail(1)[0].as_dict()
    assert record["action"] == "event.search" and record["reason"] == "case 77" and sorted(record["details"]["shown"]) == [1, 2]
    thumb = client.get("/api/events/1/thumbnail.jpg?reason=case%2077")
    assert thumb.status_code == 200 and AuditLog(store.engine).tail(1)[0].reason == "case 77"


def test_unredacted_view_needs_the_role_and_a_reason_and_is_audited(app, store, shared_data):
    from tests.governance.test_redaction import street_with_face

    store.add_events([Event(camera="door", type="motion", start_ts=T0 + 500, snapshot=street_with_face(shared_data))])
    event_id = max(r.id for r in store.search(EventQuery())[0])

    operator = signed_in(app, "operator")
    page = operator.get(f"/events/{event_id}", params={"reason": "live monitoring"})
    assert page.status_code == 200 and "Show unredacted" not in page.text and "Faces are blurred" in page.text
    assert operator.post(f"/events/{event_id}/original", data={"reason": "curious"}).status_code == 403

    supervisor = signed_in(app, "supervisor")
    assert "Show unredacted" in supervisor.get(f"/events/{event_id}").text
    missing = supervisor.post(f"/events/{event_id}/original", data={"reason": " "})
    assert missing.status_code == 400 and "State a reason" in missing.text
    shown = supervisor.post(f"/events/{event_id}/original", data={"reason": "identify the intruder, case 12"})
    assert shown.status_code == 200 and "recorded in the audit log as record" in shown.text
    data = re.search(r'src="data:image/jpeg;base64,([^"]+)"', shown.text).group(1)
    image = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
    assert len(FaceRedactor().faces(image)) == 1
    record = AuditLog(store.engine).tail(1)[0].as_dict()
    assert (record["action"], record["actor"], record["details"]["redacted"]) == ("media.view", "user:supervisor", False)


def test_watchlist_governance_through_the_console(app, store):
    supervisor, operator = signed_in(app, "supervisor"), signed_in(app, "operator")
    made = supervisor.post("/watchlists", data={"name": "stolen", "kind": "plate", "reason": "new list"}, follow_redirects=False)
    assert made.status_code == 303 and "msg=Created" in made.headers["location"]
    entry = {
        "label": "white van", "plate": "AB12CDE", "legal_basis": "", "purpose": "stolen vehicle",
        "authoriser": "Insp. Roe", "expires_at": "2099-01-01", "reason": "case 5",
    }
    refused = operator.post("/watchlists/stolen/plates", data=entry)
    assert refused.status_code == 200 and "legal basis is required" in refused.text
    added = operator.post("/watchlists/stolen/plates", data={**entry, "legal_basis": "Warrant 12/2026"})
    assert "Added entry" in added.text and "awaiting approval" in added.text
    (view,) = WatchlistService(store.engine, "t").entries()
    assert view.expires_at.isoformat() == "2099-01-01T23:59:59+00:00"
    assert 'action="/watchlists/entries/1/approve"' not in added.text  # the author cannot approve
    page = supervisor.post("/watchlists/entries/1/approve", data={"reason": "warrant seen"})
    assert "approved: it matches" in page.text and "user:supervisor" in page.text
    assert WatchlistService(store.engine, "t").entries()[0].active


def test_hostile_face_upload_in_the_console_is_a_message_not_a_crash(app, store):
    supervisor, operator = signed_in(app, "supervisor"), signed_in(app, "operator")
    supervisor.post("/watchlists", data={"name": "missing", "kind": "face", "reason": "new list"})
    fields = {"label": "P", "legal_basis": "Order 1", "purpose": "missing child", "authoriser": "Judge", "expires_at": "2099-01-01", "reason": "case 9"}
    page = operator.post("/watchlists/missing/faces", data=fields, files=[("images", ("x.jpg", b"GIF89a not really", "image/jpeg"))])
    assert page.status_code == 200 and "x.jpg: not a readable image" in page.text
    assert WatchlistService(store.engine, "t").entries() == []


def test_audit_page_shows_records_and_verifies_the_chain(app, store):
    signed_in(app, "operator").get("/search", params={"reason": "case 3"})
    auditor = signed_in(app, "auditor")
    page = auditor.get("/audit", params={"action": "event.search", "verify": "1"})
    assert page.status_code == 200 and "Chain intact" in page.text
    assert "user:operator" in page.text and "case 3" in page.text
    assert AuditLog(store.engine).tail(1)[0].action == "audit.read"


def test_users_page_creates_users_and_audits_it(app, store):
    admin = signed_in(app, "admin")
    page = admin.post("/users", data={"name": "dora", "role": "viewer", "password": "long enough pw", "reason": "new hire"})
    assert "Created viewer dora" in page.text
    page = admin.post("/users/dora", data={"action": "role", "role": "operator", "reason": "promotion"})
    assert "dora: role done" in page.text
    short = admin.post("/users", data={"name": "ed", "role": "viewer", "password": "short", "reason": "new hire"})
    assert "at least 10 characters" in short.text
    actions = [(r.action, r.actor) for r in AuditLog(store.engine).records() if r.object_id == "dora"]
    assert actions == [("user.create", "user:admin"), ("user.role", "user:admin")]


@pytest.fixture
def wall_app(store, shared_data):
    """A camera wall whose engine shows a real street frame with a face and one overlay box."""
    from safecity.config import Camera
    from tests.governance.test_redaction import street_with_face

    frame = street_with_face(shared_data)
    app = create_app(
        store,
        cameras=[Camera(name="door", source="rtsp://cam/door"), Camera(name="gate", source="rtsp://cam/gate")],
        latest_frame=lambda name: (frame, [((290.0, 90.0, 520.0, 360.0), "person 7")]) if name == "door" else None,
    )
    return app


def test_camera_wall_tiles_are_redacted_and_fall_back_to_the_last_event(wall_app, store):
    client = signed_in(wall_app, "viewer")
    page = client.get("/live")
    assert page.status_code == 200 and 'data-refresh="/api/cameras/door/latest.jpg"' in page.text
    assert "<svg" in page.text and "Events per hour" in page.text
    live = client.get("/api/cameras/door/latest.jpg")
    assert live.status_code == 200 and live.headers["x-frame-source"] == "live"
    image = cv2.imdecode(np.frombuffer(live.content, np.uint8), cv2.IMREAD_COLOR)
    assert len(FaceRedactor().faces(image)) == 0
    from safecity.api.media import OVERLAY_BGR

    edge = image[200, 289:292].astype(int)  # the box's left edge at x = 290
    assert (abs(edge - OVERLAY_BGR).max(axis=1) < 60).any(), edge
    fallback = client.get("/api/cameras/gate/latest.jpg")  # no live frame: the gate's newest snapshot
    assert fallback.status_code == 200 and fallback.headers["x-frame-source"] == "last-event"
    assert client.get("/api/cameras/nowhere/latest.jpg").status_code == 404
    assert AuditLog(store.engine).tail(1)[0].action == "live.view"  # opening the wall is audited
