"""MOTA and IDF1 against motmetrics' own numbers, and small cases worked by hand."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from safecity.records import Detections
from safecity.tracking.metrics import (
    MotTrajectories,
    clear_mot,
    combine,
    evaluate,
    identity_scores,
    iou_xywh,
)

SEQUENCES = ["TUD-Campus", "TUD-Stadtmitte"]


@pytest.fixture(scope="module")
def tud(shared_data: Path) -> Path:
    return shared_data / "tracking" / "tud-metrics"


@pytest.fixture(scope="module")
def reference(tud: Path) -> dict[str, dict[str, float]]:
    with open(tud / "reference_metrics_motmetrics_1.4.0.csv", newline="") as f:
        return {row[""]: {k: float(v) for k, v in row.items() if k} for row in csv.DictReader(f)}


def _scores(tud: Path, sequence: str):
    gt = MotTrajectories.read(tud / sequence / "gt.txt")
    hyp = MotTrajectories.read(tud / sequence / "test.txt")
    return evaluate(gt, hyp)


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_matches_motmetrics_reference(tud: Path, reference, sequence: str) -> None:
    ref = reference[sequence]
    scores = _scores(tud, sequence)
    d = scores.as_dict()
    assert d["mota"] == pytest.approx(ref["mota"], abs=1e-3)
    assert d["idf1"] == pytest.approx(ref["idf1"], abs=1e-3)
    # The counts behind them must agree exactly, not just the ratios.
    assert d["false_positives"] == ref["num_false_positives"]
    assert d["misses"] == ref["num_misses"]
    assert d["id_switches"] == ref["num_switches"]
    assert d["idp"] == pytest.approx(ref["idp"], abs=1e-9)
    assert d["idr"] == pytest.approx(ref["idr"], abs=1e-9)
    assert d["motp"] == pytest.approx(ref["motp"], abs=1e-9)
    assert d["recall"] == pytest.approx(ref["recall"], abs=1e-9)
    assert d["precision"] == pytest.approx(ref["precision"], abs=1e-9)


def test_overall_row_combines_sequences(tud: Path, reference) -> None:
    overall = combine(_scores(tud, s) for s in SEQUENCES)
    assert overall.mota == pytest.approx(reference["OVERALL"]["mota"], abs=1e-9)
    assert overall.idf1 == pytest.approx(reference["OVERALL"]["idf1"], abs=1e-9)


def test_reads_motchallenge_sample(tud: Path) -> None:
    t = MotTrajectories.read(tud / "iotest" / "motchallenge.txt")
    assert list(t.frame) == [1, 1, 2, 2, 2]
    assert list(t.track_id) == [1, 2, 2, 3, 4]
    np.testing.assert_allclose(t.xywh[0], [399, 182, 121, 229])
    assert set(t.by_frame()) == {1, 2}


def test_read_rejects_garbage_and_filters_confidence(tmp_path: Path) -> None:
    good = tmp_path / "gt.txt"
    good.write_text("1,1,0,0,10,10,1,-1,-1,-1\n1,2,20,0,10,10,0,-1,-1,-1\n\n")
    assert len(MotTrajectories.read(good)) == 2
    assert list(MotTrajectories.read(good, min_confidence=1).track_id) == [1]
    bad = tmp_path / "bad.txt"
    bad.write_text("1,1,0,0,10,10\nframe,id,x\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        MotTrajectories.read(bad)


def test_write_read_round_trip_and_from_tracked(tmp_path: Path) -> None:
    dets = Detections.from_boxes([[10, 20, 40, 80], [50, 50, 60, 70]], [0.9, 0.5], "person")
    dets.tracker_id = np.array([3, 7])
    t = MotTrajectories.from_tracked([(5, dets)])
    np.testing.assert_allclose(t.xywh, [[10, 20, 30, 60], [50, 50, 10, 20]])
    t.write(tmp_path / "out.txt")
    back = MotTrajectories.read(tmp_path / "out.txt")
    assert list(back.frame) == [5, 5] and list(back.track_id) == [3, 7]
    np.testing.assert_allclose(back.xywh, t.xywh)


def test_iou_xywh() -> None:
    iou = iou_xywh([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]])
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0]])


def _traj(rows: list[tuple[int, int, float]]) -> MotTrajectories:
    """Rows of (frame, id, x) for 10 x 10 boxes on one line."""
    return MotTrajectories.from_rows([(f, i, x, 0, 10, 10) for f, i, x in rows])


def test_perfect_tracking_scores_one() -> None:
    gt = _traj([(f, i, 30 * i + f) for f in range(1, 6) for i in (1, 2)])
    s = evaluate(gt, gt)
    assert (s.mota, s.idf1, s.clear.id_switches) == (1.0, 1.0, 0)


def test_counts_fp_fn_and_switch_by_hand() -> None:
    gt = _traj([(1, 1, 0), (2, 1, 0), (3, 1, 0), (4, 1, 0)])
    # frame 1: hyp 7 matches; frame 2: missed, plus a far-away false positive;
    # frames 3-4: hyp 8 takes over -> one switch (counted once, then kept).
    hyp = _traj([(1, 7, 1), (2, 9, 100), (3, 8, 1), (4, 8, 1)])
    c = clear_mot(gt, hyp)
    assert (c.misses, c.false_positives, c.id_switches, c.matches) == (1, 1, 1, 3)
    assert c.mota == pytest.approx(1 - 3 / 4)
    # IDF1: gt 1 pairs with hyp 8 for 2 frames; 4 gt boxes and 4 hyp boxes.
    i = identity_scores(gt, hyp)
    assert (i.idtp, i.idfp, i.idfn) == (2, 2, 2)
    assert i.idf1 == pytest.approx(0.5)


def test_previous_correspondence_is_kept_over_a_closer_box() -> None:
    """motmetrics keeps an established pair while IoU >= 0.5, even if another
    hypothesis fits better: a better-fitting stranger is not a switch."""
    gt = _traj([(1, 1, 0), (2, 1, 0)])
    hyp = _traj([(1, 5, 0), (2, 5, 2), (2, 6, 0)])  # frame 2: hyp 6 is a perfect fit
    c = clear_mot(gt, hyp)
    assert (c.id_switches, c.false_positives, c.matches) == (0, 1, 2)


def test_iou_threshold_is_inclusive_at_one_half() -> None:
    gt = _traj([(1, 1, 0)])
    hyp = MotTrajectories.from_rows([(1, 1, 0, 0, 10, 5)])  # IoU exactly 0.5
    assert clear_mot(gt, hyp).matches == 1
    assert clear_mot(gt, hyp, iou_threshold=0.51).matches == 0


def test_empty_hypotheses() -> None:
    gt = _traj([(1, 1, 0), (2, 1, 0)])
    s = evaluate(gt, MotTrajectories.from_rows([]))
    assert (s.mota, s.idf1, s.clear.misses) == (0.0, 0.0, 2)
