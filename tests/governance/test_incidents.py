"""Cross-camera search, fenced in by incidents, on a real clip seen by two 'cameras'."""

import pytest

from safecity.config import parse_config
from safecity.engines.offline import analyze_file
from safecity.events.store import EventQuery, EventStore
from safecity.governance.audit import AuditLog
from safecity.governance.incidents import IncidentService
from safecity.governance.watchlists import GovernanceError
from tests.support.clips import cut_clip, restyle_clip


@pytest.fixture(scope="module")
def two_cameras(people_clip, tmp_path_factory):
    """The first 60 s of the hallway clip, and the same scene as a darker, mirrored camera."""
    folder = tmp_path_factory.mktemp("incident")
    a = cut_clip(people_clip, folder / "a.mp4", 60.0)
    b = restyle_clip(people_clip, folder / "b.mp4", 60.0)
    store = EventStore(f"sqlite:///{folder / 'var' / 'safecity.db'}")
    config = parse_config({"cameras": [
        {"name": "hall-a", "source": str(a), "analysers": ["objects"]},
        {"name": "hall-b", "source": str(b), "analysers": ["objects"]},
    ]})
    for camera in config.cameras:
        analyze_file(camera, config, store)
    yield store
    store.close()


@pytest.mark.slow
def test_reappearances_are_found_by_clothing_and_scoped_to_the_incident(two_cameras):
    store = two_cameras
    service = IncidentService(store, actor="op:carol")
    people_a = store.search(EventQuery(camera="hall-a", type="object", limit=50))[0]
    people_b = store.search(EventQuery(camera="hall-b", type="object", limit=50))[0]
    assert len(people_a) >= 3 and len(people_b) >= 3

    with pytest.raises(GovernanceError, match="no incident"):
        service.search(99, people_a[0].id, reason="x")
    incident = service.open("bag left in hall", reason="report 2026-117", days=2)

    # the clips are the same walk-throughs, so the i-th person on one is the i-th on the other
    people_a.sort(key=lambda p: p.start_time)
    people_b.sort(key=lambda p: p.start_time)
    correct = 0
    for person, same in zip(people_a, people_b):
        results = service.search(incident, person.id, reason="follow the owner", window_minutes=10)
        assert all(r.camera == "hall-b" for r in results)
        correct += bool(results) and results[0].event_id == same.id
    assert correct >= len(people_a) - 1, f"{correct} of {len(people_a)} people found first on the other camera"

    assert service.results(incident)
    assert service.close(incident, reason="owner found") > 0
    assert service.results(incident) == []
    with pytest.raises(GovernanceError, match="closed or expired"):
        service.search(incident, people_a[0].id, reason="again")
    actions = [r.action for r in AuditLog(store.engine).records()]
    assert actions[0] == "incident.open" and actions.count("incident.search") == len(people_a)
    assert actions[-1] == "incident.close"


def test_an_incident_needs_a_reason_and_a_bounded_life(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    service = IncidentService(store, actor="op:carol")
    with pytest.raises(GovernanceError, match="title and a reason"):
        service.open("theft", reason=" ")
    with pytest.raises(GovernanceError, match="at most 30 days"):
        service.open("theft", reason="r", days=365)
    store.close()
