import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from safecity.api.app import create_app
from safecity.events.store import EventStore
from safecity.governance.audit import AuditLog
from safecity.governance.redaction import FaceRedactor
from safecity.records import Event
from tests.events.test_store import T0, make_events


@pytest.fixture
def store(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'var' / 'safecity.db'}")
    store.add_events(make_events())
    yield store
    store.close()


def health():
    return [
        {
            "name": "gate",
            "state": "running",
            "frames": 10,
            "fps": 5.0,
            "lag_seconds": 0.1,
            "errors": 0,
            "reconnects": 0,
            "events": 3,
            "last_error": None,
            "last_frame_at": 1.0,
        }
    ]


def test_health(store):
    client = TestClient(create_app(store, health))
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["events"] == 3
    assert body["cameras"][0]["name"] == "gate" and body["cameras"][0]["fps"] == 5.0


def test_event_search_is_paginated_filtered_and_audited(store):
    client = TestClient(create_app(store))
    page = client.get("/api/events", params={"camera": "gate", "limit": 1}, headers={"X-Reason": "case 42"}).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["limit"] == 1
    assert page["items"][0]["camera"] == "gate"
    assert client.get("/api/events", params={"type": "nothing"}).json()["total"] == 0

    audit = AuditLog(store.engine)
    search = audit.tail(2)[0].as_dict()
    assert search["action"] == "event.search" and search["reason"] == "case 42"
    assert search["actor"].startswith("anonymous@") and search["details"]["camera"] == "gate"
    assert search["details"]["results"] == 2
    assert audit.verify().ok


def test_event_view_and_snapshot_are_audited(store):
    client = TestClient(create_app(store))
    items = client.get("/api/events", params={"camera": "gate"}).json()["items"]
    with_snapshot = next(item for item in items if item["has_snapshot"])
    event = client.get(f"/api/events/{with_snapshot['id']}").json()
    assert event["snapshot_url"] == f"/api/events/{event['id']}/snapshot.jpg"
    image = client.get(event["snapshot_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.headers["x-redacted-faces"] == "0" and image.content[:2] == b"\xff\xd8"
    actions = [r.action for r in AuditLog(store.engine).tail(3)]
    assert actions == ["event.search", "event.view", "media.view"]


def test_snapshot_faces_are_blurred_when_served(store, shared_data):
    from tests.governance.test_redaction import street_with_face

    frame = street_with_face(shared_data)
    store.add_events([Event(camera="door", type="motion", start_ts=T0 + 500, snapshot=frame)])
    client = TestClient(create_app(store))
    (item,) = client.get("/api/events", params={"camera": "door"}).json()["items"]
    served = client.get(item["snapshot_url"])
    assert served.headers["x-redacted-faces"] == "1"
    image = cv2.imdecode(np.frombuffer(served.content, np.uint8), cv2.IMREAD_COLOR)
    assert len(FaceRedactor().faces(image)) == 0
    assert AuditLog(store.engine).tail(1)[0].as_dict()["details"]["redacted"] is True


def test_missing_and_invalid(store):
    client = TestClient(create_app(store))
    assert client.get("/api/events/999").status_code == 404
    assert client.get("/api/events", params={"limit": 0}).status_code == 422
    assert client.get("/api/events", params={"after": "yesterday"}).status_code == 422
    no_snapshot = next(i for i in client.get("/api/events").json()["items"] if not i["has_snapshot"])
    assert client.get(f"/api/events/{no_snapshot['id']}/snapshot.jpg").status_code == 404


def test_openapi_documents_the_routes(store):
    schema = TestClient(create_app(store)).get("/openapi.json").json()
    assert {"/api/health", "/api/events", "/api/events/{event_id}"} <= set(schema["paths"])
