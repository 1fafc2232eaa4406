"""Plates on a camera: one read per vehicle pass, unreadable passes kept, listed plates alerted."""

import csv
from datetime import datetime, timedelta, timezone

import pytest

from safecity.config import parse_config
from safecity.engines.offline import analyze_file
from safecity.events.store import EventQuery, EventStore
from safecity.governance.watchlists import Governance, WatchlistService
from tests.support.clips import slideshow


@pytest.mark.slow
def test_each_pass_gives_one_read_and_a_listed_plate_an_alert(shared_data, tmp_path):
    root = shared_data / "plates" / "openalpr-eu"
    with open(root / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))[:4]
    clip = slideshow([root / r["image"] for r in rows], tmp_path / "road.mp4", size=(1280, 720), fill=0.9,
                     seconds_each=2.0)
    store_url = f"sqlite:///{tmp_path / 'var' / 'safecity.db'}"
    store = EventStore(store_url)
    wanted = rows[1]["plate"]
    author, supervisor = WatchlistService(store.engine, "op:alice"), WatchlistService(store.engine, "sup:bob")
    author.create_list("stolen", "plate", reason="police feed")
    entry = author.add_plate_entry("stolen", "stolen hatchback", wanted,
                                   Governance("Police Act s.1", "recover stolen cars", "Insp. Doe",
                                              datetime.now(timezone.utc) + timedelta(days=2)), "report 9")
    supervisor.approve(entry, "checked the report")
    config = parse_config({"store": {"url": store_url},
                           "cameras": [{"name": "road", "source": str(clip), "fps": 5, "analysers": ["plates"]}]})
    result = analyze_file(config.cameras[0], config, store)

    reads = [e for e in result.events if e.type == "plate_read"]
    # one event per pass, readable or not (a parked car might also show a second plate)
    assert len(reads) >= len(rows)
    texts = {e.attributes["plate"] for e in reads}
    correct = sum(r["plate"] in texts for r in rows)
    assert correct >= len(rows) - 1, (texts, [r["plate"] for r in rows])
    assert all(e.snapshot is not None and e.box for e in reads)
    assert all((e.label == "unreadable") == (not e.attributes["readable"]) for e in reads)
    matches = [e for e in result.events if e.type == "plate_match"]
    assert wanted in texts
    assert [m.label for m in matches] == [wanted] and matches[0].attributes["entry_id"] == entry
    rows_stored, total = store.search(EventQuery(type="plate_match"))
    assert total == len(matches) and all(r.review_state == "pending" for r in rows_stored)
    store.close()


class _SpyDetector:
    """The real plate detector, recording the size of every image it is given."""

    def __init__(self, real):
        self.real, self.shapes = real, []

    def detect(self, image, size=None):
        self.shapes.append(image.shape[:2])
        return self.real.detect(image, size=size)


@pytest.mark.slow
def test_with_objects_plates_are_searched_only_on_moving_vehicles(shared_data, tmp_path):
    from safecity.pipeline.camera import CameraPipeline
    from safecity.pipeline.plates import PlateEvents
    from safecity.sources.video import VideoSource

    root = shared_data / "plates" / "openalpr-eu"
    with open(root / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))[:3]
    faces = sorted((shared_data / "faces" / "celeba").glob("**/*.jpg"))[:2]  # moving, but no vehicle
    clip = slideshow([root / r["image"] for r in rows] + faces, tmp_path / "road.mp4", size=(1280, 720), fill=0.9,
                     seconds_each=2.0)
    store_url = f"sqlite:///{tmp_path / 'safecity.db'}"
    EventStore(store_url).close()
    config = parse_config({"store": {"url": store_url},
                           "cameras": [{"name": "road", "source": str(clip), "fps": 5,
                                        "analysers": ["plates", "objects"]}]})  # order is the pipeline's
    pipeline = CameraPipeline(config.cameras[0], config)
    assert [a.name for a in pipeline.analysers] == ["objects", "plates"]
    plates = pipeline.analysers[1]
    assert isinstance(plates, PlateEvents) and plates.on_vehicles
    spy = _SpyDetector(plates.recognizer.detector)
    real = plates.recognizer

    class Recognizer:  # the shared recognizer, but with the spy as its detector
        detector, read_boxes, plate_boxes = spy, real.read_boxes, real.plate_boxes

    plates.recognizer = Recognizer()
    events, frames, searched_in_vehicle_scenes = [], 0, 0
    for frame in VideoSource("road", str(clip), 5).frames():
        events += pipeline.process(frame)
        frames += 1
        if frame.pts < 2.0 * len(rows) - 0.5:
            searched_in_vehicle_scenes = len(spy.shapes)
    events += pipeline.flush()

    assert searched_in_vehicle_scenes, "no vehicle was searched"
    # the face photos move too, but hold no vehicle: at most the last car's tail is searched
    assert len(spy.shapes) - searched_in_vehicle_scenes <= 3
    assert all(h < 720 or w < 1280 for h, w in spy.shapes), "whole frames were searched"
    texts = {e.attributes["plate"] for e in events if e.type == "plate_read"}
    assert sum(r["plate"] in texts for r in rows) >= len(rows) - 1, (texts, [r["plate"] for r in rows])
    # reads stop once a pass is settled: far fewer OCR runs than frames with a plate
    assert plates.plates_read < frames


