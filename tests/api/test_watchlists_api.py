"""Watchlists and plate lists over the API: governance fields required, uploads refused cleanly."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from safecity.governance.audit import AuditLog
from safecity.governance.watchlists import WatchlistService
from tests.api.conftest import bearer

GOVERNANCE = {
    "legal_basis": "Court order 2026/123",
    "purpose": "find a stolen van",
    "authoriser": "Judge R. Roe",
    "reason": "case 2026-118",
}


def future(days: int = 30) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).isoformat()


@pytest.fixture
def lists(client, users):
    supervisor = bearer(users, "supervisor")
    for name, kind in (("stolen", "plate"), ("missing", "face")):
        response = client.post("/api/watchlists", headers=supervisor, json={"name": name, "kind": kind, "reason": "set-up"})
        assert response.status_code == 201
    return client


def test_plate_entries_need_every_governance_field_and_are_audited(lists, users, store):
    client, operator = lists, bearer(users, "operator")
    entry = {"label": "white van", "plate": "ab 12 cde", "expires_at": future(), **GOVERNANCE}
    for missing in ("legal_basis", "purpose", "authoriser"):
        refused = client.post("/api/watchlists/stolen/plates", headers=operator, json={**entry, missing: " "})
        assert refused.status_code == 400 and missing.replace("_", " ") in refused.json()["detail"]
    past = client.post("/api/watchlists/stolen/plates", headers=operator, json={**entry, "expires_at": future(-1)})
    assert past.status_code == 400 and "not in the future" in past.json()["detail"]
    assert client.post("/api/watchlists/stolen/plates", headers=operator, json={**entry, "reason": ""}).status_code == 400
    assert client.post("/api/watchlists/nosuch/plates", headers=operator, json=entry).status_code == 404

    created = client.post("/api/watchlists/stolen/plates", headers=operator, json=entry)
    assert created.status_code == 201
    entry_id = created.json()["id"]
    listed = client.get("/api/watchlists", headers=bearer(users, "auditor")).json()
    (shown,) = listed["entries"]
    assert shown["plate"] == "AB12CDE" and shown["legal_basis"] == "Court order 2026/123"
    assert shown["created_by"] == "user:operator" and shown["state"] == "awaiting approval" and not shown["active"]

    # four eyes: a supervisor other than the author approves, with a reason
    approve = f"/api/watchlists/entries/{entry_id}/approve"
    assert client.post(approve, headers=operator, json={"reason": "looks fine"}).status_code == 403
    supervisor = bearer(users, "supervisor")
    assert client.post(approve, headers=supervisor, json={"reason": ""}).status_code == 400
    assert client.post(approve, headers=supervisor, json={"reason": "order checked"}).status_code == 204
    shown = client.get("/api/watchlists", headers=operator).json()["entries"][0]
    assert shown["active"] and shown["approved_by"] == "user:supervisor"
    again = client.post(approve, headers=supervisor, json={"reason": "twice"})
    assert again.status_code == 400 and "approved already" in again.json()["detail"]

    expire = client.post(f"/api/watchlists/entries/{entry_id}/expire", headers=operator, json={"reason": "van found"})
    assert expire.status_code == 204
    assert client.get("/api/watchlists", headers=operator).json()["entries"][0]["active"] is False
    assert client.delete(f"/api/watchlists/entries/{entry_id}", headers=operator).status_code == 403
    assert client.delete(f"/api/watchlists/entries/{entry_id}", headers=supervisor).status_code == 400  # no reason
    removed = client.delete(f"/api/watchlists/entries/{entry_id}", headers={**supervisor, "X-Reason": "case closed"})
    assert removed.status_code == 204

    records = [(r.action, r.actor, r.reason) for r in AuditLog(store.engine).records() if r.action.startswith("watchlist.")]
    assert ("watchlist.enrol", "user:operator", "case 2026-118") in records
    assert ("watchlist.approve", "user:supervisor", "order checked") in records
    assert ("watchlist.expire", "user:operator", "van found") in records
    assert ("watchlist.remove", "user:supervisor", "case closed") in records
    assert ("watchlist.read", "user:auditor", "") in records


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def upload(client, headers, files, fields=None, list_name="missing"):
    data = {"label": "Person A", "expires_at": future(), **GOVERNANCE, **(fields or {})}
    return client.post(f"/api/watchlists/{list_name}/faces", headers=headers, data=data, files=files)


@pytest.mark.parametrize(
    "files, status, message",
    [
        ([("images", ("evil.jpg", b"<?php system($_GET[1]); ?>", "image/jpeg"))], 400, "evil.jpg: not a readable image"),
        ([("images", ("bomb.png", png(np.zeros((9000, 9000), np.uint8)), "image/png"))], 400, "8000 pixels"),
        ([("images", ("../../etc/passwd.png", b"\x89PNG\r\n\x1a\n junk", "image/png"))], 400, "passwd.png: not a readable"),
        ([("images", (f"{i}.png", png(np.full((64, 64, 3), i, np.uint8)), "image/png")) for i in range(6)], 400, "could not be read"),
        ([("images", ("huge.png", b"\0" * (21 * 1024 * 1024), "image/png"))], 413, "larger than 20 MB"),
        ([("images", ("giant.png", b"\0" * (26 * 1024 * 1024), "image/png"))], 413, "too large"),
        ([], 400, "at least one reference image"),
    ],
    ids=["script", "decompression-bomb", "path-traversal-name", "too-many-files", "file-too-big", "body-too-big", "no-image"],
)
def test_hostile_uploads_are_refused_cleanly_and_nothing_is_stored(lists, users, store, files, status, message):
    response = upload(lists, bearer(users, "operator"), files)
    assert response.status_code == status and message in response.text
    assert "../" not in response.text and "Traceback" not in response.text
    assert WatchlistService(store.engine, "test").entries() == []
    assert not [r for r in AuditLog(store.engine).records() if r.action == "watchlist.enrol"]


def test_face_upload_rules_are_checked_before_any_enrolment(lists, users, store):
    operator = bearer(users, "operator")
    ok_image = [("images", ("a.png", png(np.full((64, 64, 3), 90, np.uint8)), "image/png"))]
    assert upload(lists, operator, ok_image, {"legal_basis": ""}).status_code == 400
    assert upload(lists, operator, ok_image, {"expires_at": "soon"}).status_code == 400
    wrong_kind = upload(lists, operator, ok_image, list_name="stolen")
    assert wrong_kind.status_code == 400 and "plate list" in wrong_kind.json()["detail"]
    assert upload(lists, operator, ok_image, list_name="nosuch").status_code == 404
    assert WatchlistService(store.engine, "test").entries() == []


def test_face_enrolment_through_the_api(lists, users, store, shared_data):
    face = (shared_data / "faces" / "celeba" / "images" / "006155.jpg").read_bytes()
    response = upload(lists, bearer(users, "operator"), [("images", ("ref.jpg", face, "image/jpeg"))])
    if importlib.util.find_spec("safecity.faces.enrol") is None:
        # the enroller is not part of this installation yet: a clear refusal, nothing stored
        assert response.status_code == 503 and "face enrolment is not available" in response.json()["detail"]
        assert WatchlistService(store.engine, "test").entries() == []
    else:
        assert response.status_code == 201, response.text
        (entry,) = WatchlistService(store.engine, "test").entries()
        assert entry.templates == 1 and entry.created_by == "user:operator"
