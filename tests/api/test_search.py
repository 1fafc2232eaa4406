"""Event search by plate text and watchlist entry, on SQLite and on real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from safecity.api.search import hourly_counts
from safecity.events.store import EventQuery
from safecity.events.store import EventStore
from safecity.records import Event
from tests.events.test_store import T0


def plate_events():
    return [
        Event(camera="gate", type="plate_read", start_ts=T0, attributes={"plate": "AB12CDE"}),
        Event(camera="gate", type="plate_match", start_ts=T0 + 10, attributes={"plate": "XY99ZZZ", "entry_id": 7}),
        Event(camera="lane", type="plate_read", start_ts=T0 + 20, attributes={"plate": "AB99XYZ"}),
        Event(camera="lane", type="motion", start_ts=T0 + 30, attributes={"zones": ["road"]}),
        Event(camera="lane", type="face_match", start_ts=T0 + 40, attributes={"entry_id": 12}),
    ]


def test_plate_entry_time_and_camera_filters(store_url, tmp_path):
    store = EventStore(store_url, tmp_path / "media")
    store.add_events(plate_events())

    def plates(**filters):
        rows, total = store.search(EventQuery(**filters))
        assert total == len(rows)
        return [r.attributes.get("plate") for r in rows]

    assert plates(plate="ab-12") == ["AB12CDE"]  # case and punctuation ignored
    assert plates(plate="99") == ["AB99XYZ", "XY99ZZZ"]  # partial, newest first
    assert plates(plate="99", camera="gate") == ["XY99ZZZ"]
    assert plates(plate="%") == plates()  # a wildcard character is no wildcard
    assert plates(plate="Q") == []
    assert plates(entry_id=7) == ["XY99ZZZ"]
    assert [r.type for r in store.search(EventQuery(entry_id=12))[0]] == ["face_match"]
    assert plates(entry_id=8) == []
    start = datetime.fromtimestamp(T0 + 5, timezone.utc)
    assert plates(after=start, before=start + timedelta(seconds=20), type="plate_read") == ["AB99XYZ"]
    rows, total = store.search(EventQuery(limit=2, offset=2))
    assert total == 5 and [r.type for r in rows] == ["plate_read", "plate_match"]
    store.close()


def test_hourly_counts_fill_empty_hours(store_url, tmp_path):
    store = EventStore(store_url, tmp_path / "media")
    now = datetime(2026, 11, 27, 15, 30, tzinfo=timezone.utc)
    at = lambda h, m: datetime(2026, 11, 27, h, m, tzinfo=timezone.utc).timestamp()  # noqa: E731
    store.add_events(
        [Event(camera="c", type="motion", start_ts=at(h, m)) for h, m in ((13, 5), (13, 50), (15, 0), (9, 0))]
    )
    counts = hourly_counts(store.engine, hours=4, now=now)
    assert [(h.hour, n) for h, n in counts] == [(12, 0), (13, 2), (14, 0), (15, 1)]
    store.close()
