"""Line crossings, zone occupancy and dwell time on synthetic tracks with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from safecity.config import Camera, Line, Zone
from safecity.records import Detections
from safecity.tracking.analytics import (
    CameraAnalytics,
    LineCounter,
    ZoneMonitor,
    points_in_polygon,
)

SIZE = (1000, 1000)  # width, height in pixels
DOOR = Line(name="door", start=(0.0, 0.5), end=(1.0, 0.5))  # y = 500, drawn left to right


def _tracked(*objects: tuple[int, float, float], cls: str = "person", h: float = 100.0) -> Detections:
    """Tracked boxes from (track id, foot x, foot y) in pixels; boxes 40 x ``h``."""
    if not objects:
        return Detections.empty()
    boxes = [[x - 20, y - h, x + 20, y] for _, x, y in objects]
    dets = Detections.from_boxes(boxes, None, cls)
    dets.tracker_id = np.array([tid for tid, _, _ in objects], dtype=np.int64)
    return dets


def _run_line(counter: LineCounter, feet_y: list[float], x: float = 500.0, tid: int = 1) -> list:
    crossings = []
    for k, y in enumerate(feet_y):
        crossings += counter.update(_tracked((tid, x, y)), k * 0.2, *SIZE)
    return crossings


# -- lines -------------------------------------------------------------------------


def test_crossing_twice_counts_one_in_and_one_out() -> None:
    counter = LineCounter([DOOR])
    crossings = _run_line(counter, [300, 400, 480, 560, 650, 700, 600, 520, 450, 350])
    assert [c.direction for c in crossings] == ["in", "out"]
    assert [c.ts for c in crossings] == [pytest.approx(0.6), pytest.approx(1.6)]
    assert {(c.line, c.track_id, c.class_name) for c in crossings} == {("door", 1, "person")}
    assert counter.count("door", "in") == 1 and counter.count("door", "out") == 1
    assert counter.count("door", "in", "car") == 0


def test_jitter_on_the_line_is_not_counted() -> None:
    jitter = [300] + [495, 505, 497, 503, 494, 506] * 4 + [600] + [504, 496, 505, 495] * 3
    counted = _run_line(LineCounter([DOOR]), jitter)
    assert [c.direction for c in counted] == ["in"]  # the one real crossing
    # The same path without hysteresis counts every wobble: what the margin is for.
    naive = _run_line(LineCounter([DOOR], hysteresis=0.0, min_margin_px=0.0), jitter)
    assert len(naive) > 10


def test_margin_grows_with_box_size() -> None:
    """A 400 px tall person wobbling 15 px is jitter; a 40 px one moving 15 px is not."""
    big = LineCounter([DOOR])
    small = LineCounter([DOOR])
    counts = {"big": 0, "small": 0}
    for k, y in enumerate([470, 515, 470, 515]):
        counts["big"] += len(big.update(_tracked((1, 500, y), h=400), k * 0.2, *SIZE))
        counts["small"] += len(small.update(_tracked((1, 500, y), h=40), k * 0.2, *SIZE))
    assert counts == {"big": 0, "small": 3}


def test_direction_follows_line_orientation() -> None:
    reversed_door = Line(name="door", start=(1.0, 0.5), end=(0.0, 0.5))
    crossings = _run_line(LineCounter([reversed_door]), [300, 700])
    assert [c.direction for c in crossings] == ["out"]


def test_passing_beyond_the_end_of_a_segment_is_not_a_crossing() -> None:
    short = Line(name="gate", start=(0.2, 0.5), end=(0.4, 0.5))  # x 200..400 px
    counter = LineCounter([short])
    assert _run_line(counter, [300, 700], x=800) == []
    assert len(_run_line(counter, [300, 700], x=300, tid=2)) == 1


def test_crossing_while_unseen_is_counted_once_and_tracks_are_separate() -> None:
    counter = LineCounter([DOOR])
    steps = [
        _tracked((1, 500, 300), (2, 100, 700)),
        Detections.empty(),  # both occluded
        _tracked((1, 500, 700), (2, 100, 300)),
        _tracked((1, 500, 720), (2, 100, 280)),
    ]
    crossings = [c for k, d in enumerate(steps) for c in counter.update(d, k * 0.2, *SIZE)]
    assert sorted((c.track_id, c.direction) for c in crossings) == [(1, "in"), (2, "out")]


def test_untracked_boxes_are_ignored_and_lines_scale_with_the_frame() -> None:
    counter = LineCounter([DOOR])
    untracked = Detections.from_boxes([[480, 200, 520, 300]])
    assert counter.update(untracked, 0.0, *SIZE) == []
    # Same normalised line on a 640 x 360 frame: y = 180 px.
    crossings = []
    for k, y in enumerate([120, 160, 200, 240]):
        crossings += counter.update(_tracked((7, 320, y), h=40), k * 0.2, 640, 360)
    assert [c.direction for c in crossings] == ["in"]


# -- zones -------------------------------------------------------------------------

SQUARE = Zone(name="lobby", polygon=[(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)])


def test_points_in_polygon_concave() -> None:
    l_shape = np.array([[0, 0], [10, 0], [10, 4], [4, 4], [4, 10], [0, 10]])
    inside = points_in_polygon([[2, 2], [8, 2], [8, 8], [2, 8], [11, 1]], l_shape)
    assert list(inside) == [True, True, False, True, False]


def test_occupancy_counts_feet_per_class() -> None:
    monitor = ZoneMonitor([SQUARE])
    people = _tracked((1, 400, 400), (2, 600, 700))
    cars = _tracked((3, 500, 500), cls="car")
    head_in = _tracked((4, 500, 800))  # box top at 700 is inside, feet at 800 are not
    outside = _tracked((5, 100, 100))
    frame = Detections(
        *[np.concatenate([getattr(d, f) for d in (people, cars, head_in, outside)])
          for f in ("xyxy", "confidence", "class_name", "tracker_id")]
    )  # fmt: skip
    update = monitor.update(frame, 0.0, *SIZE)
    (occupancy,) = update.occupancy
    assert occupancy.zone == "lobby"
    assert dict(occupancy.counts) == {"person": 2, "car": 1}
    assert occupancy.total == 3
    assert update.exits == ()


def test_dwell_reported_when_the_track_leaves() -> None:
    monitor = ZoneMonitor([SQUARE], exit_grace=1.0)
    exits = []
    for k in range(31):  # inside for 3 s at 10 fps
        exits += monitor.update(_tracked((1, 500, 500)), k * 0.1, *SIZE).exits
    assert exits == []
    (open_stay,) = monitor.dwelling()
    assert open_stay.exit_ts is None and open_stay.seconds(3.0) == pytest.approx(3.0)
    for k in range(31, 60):  # walks out and stays out
        update = monitor.update(_tracked((1, 900, 500)), k * 0.1, *SIZE)
        exits += update.exits
        assert update.occupancy[0].total == 0
    (stay,) = exits
    assert (stay.zone, stay.track_id, stay.class_name) == ("lobby", 1, "person")
    assert stay.enter_ts == 0.0
    assert stay.exit_ts == pytest.approx(3.0)
    assert stay.seconds() == pytest.approx(3.0)
    assert monitor.dwelling() == []


def test_brief_exits_and_occlusions_do_not_split_a_stay() -> None:
    monitor = ZoneMonitor([SQUARE], exit_grace=1.0)
    exits = []
    for k in range(50):
        ts = k * 0.1
        if 10 <= k < 15:
            dets = _tracked((1, 760, 500))  # steps just over the border for 0.5 s
        elif 25 <= k < 32:
            dets = Detections.empty()  # hidden for 0.7 s
        else:
            dets = _tracked((1, 700, 500))
        exits += monitor.update(dets, ts, *SIZE).exits
    assert exits == []
    (stay,) = monitor.flush()
    assert (stay.enter_ts, stay.exit_ts) == (0.0, pytest.approx(4.9))


def test_camera_analytics_from_config() -> None:
    camera = Camera(name="cam", source="clip.mp4", zones=[SQUARE], lines=[DOOR])
    analytics = CameraAnalytics(camera, exit_grace=0.5, hysteresis=0.2)
    results = [
        analytics.update(_tracked((1, 500, y)), k * 0.2, *SIZE)
        for k, y in enumerate([200, 400, 600, 900, 900, 900, 900])
    ]
    assert [c.direction for r in results for c in r.crossings] == ["in"]
    exits = [e for r in results for e in r.exits]
    assert [(e.enter_ts, e.exit_ts) for e in exits] == [(pytest.approx(0.2), pytest.approx(0.4))]
    with pytest.raises(TypeError):
        CameraAnalytics(camera, grace=1.0)
