"""Faces on a camera: an approved watchlist entry is found; everyone else leaves no trace.

The "camera" is a clip made from real CelebA photos (evaluation data, never shipped):
one enrolled person shown in photos other than the enrolment one, and six people who
are on no list. Every template the analyser computes is captured on the way, then the
whole database file and media folder are searched for any of them.
"""

import csv
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from safecity.config import parse_config
from safecity.engines.offline import analyze_file
from safecity.events.store import EventQuery, EventStore
from safecity.faces.enrol import FaceEnroller
from safecity.governance.audit import AuditLog
from safecity.governance.watchlists import EnrolmentError, Governance, WatchlistService
from safecity.pipeline import faces as faces_module
from tests.support.clips import slideshow


def celeba(shared_data: Path) -> dict[str, list[Path]]:
    root = shared_data / "faces" / "celeba"
    people: dict[str, list[Path]] = defaultdict(list)
    with open(root / "identity.csv") as handle:
        for row in csv.DictReader(handle):
            people[row["identity"]].append(root / row["image"])
    return {k: sorted(v) for k, v in sorted(people.items())}


def matchable(people: dict[str, list[Path]]) -> str:
    """The first person whose 2nd and 3rd photos match their 1st at the operating threshold.

    Recognition accuracy is measured by `safecity eval faces`; this test checks the
    plumbing and the no-trace rule, so it uses a person the models can recognise.
    """
    from safecity.faces.calibration import OPERATING_THRESHOLD
    from safecity.faces.pipeline import FacePipeline
    from safecity.vision.shared import shared

    pipeline = shared("face-pipeline", FacePipeline)
    for person, photos in people.items():
        if len(photos) < 3:
            continue
        faces = [pipeline.subject(cv2.imread(str(p))) for p in photos[:3]]
        if all(f is not None and f.template is not None for f in faces):
            if min(float(faces[0].template @ f.template) for f in faces[1:]) >= OPERATING_THRESHOLD + 0.05:
                return person
    raise AssertionError("no recognisable person in the data set")


@pytest.fixture(scope="module")
def scene(shared_data, tmp_path_factory):
    people = celeba(shared_data)
    enrolled = matchable(people)
    others = [k for k, v in people.items() if k != enrolled][:6]
    folder = tmp_path_factory.mktemp("faces")
    shown = [people[enrolled][1], people[others[0]][0], people[enrolled][2], *(people[o][0] for o in others[1:])]
    clip = slideshow(shown, folder / "camera.mp4", fill=300 / 432)
    return people, enrolled, others, clip, folder


@pytest.mark.slow
def test_enrolled_person_is_matched_and_nobody_else_leaves_a_trace(scene, monkeypatch):
    people, enrolled, others, clip, folder = scene
    store_url = f"sqlite:///{folder / 'var' / 'safecity.db'}"
    store = EventStore(store_url)
    author, supervisor = WatchlistService(store.engine, "op:alice"), WatchlistService(store.engine, "sup:bob")
    author.create_list("missing", "face", reason="case 12")
    rules = Governance("Missing Persons Act s.4", "find a missing person", "Insp. Roe",
                       datetime.now(timezone.utc) + timedelta(days=3))
    reference = people[enrolled][0]
    entry = author.add_face_entry("missing", "Person M", [(reference.name, reference.read_bytes())], rules,
                                  "case 12", FaceEnroller())
    supervisor.approve(entry, "checked the order")

    config = parse_config({"store": {"url": store_url},
                           "cameras": [{"name": "door", "source": str(clip), "fps": 5, "analysers": ["faces"]}]})
    from safecity.pipeline.faces import FaceMatches

    analyser_templates = []
    real_embed = None

    def capture(crops):
        templates = real_embed(crops)
        analyser_templates.extend(np.array(t) for t in templates)
        return templates

    from safecity.vision.shared import shared

    pipeline = shared("face-pipeline", faces_module.FacePipeline)
    real_embed = pipeline.embedder.embed_aligned
    monkeypatch.setattr(pipeline.embedder, "embed_aligned", capture)
    result = analyze_file(config.cameras[0], config, store)

    matches = [e for e in result.events if e.type == "face_match"]
    assert matches and {e.label for e in matches} == {"Person M"}
    assert all(e.attributes["entry_id"] == entry and e.score >= e.attributes["threshold"] for e in matches)
    assert len({e.key for e in matches}) == 2  # the two passes of the enrolled person
    assert len(analyser_templates) >= 6  # the others were embedded, and matched nobody

    # no trace: the database file (with its WAL) and media folder hold none of those templates
    store.close()
    files = [p for p in (folder / "var").rglob("*") if p.is_file()]
    blobs = b"".join(p.read_bytes() for p in files)
    non_matching = [t for t in analyser_templates if max(float(t @ m) for m in _enrolled(store_url)) < 0.3]
    assert non_matching
    for template in non_matching:
        raw = np.asarray(template, np.float32).tobytes()
        assert raw not in blobs and raw[:64] not in blobs
        assert f"{float(template[0]):.6f}".encode() not in blobs
    # the only stored pictures are the match snapshots, whole frames, never face crops
    pictures = [p for p in files if p.suffix == ".jpg"]
    assert len(pictures) == len({e.key for e in matches})
    assert all(cv2.imread(str(p)).shape == (432, 768, 3) for p in pictures)
    # and the only stored template is the enrolled reference
    store = EventStore(store_url)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM face_templates").scalar() == 1
    rows, total = store.search(EventQuery(type="face_match"))
    assert total == 2 and all(r.review_state == "pending" for r in rows)
    assert AuditLog(store.engine).verify().ok
    store.close()


def _enrolled(url: str) -> list[np.ndarray]:
    store = EventStore(url)
    with store.engine.connect() as connection:
        vectors = [np.frombuffer(r[0], np.float32) for r in connection.exec_driver_sql("SELECT vector FROM face_templates")]
    store.close()
    return vectors


def test_enrolment_refuses_images_without_exactly_one_usable_face(shared_data, tmp_path):
    enroller = FaceEnroller()
    with pytest.raises(EnrolmentError, match="no face found"):
        enroller.template(np.full((240, 320, 3), 128, np.uint8))
    people = celeba(shared_data)
    a, b = (cv2.imread(str(v[0])) for v in list(people.values())[:2])
    height = min(a.shape[0], b.shape[0])
    pair = np.hstack([a[:height], b[:height]])
    with pytest.raises(EnrolmentError, match="2 faces found"):
        enroller.template(pair)
    tiny = cv2.resize(a, (a.shape[1] // 8, a.shape[0] // 8))
    with pytest.raises(EnrolmentError, match="(not good enough|no face found)"):
        enroller.template(tiny)
    template, quality = enroller.template(a)
    assert template.shape == (128,) and abs(np.linalg.norm(template) - 1) < 1e-3 and quality > 0
