from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from safecity.db import make_engine, upgrade
from safecity.faces.matcher import FaceMatcher
from safecity.governance.audit import AuditLog
from safecity.governance.watchlists import (
    EnrolmentError,
    Governance,
    GovernanceError,
    WatchlistService,
)


class GridEnroller:
    """Stands in for the face pipeline in rule tests: a template from a coarse grey grid.

    The real enroller (face detection + embedding) is tested in tests/faces.
    """

    def template(self, image):
        grid = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (4, 4), interpolation=cv2.INTER_AREA)
        vector = grid.astype(np.float32).ravel()
        vector -= vector.mean()
        norm = np.linalg.norm(vector)
        if norm < 1e-3:
            raise EnrolmentError("no usable face found")
        return vector / norm, 1.0


def png(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


def rules(days: float = 30, **changes) -> Governance:
    fields = dict(
        legal_basis="Court order 2026/123",
        purpose="find a missing person",
        authoriser="Judge R. Roe",
        expires_at=datetime.now(timezone.utc) + timedelta(days=days),
    )
    return Governance(**{**fields, **changes})


@pytest.fixture
def service(store_url):
    engine = make_engine(store_url)
    upgrade(engine)
    service = WatchlistService(engine, actor="cli:alice")
    service.create_list("missing", "face", reason="case 7")
    yield service
    engine.dispose()


def approved(service: WatchlistService, entry: int) -> int:
    WatchlistService(service.engine, actor="cli:bob").approve(entry, reason="checked the order")
    return entry


def test_enrol_list_expire_remove_all_audited(service):
    entry = service.add_face_entry("missing", "Person A", [("a.png", png(1)), ("b.png", png(2))], rules(), "case 7", GridEnroller())
    assert service.entries()[0].state == "awaiting approval"
    approved(service, entry)
    (view,) = service.entries("missing")
    assert view.id == entry and view.templates == 2 and view.active and view.authoriser == "Judge R. Roe"
    service.expire(entry, reason="found safe")
    assert not service.entries()[0].active
    assert len(service.face_gallery().entry_ids) == 0
    service.remove(entry, reason="retention")
    assert service.entries() == []
    audit = AuditLog(service.engine)
    actions = [(r.action, r.reason) for r in audit.records()]
    assert actions == [
        ("watchlist.create", "case 7"),
        ("watchlist.enrol", "case 7"),
        ("watchlist.approve", "checked the order"),
        ("watchlist.expire", "found safe"),
        ("watchlist.remove", "retention"),
    ]
    enrol = list(audit.records())[1].as_dict()["details"]
    assert enrol["legal_basis"] == "Court order 2026/123" and len(enrol["images_sha256"]) == 2
    assert audit.verify().ok


@pytest.mark.parametrize(
    "change, message",
    [
        ({"legal_basis": " "}, "legal basis is required"),
        ({"purpose": ""}, "purpose is required"),
        ({"authoriser": ""}, "authoriser is required"),
        ({"expires_at": datetime.now(timezone.utc) - timedelta(seconds=1)}, "not in the future"),
        ({"expires_at": datetime(2030, 1, 1)}, "time zone"),
    ],
)
def test_every_governance_field_is_required(service, change, message):
    with pytest.raises(GovernanceError, match=message):
        service.add_face_entry("missing", "P", [("a.png", png(1))], rules(**change), "r", GridEnroller())
    assert service.entries() == []


def test_unusable_or_hostile_images_are_refused_with_reason(service):
    flat = cv2.imencode(".png", np.full((32, 32, 3), 127, np.uint8))[1].tobytes()
    with pytest.raises(EnrolmentError, match="flat.png: no usable face"):
        service.add_face_entry("missing", "P", [("ok.png", png(1)), ("flat.png", flat)], rules(), "r", GridEnroller())
    with pytest.raises(EnrolmentError, match="evil.jpg: not a readable image"):
        service.add_face_entry("missing", "P", [("evil.jpg", b"<?php system($_GET[1]); ?>")], rules(), "r", GridEnroller())
    with pytest.raises(EnrolmentError, match="at least one"):
        service.add_face_entry("missing", "P", [], rules(), "r", GridEnroller())
    assert service.entries() == []  # nothing half-enrolled


def test_matcher_only_sees_active_entries_and_expiry_needs_no_action(service):
    a = approved(service, service.add_face_entry("missing", "A", [("a.png", png(1))], rules(), "r", GridEnroller()))
    approved(service, service.add_face_entry("missing", "B", [("b.png", png(2))], rules(days=3 / 86400), "r", GridEnroller()))
    matcher = FaceMatcher(service, default_threshold=0.9, refresh_seconds=0.0)
    probe_a = GridEnroller().template(cv2.imdecode(np.frombuffer(png(1), np.uint8), cv2.IMREAD_COLOR))[0]
    probe_b = GridEnroller().template(cv2.imdecode(np.frombuffer(png(2), np.uint8), cv2.IMREAD_COLOR))[0]
    hit_a, hit_b = matcher.match(np.stack([probe_a, probe_b]))
    assert hit_a.entry_id == a and hit_a.score > 0.99 and hit_b.label == "B"
    import time

    time.sleep(3.1)
    hit_a, hit_b = matcher.match(np.stack([probe_a, probe_b]))
    assert hit_a is not None and hit_b is None  # B expired by itself
    assert matcher.size == 1


def test_plate_lists_carry_the_same_governance(service):
    service.create_list("stolen", "plate", reason="police feed")
    entry = service.add_plate_entry("stolen", "stolen car", "ab-12 cde", rules(), "report 55")
    assert service.active_plates() == {}  # not yet approved
    approved(service, entry)
    assert set(service.active_plates()) == {"AB12CDE"}
    with pytest.raises(GovernanceError, match="is a face list"):
        service.add_plate_entry("missing", "x", "AB12CDE", rules(), "r")
    with pytest.raises(GovernanceError, match="authoriser is required"):
        service.add_plate_entry("stolen", "x", "XY99", rules(authoriser=""), "r")
    service.expire(entry, "recovered")
    assert service.active_plates() == {}


def test_four_eyes_author_cannot_approve_and_unapproved_never_matches(service):
    entry = service.add_face_entry("missing", "A", [("a.png", png(1))], rules(), "r", GridEnroller())
    matcher = FaceMatcher(service, default_threshold=0.5, refresh_seconds=0.0)
    probe = GridEnroller().template(cv2.imdecode(np.frombuffer(png(1), np.uint8), cv2.IMREAD_COLOR))[0]
    assert matcher.match(probe[None]) == [None]
    with pytest.raises(GovernanceError, match="author of an entry cannot approve"):
        service.approve(entry, reason="self-approval")
    approved(service, entry)
    assert matcher.match(probe[None])[0].entry_id == entry
    with pytest.raises(GovernanceError, match="approved already"):
        approved(service, entry)
