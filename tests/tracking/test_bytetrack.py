"""ByteTracker on synthetic scenes with known answers, and on TUD ground truth made noisy."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest

from safecity.records import Detections
from safecity.tracking import ByteTracker
from safecity.tracking.bytetrack import assign, box_iou
from safecity.tracking.kalman import KalmanBoxFilter, xyxy_to_cxcywh
from safecity.tracking.metrics import MotTrajectories, combine, evaluate

W, H = 40.0, 100.0  # a person-sized box


def _box(cx: float, cy: float, w: float = W, h: float = H) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _dets(
    boxes: list[list[float]], scores: list[float] | None = None, cls: str | list[str] = "person"
) -> Detections:
    if not boxes:
        return Detections.empty()
    return Detections.from_boxes(boxes, scores, cls)


def _ids_by_frame(outputs: list[Detections]) -> list[dict[str, int]]:
    """Per frame: object name (data column 'who') -> tracker id."""
    return [{str(w): int(t) for w, t in zip(d.data.get("who", []), d.tracker_id)} for d in outputs]


def _walk(
    fps: float, seconds: float, speed: float, hidden: tuple[float, float] | None = None
) -> Iterator[tuple[float, Detections]]:
    """One person walking right at ``speed`` px/s, invisible during ``hidden`` (s)."""
    for k in range(round(seconds * fps)):
        ts = k / fps
        if hidden and hidden[0] <= ts < hidden[1]:
            yield ts, Detections.empty()
        else:
            yield ts, _dets([_box(100 + speed * ts, 300)])


# -- building blocks ---------------------------------------------------------


def test_box_iou_and_assign() -> None:
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [50, 50, 60, 60]])
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0]])
    cost = np.array([[0.1, 0.9], [0.2, 0.3]])
    matches, rows, cols = assign(cost, max_cost=0.5)
    assert matches == [(0, 0), (1, 1)] and rows == [] and cols == []
    matches, rows, cols = assign(np.array([[0.9]]), max_cost=0.5)
    assert matches == [] and rows == [0] and cols == [0]


def test_kalman_learns_velocity_in_pixels_per_second_at_any_fps() -> None:
    kf = KalmanBoxFilter()
    for fps in (5.0, 30.0):
        mean, cov = kf.initiate(xyxy_to_cxcywh(_box(100, 300)))
        for k in range(1, int(3 * fps)):
            mean, cov = kf.predict(mean, cov, 1 / fps)
            mean, cov = kf.update(mean, cov, xyxy_to_cxcywh(_box(100 + 60 * k / fps, 300)))
        assert mean[0, 4] == pytest.approx(60, abs=3), fps  # vx in px/s
        coasted, grown = kf.predict(mean, cov, 1.0)
        assert coasted[0, 0] == pytest.approx(mean[0, 0] + mean[0, 4], abs=1e-9)
        assert grown[0, 0, 0] > cov[0, 0, 0]  # a second unseen: less certain


# -- synthetic scenes ------------------------------------------------------------


@pytest.mark.parametrize("fps", [5.0, 30.0])
def test_first_frame_confirms_later_tracks_need_two_sightings(fps: float) -> None:
    tracker = ByteTracker()
    first = tracker.update(_dets([_box(100, 300)]), 0.0)
    assert list(first.tracker_id) == [1]
    second = tracker.update(_dets([_box(100, 300), _box(400, 300)]), 1 / fps)
    assert list(second.tracker_id) == [1]  # the newcomer is tentative
    third = tracker.update(_dets([_box(100, 300), _box(400, 300)]), 2 / fps)
    assert sorted(third.tracker_id) == [1, 2]


def test_id_kept_through_five_frame_occlusion() -> None:
    fps = 25.0
    hidden = (1.0, 1.0 + 5 / fps)
    tracker = ByteTracker()
    outputs = [tracker.update(d, ts) for ts, d in _walk(fps, 3.0, speed=80, hidden=hidden)]
    ids = {int(t) for d in outputs for t in d.tracker_id}
    assert ids == {1}
    assert sum(len(d) == 0 for d in outputs) == 5  # exactly the hidden frames
    assert len(outputs[int(hidden[1] * fps)]) == 1  # re-found on its first frame back


@pytest.mark.parametrize("fps", [5.0, 10.0, 30.0])
def test_occlusion_in_seconds_not_frames(fps: float) -> None:
    """0.6 s hidden is within the 1 s buffer at every fps; 1.6 s is not."""
    short = ByteTracker()
    ids = {int(t) for ts, d in _walk(fps, 4.0, 60, hidden=(1.0, 1.6)) for t in short.update(d, ts).tracker_id}
    assert ids == {1}
    long = ByteTracker()
    ids = {int(t) for ts, d in _walk(fps, 4.0, 60, hidden=(1.0, 2.6)) for t in long.update(d, ts).tracker_id}
    assert ids == {1, 2}


def test_fast_newcomer_is_confirmed_at_low_fps() -> None:
    """At 5 fps a person crossing at 3 box widths per second overlaps their previous
    box by IoU 0.25: plain ByteTrack can never confirm them; the buffered search can."""
    fps, speed = 5.0, 3 * W
    results = {}
    for sigmas in (0.0, 1.0):
        tracker = ByteTracker(buffer_sigmas=sigmas)
        tracker.update(Detections.empty(), 0.0)  # not the first frame: no instant confirmation
        outputs = [tracker.update(_dets([_box(100 + speed * k / fps, 300)]), k / fps) for k in range(1, 11)]
        results[sigmas] = [int(t) for d in outputs for t in d.tracker_id]
    assert results[0.0] == []
    assert results[1.0] == [1] * 9  # from the second sighting on, one id


@pytest.mark.parametrize("fps", [10.0, 25.0])
def test_no_swap_when_two_people_cross(fps: float) -> None:
    """A walks right at 120 px/s, B left at 50 px/s; their boxes overlap heavily
    for about half a second, and A is hidden while fully behind B (1-3 frames)."""
    tracker = ByteTracker()
    outputs = []
    for k in range(int(4 * fps)):
        ts = k / fps
        a = _box(100 + 120 * ts, 300)
        b = _box(400 - 50 * ts, 310)
        a_hidden = abs((100 + 120 * ts) - (400 - 50 * ts)) < 10  # fully behind B
        boxes, who = ([b], ["B"]) if a_hidden else ([a, b], ["A", "B"])
        dets = _dets(boxes)
        dets.data["who"] = np.array(who, dtype=object)
        outputs.append(tracker.update(dets, ts))
    frames = _ids_by_frame(outputs)
    ids_a = {f["A"] for f in frames if "A" in f}
    ids_b = {f["B"] for f in frames if "B" in f}
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b
    # A was really crossing: seen left of B before, right of B after.
    assert "A" in frames[1] and "A" in frames[-1]


def test_low_score_boxes_extend_tracks_but_never_start_them() -> None:
    fps = 10.0
    scores = [0.9] * 10 + [0.3] * 5 + [0.9] * 5  # the person turns away for 0.5 s
    tracker = ByteTracker()
    outputs = [
        tracker.update(_dets([_box(100 + 50 * k / fps, 300)], [s]), k / fps) for k, s in enumerate(scores)
    ]
    assert [len(d) for d in outputs] == [1] * 20  # the weak boxes are reported too
    assert {int(t) for d in outputs for t in d.tracker_id} == {1}
    np.testing.assert_allclose(outputs[12].confidence, [0.3])

    # Without the second pass the weak frames are lost (the track survives them).
    no_second = ByteTracker(low_threshold=0.5)
    outputs = [
        no_second.update(_dets([_box(100 + 50 * k / fps, 300)], [s]), k / fps) for k, s in enumerate(scores)
    ]
    assert [len(d) for d in outputs] == [1] * 10 + [0] * 5 + [1] * 5

    # A weak box alone never becomes a track, however long it stays.
    lonely = ByteTracker()
    assert all(len(lonely.update(_dets([_box(300, 300)], [0.4]), k / fps)) == 0 for k in range(20))


def test_a_car_never_continues_a_persons_track() -> None:
    tracker = ByteTracker()
    for k in range(5):
        tracker.update(_dets([_box(200, 300)], cls="person"), k * 0.1)
    outputs = [tracker.update(_dets([_box(200, 300)], cls="car"), 0.5 + k * 0.1) for k in range(5)]
    car_ids = {int(t) for d in outputs for t in d.tracker_id}
    assert car_ids == {2}
    assert len(outputs[0]) == 0  # a new, tentative track, not the person's


def test_data_columns_follow_their_boxes_and_time_cannot_go_back() -> None:
    tracker = ByteTracker()
    dets = _dets([_box(100, 300), _box(300, 300)])
    dets.data["plate"] = np.array(["AB123", "XY999"], dtype=object)
    out = tracker.update(dets, 10.0)
    assert dict(zip(out.tracker_id, out.data["plate"])) == {1: "AB123", 2: "XY999"}
    assert list(dets.tracker_id) == [-1, -1]  # the input is not modified
    assert len(tracker.update(Detections.empty(), 10.5)) == 0
    with pytest.raises(ValueError, match="backwards"):
        tracker.update(dets, 9.0)
    tracker.reset()
    assert list(tracker.update(dets, 9.0).tracker_id) == [1, 2]


# -- TUD ground truth, degraded like a real detector ---------------------------------

TUD_FPS = 25.0


def _noisy(gt: MotTrajectories, rng: np.random.Generator, step: int) -> Iterator[tuple[int, Detections]]:
    """GT boxes with 4 % jitter, 10 % dropped, 20 % with a low score, ~0.3 false boxes per frame."""
    frames = gt.by_frame()
    for f in sorted(frames)[::step]:
        _, boxes = frames[f]
        b = boxes[rng.random(len(boxes)) >= 0.10].copy()
        n = len(b)
        b[:, :2] += rng.normal(0, 0.04, (n, 2)) * b[:, 2:]
        b[:, 2:] *= np.exp(rng.normal(0, 0.04, (n, 2)))
        score = np.where(rng.random(n) < 0.2, rng.uniform(0.15, 0.45, n), rng.uniform(0.55, 1.0, n))
        fp = gt.xywh[rng.integers(0, len(gt), rng.poisson(0.3))].copy()
        fp[:, 0] = rng.uniform(0, 640 - fp[:, 2])
        fp[:, 1] = rng.uniform(0, 480 - fp[:, 3])
        b = np.vstack([b, fp])
        score = np.r_[score, rng.uniform(0.1, 0.7, len(fp))]
        yield f, Detections.from_boxes(np.c_[b[:, :2], b[:, :2] + b[:, 2:]], score, "person")


def _track_noisy_tud(
    gt: MotTrajectories, step: int, seeds: Iterable[int] = (0, 1, 2), **options: float
) -> dict[str, float]:
    """Track three noisy versions of ``gt`` analysed at 25/step fps; pooled scores."""
    results = []
    for seed in seeds:
        tracker = ByteTracker(**options)
        rng = np.random.default_rng(seed)
        out = [(f, tracker.update(d, f / TUD_FPS)) for f, d in _noisy(gt, rng, step)]
        seen = np.isin(gt.frame, [f for f, _ in out])
        sampled = MotTrajectories(gt.frame[seen], gt.track_id[seen], gt.xywh[seen], gt.confidence[seen])
        results.append(evaluate(sampled, MotTrajectories.from_tracked(out)))
    return combine(results).as_dict()


@pytest.fixture(scope="module")
def tud(shared_data: Path) -> Path:
    return shared_data / "tracking" / "tud-metrics"


# Measured here (seeds 0-2): Campus 25 fps MOTA 0.854 IDF1 0.848; Stadtmitte 25 fps
# 0.858 / 0.902; Stadtmitte 5 fps 0.754 / 0.803. Dropping 10 % of boxes caps MOTA
# near 0.9. Each threshold sits just under the worst of six 3-seed groups (18 seeds),
# so an equally good tracker with other luck passes and a real regression does not.
@pytest.mark.parametrize(
    ("sequence", "step", "min_mota", "min_idf1"),
    [
        ("TUD-Campus", 1, 0.80, 0.78),
        ("TUD-Stadtmitte", 1, 0.82, 0.81),
        ("TUD-Stadtmitte", 5, 0.73, 0.77),
    ],
)
def test_tracks_noisy_tud_ground_truth(
    tud: Path, sequence: str, step: int, min_mota: float, min_idf1: float
) -> None:
    gt = MotTrajectories.read(tud / sequence / "gt.txt")
    scores = _track_noisy_tud(gt, step)
    assert scores["mota"] >= min_mota, scores
    assert scores["idf1"] >= min_idf1, scores


def test_second_pass_pays_off_on_tud(tud: Path) -> None:
    """ByteTrack's point, measured: using weak boxes raises MOTA by > 0.1 here
    (0.149 to 0.158 over four 3-seed groups; 0.858 vs 0.710 for seeds 0-2)."""
    gt = MotTrajectories.read(tud / "TUD-Stadtmitte" / "gt.txt")
    with_low = _track_noisy_tud(gt, 1)["mota"]
    without_low = _track_noisy_tud(gt, 1, low_threshold=0.5)["mota"]
    assert with_low - without_low > 0.1
