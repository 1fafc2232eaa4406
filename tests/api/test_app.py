import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from safecity.api.app import create_app
from safecity.governance.audit import AuditLog
from safecity.governance.redaction import FaceRedactor
from safecity.records import Event
from tests.api.conftest import bearer
from tests.events.test_store import T0


def test_health_needs_no_sign_in(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["events"] == 3
    assert body["cameras"][0]["name"] == "gate" and body["cameras"][0]["fps"] == 5.0


def test_event_search_is_paginated_filtered_and_audited(client, users, store):
    auth = bearer(users, "operator")
    page = client.get(
        "/api/events", params={"camera": "gate", "limit": 1}, headers={**auth, "X-Reason": "case 42"}
    ).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["limit"] == 1
    assert page["items"][0]["camera"] == "gate"
    assert client.get("/api/events", params={"type": "nothing", "reason": "case 42"}, headers=auth).json()["total"] == 0

    audit = AuditLog(store.engine)
    search = audit.tail(2)[0].as_dict()
    assert search["action"] == "event.search" and search["reason"] == "case 42"
    assert search["actor"] == "user:operator" and search["details"]["camera"] == "gate"
    assert search["details"]["results"] == 2 and search["details"]["shown"] == [page["items"][0]["id"]]
    assert audit.verify().ok


def test_a_search_without_a_reason_is_refused_and_not_run(client, users, store):
    before = len(list(AuditLog(store.engine).records()))
    response = client.get("/api/events", headers=bearer(users, "operator"))
    assert response.status_code == 400 and "reason" in response.json()["detail"]
    assert len(list(AuditLog(store.engine).records())) == before


def test_event_view_and_snapshot_are_audited(client, users, store):
    auth = {**bearer(users, "operator"), "X-Reason": "case 9"}
    items = client.get("/api/events", params={"camera": "gate"}, headers=auth).json()["items"]
    with_snapshot = next(item for item in items if item["has_snapshot"])
    event = client.get(f"/api/events/{with_snapshot['id']}", headers=auth).json()
    assert event["snapshot_url"] == f"/api/events/{event['id']}/snapshot.jpg"
    image = client.get(event["snapshot_url"], headers=auth)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.headers["x-redacted-faces"] == "0" and image.content[:2] == b"\xff\xd8"
    thumb = client.get(event["thumbnail_url"], headers=auth)
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    records = [r.as_dict() for r in AuditLog(store.engine).tail(4)]
    assert [r["action"] for r in records] == ["event.search", "event.view", "media.view", "media.view"]
    assert all(r["actor"] == "user:operator" and r["reason"] == "case 9" for r in records)
    assert records[3]["details"]["thumbnail"] is True


def test_snapshot_faces_are_blurred_unless_a_supervisor_states_a_reason(store, users, shared_data):
    from tests.governance.test_redaction import street_with_face

    frame = street_with_face(shared_data)
    store.add_events([Event(camera="door", type="motion", start_ts=T0 + 500, snapshot=frame)])
    client = TestClient(create_app(store))
    operator = {**bearer(users, "operator"), "X-Reason": "check the door"}
    (item,) = client.get("/api/events", params={"camera": "door"}, headers=operator).json()["items"]
    served = client.get(item["snapshot_url"], headers=operator)
    assert served.headers["x-redacted-faces"] == "1"
    image = cv2.imdecode(np.frombuffer(served.content, np.uint8), cv2.IMREAD_COLOR)
    assert len(FaceRedactor().faces(image)) == 0
    assert AuditLog(store.engine).tail(1)[0].as_dict()["details"]["redacted"] is True

    original = f"/api/events/{item['id']}/original.jpg"
    assert client.get(original, headers=operator).status_code == 403
    supervisor = bearer(users, "supervisor")
    assert client.get(original, headers=supervisor).status_code == 400  # no reason stated
    shown = client.get(original, headers={**supervisor, "X-Reason": "identify the intruder, case 12"})
    assert shown.status_code == 200
    image = cv2.imdecode(np.frombuffer(shown.content, np.uint8), cv2.IMREAD_COLOR)
    assert len(FaceRedactor().faces(image)) == 1  # the face is visible
    record = AuditLog(store.engine).tail(1)[0].as_dict()
    assert record["action"] == "media.view" and record["details"]["redacted"] is False
    assert record["actor"] == "user:supervisor" and record["reason"] == "identify the intruder, case 12"


def test_missing_and_invalid(client, users):
    auth = {**bearer(users, "operator"), "X-Reason": "testing"}
    assert client.get("/api/events/999", headers=auth).status_code == 404
    assert client.get("/api/events", params={"limit": 0}, headers=auth).status_code == 422
    assert client.get("/api/events", params={"after": "yesterday"}, headers=auth).status_code == 422
    no_snapshot = next(i for i in client.get("/api/events", headers=auth).json()["items"] if not i["has_snapshot"])
    assert client.get(f"/api/events/{no_snapshot['id']}/snapshot.jpg", headers=auth).status_code == 404


def test_openapi_documents_the_routes_for_signed_in_users(client, users):
    assert client.get("/openapi.json").status_code == 401
    schema = client.get("/openapi.json", headers=bearer(users, "viewer")).json()
    assert {"/api/health", "/api/events", "/api/events/{event_id}", "/api/auth/login"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "/live" not in schema["paths"]  # console pages are not API
    docs = client.get("/docs", headers=bearer(users, "viewer"))
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "cdn" not in docs.text.lower() and "/docs-assets/swagger-ui-bundle.js" in docs.text  # works offline
    script = client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000


def test_cameras_list_masks_passwords_in_source_urls(store, users):
    from safecity.config import Camera

    cameras = [Camera(name="gate", source="rtsp://admin:s3cret@10.0.0.5/stream1")]
    client = TestClient(create_app(store, cameras=cameras))
    (camera,) = client.get("/api/cameras", headers=bearer(users, "viewer")).json()
    assert camera["source"] == "rtsp://admin:***@10.0.0.5/stream1" and "s3cret" not in str(camera)


def test_alerts_are_confirmed_or_rejected_by_a_person_with_a_note(client, users, store):
    store.add_events([Event(camera="gate", type="plate_match", start_ts=T0 + 700, attributes={"plate": "AB12CDE", "entry_id": 1})])
    operator = {**bearer(users, "operator"), "X-Reason": "review"}
    (alert,) = client.get("/api/events", params={"type": "plate_match"}, headers=operator).json()["items"]
    assert alert["review_state"] == "pending"
    url = f"/api/events/{alert['id']}/review"
    assert client.post(url, headers=bearer(users, "viewer"), json={"decision": "confirmed", "note": "x"}).status_code == 403
    assert client.post(url, headers=operator, json={"decision": "maybe", "note": "hmm"}).status_code == 422
    assert client.post(url, headers=operator, json={"decision": "confirmed", "note": " "}).status_code == 400
    done = client.post(url, headers=operator, json={"decision": "rejected", "note": "different van, plate misread"})
    assert done.status_code == 200 and done.json()["review_state"] == "rejected" and done.json()["reviewed_by"] == "user:operator"
    assert client.post(url, headers=operator, json={"decision": "confirmed", "note": "again"}).status_code == 400
    record = AuditLog(store.engine).tail(1)[0].as_dict()
    assert record["action"] == "alert.reject" and record["reason"] == "different van, plate misread"
    motion = client.post("/api/events/1/review", headers=operator, json={"decision": "confirmed", "note": "x y"})
    assert motion.status_code == 400 and "not an alert" in motion.json()["detail"]


@pytest.mark.parametrize("path", ["/api/metrics", "/metrics"])
def test_metrics_for_signed_in_scrapers(client, users, path):
    assert client.get(path).status_code == 401
    response = client.get(path, headers=bearer(users, "viewer"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert 'safecity_camera_fps{camera="gate"} 5.0' in response.text
    assert 'safecity_camera_frames_total{camera="gate"} 10.0' in response.text
