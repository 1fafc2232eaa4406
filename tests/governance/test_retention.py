from datetime import datetime, timedelta, timezone

import numpy as np

from safecity.config import Retention
from safecity.events.store import EventQuery, EventStore
from safecity.governance.audit import AuditLog
from safecity.governance.retention import RetentionJob
from safecity.records import Event

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def ago(days: float) -> float:
    return (NOW - timedelta(days=days)).timestamp()


def test_retention_deletes_what_is_due_and_audits_it(store_url, tmp_path):
    store = EventStore(store_url, tmp_path / "media")
    picture = np.zeros((16, 16, 3), np.uint8)
    store.add_events(
        [
            Event(camera="a", type="motion", start_ts=ago(40), snapshot=picture),  # row due (30 d)
            Event(camera="a", type="motion", start_ts=ago(10), snapshot=picture),  # only media due (7 d)
            Event(camera="a", type="motion", start_ts=ago(1), snapshot=picture),  # nothing due
            Event(camera="a", type="plate_read", start_ts=ago(31)),  # due (30 d)
            Event(camera="a", type="face_match", start_ts=ago(10), snapshot=picture),  # alert keeps media
            Event(camera="a", type="line_crossing", start_ts=ago(60)),  # counts kept 90 d
        ]
    )
    files = sorted((tmp_path / "media").rglob("*.jpg"))
    assert len(files) == 4
    job = RetentionJob(store, Retention())

    plan = job.run(dry_run=True, now=NOW)
    assert plan.events_by_type == {"motion": 1, "plate_read": 1} and plan.media_files == 2  # 40 d and 10 d motion
    assert store.count() == 6 and len(list((tmp_path / "media").rglob("*.jpg"))) == 4  # dry run touched nothing
    assert AuditLog(store.engine).tail(1) == []

    done = job.run(now=NOW)
    assert done.events_by_type == {"motion": 1, "plate_read": 1} and done.media_files == 1
    rows, total = store.search(EventQuery(limit=10))
    assert total == 4 and sorted(r.type for r in rows) == ["face_match", "line_crossing", "motion", "motion"]
    kept = {r.type + ("+media" if r.snapshot else "") for r in rows}
    assert kept == {"face_match+media", "line_crossing", "motion", "motion+media"}
    assert len(list((tmp_path / "media").rglob("*.jpg"))) == 2
    (record,) = AuditLog(store.engine).tail(1)
    details = record.as_dict()["details"]
    assert record.action == "retention.delete" and details["events_by_type"] == {"motion": 1, "plate_read": 1}
    assert job.run(now=NOW).total == 0  # nothing left to do
    store.close()
