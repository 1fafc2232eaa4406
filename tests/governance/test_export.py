import json

import cv2
import numpy as np

from safecity.events.store import EventQuery, EventStore
from safecity.governance.audit import AuditLog
from safecity.governance.export import export_events, verify_export_folder
from safecity.governance.redaction import FaceRedactor
from safecity.records import Event
from tests.governance.test_redaction import street_with_face


def test_export_is_redacted_hashed_and_audited(shared_data, tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'var' / 'db.sqlite'}")
    frame = street_with_face(shared_data)
    store.add_events([
        Event(camera="door", type="motion", start_ts=1000.0, snapshot=frame),
        Event(camera="door", type="object", label="person", start_ts=1010.0),
        Event(camera="gate", type="motion", start_ts=1020.0, snapshot=frame),
    ])
    target = tmp_path / "export"
    manifest = export_events(store, EventQuery(camera="door"), target, "aud:erin", "court request 77")
    assert manifest["events"] == 2 and manifest["redacted"] and manifest["query"] == {"camera": "door"}
    lines = [json.loads(line) for line in (target / "events.jsonl").read_text().splitlines()]
    assert {e["camera"] for e in lines} == {"door"}
    (picture,) = [e["snapshot"] for e in lines if "snapshot" in e]
    exported = cv2.imread(str(target / picture))
    assert len(FaceRedactor(plates=False).faces(exported)) == 0  # the face left blurred
    assert verify_export_folder(target) == []
    record = AuditLog(store.engine).tail(1)[0].as_dict()
    assert record["action"] == "export" and record["reason"] == "court request 77"

    (target / picture).write_bytes((target / picture).read_bytes()[:-10])
    (target / "media" / "extra.jpg").write_bytes(b"x")
    problems = verify_export_folder(target)
    assert any("was changed" in p for p in problems) and any("extra.jpg" in p for p in problems)
    store.close()