def test_vehicle_regions_merge_until_none_overlap_and_crops_get_a_few_sizes():
    from safecity.pipeline.plates import crop_size, merge_boxes

    chain = [[0, 0, 10, 10], [20, 0, 30, 10], [8, 0, 22, 10], [100, 100, 110, 110]]  # 1-3 chain via the middle one
    assert sorted(merge_boxes(chain)) == [[0, 0, 30, 10], [100, 100, 110, 110]]
    assert merge_boxes([[0, 0, 10, 10], [10, 0, 20, 10]]) == [[0, 0, 10, 10], [10, 0, 20, 10]]  # touching only
    assert [crop_size(w, h) for w, h in [(90, 60), (330, 200), (700, 420), (1280, 720)]] == [320, 416, 800, 800]


def test_list_entries_match_readings_that_differ_only_by_o_0_or_i_1(tmp_path):
    from safecity.pipeline.plates import PlateLists

    store = EventStore(f"sqlite:///{tmp_path / 'safecity.db'}")
    author, supervisor = WatchlistService(store.engine, "op:alice"), WatchlistService(store.engine, "sup:bob")
    author.create_list("stolen", "plate", reason="police feed")
    rules = Governance("Police Act s.1", "recover stolen cars", "Insp. Doe",
                       datetime.now(timezone.utc) + timedelta(days=2))
    supervisor.approve(author.add_plate_entry("stolen", "van", "CH0P 8Y1", rules, "report 9"), "checked")
    supervisor.approve(author.add_plate_entry("stolen", "car", "皖A 12345", rules, "report 10"), "checked")
    lists = PlateLists(store.url)
    assert [e.label for e in lists.lookup("CHOP8YI")] == ["van"]
    assert [e.label for e in lists.lookup("CH0P8Y1")] == ["van"]
    assert lists.lookup("CH0P8Y") == [] and lists.lookup("CHQP8Y1") == []
    # a Chinese plate keeps its province character
    assert [e.label for e in lists.lookup("皖A12345")] == ["car"] and lists.lookup("A12345") == []
    store.close()


class _ConfidentReader:
    """Reads every plate as a sure US-format text, recording the priors it was given."""

    def __init__(self):
        from safecity.records import Detections

        self.priors, self.calls = [], 0
        self.detector = self

    def detect(self, image, size=None):
        from safecity.records import Detections

        self.calls += 1
        x = 100.0 * (self.calls // 2 % 5)  # somewhere else every other frame: a new vehicle pass
        return Detections.from_boxes([[x, 10.0, x + 50.0, 30.0]], [0.9], "plate")

    @staticmethod
    def lookup(plate):
        return []

    def read_boxes(self, image, xyxy, priors=None):
        from safecity.plates.read import PlateRead

        self.priors.append(priors)
        return [PlateRead("7ABC123", 0.99, [0.99] * 7, "7ABC123", "us") for _ in xyxy]


def test_a_camera_learns_its_plate_country_from_its_own_reads_unless_given(tmp_path):
    import numpy as np

    from safecity.pipeline.plates import PlateEvents
    from safecity.plates.grammar import region_of
    from safecity.records import Frame
    from safecity.vision.motion import Motion

    config = parse_config({"store": {"url": f"sqlite:///{tmp_path / 'safecity.db'}"},
                           "cameras": [{"name": "road", "source": "x.mp4", "analysers": ["plates"]},
                                       {"name": "port", "source": "y.mp4", "analysers": ["plates"],
                                        "plate_country": "es"}]})
    image = np.zeros((120, 640, 3), np.uint8)
    for camera, first, last in [(config.cameras[0], None, "us"), (config.cameras[1], "es", "es")]:
        reader = _ConfidentReader()
        plates = PlateEvents(camera, config, recognizer=reader, lists=reader)
        for k in range(60):
            plates.process(Frame(camera.name, image, float(k), float(k), k), Motion.still())
        assert len(reader.priors) > 20  # RegionPrior's min_reads
        assert region_of(reader.priors[0]) == first and region_of(reader.priors[-1]) == last
    for wrong in ("xx", ""):
        with pytest.raises(Exception, match="unknown plate country"):
            parse_config({"cameras": [{"name": "a", "source": "x.mp4", "plate_country": wrong}]})
