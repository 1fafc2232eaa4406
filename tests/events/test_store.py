from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import text

from safecity.events.store import EventQuery, EventStore
from safecity.records import Event

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc).timestamp()


def make_events():
    image = np.zeros((48, 64, 3), np.uint8)
    return [
        Event(camera="gate", type="motion", start_ts=T0, label="motion", score=0.1, box=(1, 2, 3, 4), snapshot=image),
        Event(camera="gate", type="motion", start_ts=T0 + 60, label="motion", attributes={"zones": ["door"]}),
        Event(camera="lobby", type="motion", start_ts=T0 + 120, label="motion"),
    ]


def test_store_round_trip_search_and_idempotence(store_url, tmp_path):
    store = EventStore(store_url, tmp_path / "media")
    assert store.add_events(make_events()) == 3
    assert store.add_events(make_events()) == 0  # replay: same keys, nothing new
    assert store.count() == 3

    rows, total = store.search(EventQuery())
    assert total == 3 and [r.camera for r in rows] == ["lobby", "gate", "gate"]  # newest first
    assert rows[0].start_time == datetime.fromtimestamp(T0 + 120, timezone.utc)

    rows, total = store.search(EventQuery(camera="gate", limit=1))
    assert total == 2 and len(rows) == 1 and rows[0].attributes == {"zones": ["door"]}
    after = datetime.fromtimestamp(T0 + 30, timezone.utc)
    _, total = store.search(EventQuery(after=after, before=after + timedelta(seconds=60)))
    assert total == 1

    first = store.search(EventQuery(camera="gate", offset=1))[0][0]
    assert first.box == [1.0, 2.0, 3.0, 4.0]
    snapshot = store.snapshot_path(first)
    assert snapshot.is_file() and snapshot.read_bytes()[:2] == b"\xff\xd8"
    assert snapshot.is_relative_to(tmp_path / "media")
    store.close()


def test_republished_event_updates_its_row(store_url, tmp_path):
    store = EventStore(store_url, tmp_path / "media")
    ongoing = Event(camera="gate", type="motion", start_ts=T0, label="motion", score=0.1)
    assert store.add_events([ongoing]) == 1
    ended = Event(camera="gate", type="motion", start_ts=T0, end_ts=T0 + 9, label="motion", score=0.3)
    assert ended.key == ongoing.key
    assert store.add_events([ended]) == 0
    (row,), total = store.search(EventQuery())
    assert total == 1 and row.score == 0.3
    assert row.end_time == datetime.fromtimestamp(T0 + 9, timezone.utc)
    store.close()


def test_sqlite_store_uses_wal_and_keeps_media_beside_the_database(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'var' / 'db.sqlite'}")
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert store.media.root == tmp_path / "var" / "media"
    store.close()


def test_media_paths_cannot_escape(tmp_path):
    import pytest

    store = EventStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(ValueError, match="escapes"):
        store.media.path("../../etc/passwd")
    store.close()
