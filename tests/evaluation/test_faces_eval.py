"""``safecity eval faces`` and ``safecity eval fairness``: the protocols on hand-made
templates (where every number is known), then small real runs through the command line."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from safecity.evaluation import fairness, faces
from safecity.evaluation.faces import identification, sort_identities, tar_at_far, verification
from safecity.faces.calibration import OPERATING_THRESHOLD, fpir_at, fmr_for_fpir, threshold_at_rate

FACES_FIELDS = {"task", "fte_rate", "verification", "identification", "ms_per_face"}
FAIRNESS_FIELDS = {"task", "threshold", "fmr_by_group", "detection_rate_by_group", "fmr_max_min_ratio", "n_by_group"}


def unit(*values: float) -> np.ndarray:
    v = np.zeros(128, np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


# --------------------------------------------------------------------------- protocol


def test_threshold_never_exceeds_the_rate():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    t = threshold_at_rate(scores, 0.1)  # one of ten may pass
    assert 0.8 < t <= 0.8 + 1e-9 and (scores >= t).sum() == 1
    assert (scores >= threshold_at_rate(scores, 0.05)).sum() == 0  # floor(0.5) = 0 may pass
    tied = np.array([0.9, 0.9, 0.1, 0.1])
    assert (tied >= threshold_at_rate(tied, 0.25)).sum() == 0  # a tie at the boundary is excluded whole
    assert threshold_at_rate(np.array([0.5, -math.inf]), 0.5) == -math.inf  # nothing left to reject
    assert threshold_at_rate(np.array([]), 0.1) == -math.inf
    assert fpir_at(fmr_for_fpir(1e-3, 100), 100) == pytest.approx(1e-3)


def test_failure_to_enrol_fails_genuine_pairs_and_never_false_accepts():
    genuine = np.array([0.9, 0.8, -math.inf])
    impostor = np.array([0.1, 0.2, -math.inf, -math.inf])
    tar, threshold = tar_at_far(genuine, impostor, 0.5)  # two of four impostors may pass: all finite ones do
    assert threshold == -math.inf
    assert tar == pytest.approx(2 / 3)  # the FTE genuine pair still fails
    assert faces.auc(np.array([0.9, 0.8]), np.array([0.1, 0.85])) == pytest.approx(0.75)


def test_verification_fields_and_levels():
    a, b, c = unit(1, 0), unit(1, 0.1), unit(0, 1)
    templates = {"a": a, "b": b, "c": c, "x": None}
    pairs = [("a", "b", True), ("a", "x", True), ("a", "c", False), ("b", "c", False), ("x", "c", False)]
    result = verification(pairs, templates)
    assert result["n_genuine"] == 2 and result["n_impostor"] == 3
    assert set(result["tar_at_far"]) == {"1e-2", "1e-3"}  # 1e-4 only with >= 10,000 impostors
    assert result["tar_at_far"]["1e-2"] == 0.5  # a-b passes, a-x (no face) fails
    # genuine (0.995, FTE) against impostors (0, 0.0995, FTE): 1 + 1 + 1 + 0 + 0 + 0.5 (the two FTEs tie)
    assert result["auc"] == pytest.approx(3.5 / 6, abs=1e-6)
    many = [("a", "c", False)] * 10_000 + [("a", "b", True)]
    assert set(verification(many, templates)["tar_at_far"]) == {"1e-2", "1e-3", "1e-4"}


def test_identification_enrols_even_positions_by_first_file_name():
    # identities sort numerically: 2, 10, 11, 30 -> enrolled 2 and 11; 10 and 30 are non-mated
    p, q, r, s = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1), unit(0, 1, 1)
    rows = [
        ("img/b_2.jpg", "2"), ("img/a_2.jpg", "2"),  # a_2 is first in file-name order: the gallery image
        ("img/c_11.jpg", "11"), ("img/d_11.jpg", "11"), ("img/e_11.jpg", "11"),
        ("img/f_10.jpg", "10"), ("img/g_30.jpg", "30"),
    ]
    templates = {
        "img/a_2.jpg": p, "img/b_2.jpg": unit(1, 0.2, 0),  # mated, close
        "img/c_11.jpg": q, "img/d_11.jpg": unit(0.1, 1, 0), "img/e_11.jpg": None,  # one mated FTE
        "img/f_10.jpg": r, "img/g_30.jpg": s,  # s is 0.707 from q: a strong non-mated search
    }
    assert sort_identities(["2", "10", "11", "30"]) == ["2", "10", "11", "30"]
    assert sort_identities(["s2", "s10"]) == ["s10", "s2"]
    result = identification(rows, templates)
    assert result["n_enrolled"] == 2 and result["n_gallery_templates"] == 2
    assert result["n_mated"] == 3 and result["n_nonmated"] == 2
    assert result["rank1"] == pytest.approx(2 / 3)  # the FTE probe is a miss
    # FPIR <= 1e-1 of 2 non-mated: none may pass, so t is just above 0.707; both mated hits are above it
    assert result["fnir_at_fpir"]["1e-1"] == pytest.approx(1 / 3)
    assert result["top_nonmated"][0]["probe"] == "img/g_30.jpg"
    assert result["top_nonmated"][0]["gallery_identity"] == "11"


def test_gallery_failure_to_enrol_fails_all_its_probes():
    rows = [("1.jpg", "a"), ("2.jpg", "a"), ("3.jpg", "b")]
    result = identification(rows, {"1.jpg": None, "2.jpg": unit(1), "3.jpg": unit(0, 1)})
    assert result["n_gallery_templates"] == 0 and result["rank1"] == 0.0
    assert result["fnir_at_fpir"]["1e-3"] == 1.0


def test_fairness_ratio_uses_the_floor():
    assert fairness.max_min_ratio({"a": 0.0, "b": 0.0}) == 1.0
    assert fairness.max_min_ratio({"a": 0.0, "b": 2e-5}) == pytest.approx(20.0)
    assert fairness.max_min_ratio({"a": 1e-4, "b": 2e-4}) == pytest.approx(2.0)
    scores = fairness.pair_scores([unit(1), unit(1), None])
    assert len(scores) == 3 and scores[0] == pytest.approx(1.0) and np.isneginf(scores[1:]).all()


def test_data_set_files_are_checked(tmp_path):
    with pytest.raises(FileNotFoundError):
        faces.evaluate(tmp_path)
    (tmp_path / "identity.csv").write_text("image,person\na.jpg,1\n")
    with pytest.raises(ValueError, match="identity"):
        faces.evaluate(tmp_path)
    (tmp_path / "identity.csv").write_text("image,identity\nmissing.jpg,1\n")
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        faces.evaluate(tmp_path)
    (tmp_path / "groups.csv").write_text("image,age,gender,group\nchild.jpg,9,female,A\n")
    with pytest.raises(ValueError, match="adult"):
        fairness.evaluate(tmp_path)


# --------------------------------------------------------------------------- real runs


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "safecity.cli", *args], capture_output=True, text=True, timeout=600, env={**os.environ}
    )


def test_faces_eval_on_a_celeba_slice(shared_data, tmp_path):
    out = tmp_path / "faces.json"
    done = run_cli("eval", "faces", str(shared_data / "faces" / "celeba"), "--json", str(out), "--limit", "60")
    assert done.returncode == 0, done.stderr
    assert "TAR@FAR" in done.stdout and "rank-1" in done.stdout
    result = json.loads(out.read_text())
    assert FACES_FIELDS <= set(result) and result["task"] == "faces"
    json.dumps(result, allow_nan=False)  # strict JSON
    assert 0.0 <= result["fte_rate"] < 0.1
    v = result["verification"]
    assert v["n_genuine"] + v["n_impostor"] == 60 and v["n_genuine"] > 10 and v["n_impostor"] > 10
    assert set(v["tar_at_far"]) == {"1e-2", "1e-3"}
    assert all(0.0 <= x <= 1.0 for x in v["tar_at_far"].values())
    assert v["tar_at_far"]["1e-2"] >= v["tar_at_far"]["1e-3"]
    assert v["auc"] > 0.85  # SFace separates real CelebA pairs; a broken alignment would not
    i = result["identification"]
    assert set(i["fnir_at_fpir"]) == {"1e-1", "1e-2", "1e-3"}
    assert i["fnir_at_fpir"]["1e-1"] <= i["fnir_at_fpir"]["1e-2"] <= i["fnir_at_fpir"]["1e-3"] <= 1.0
    assert i["rank1"] > 0.6 and i["n_mated"] > 0 and i["n_nonmated"] > 0
    # the first 60 rows of identity.csv: every image is either enrolled, mated or non-mated
    with (shared_data / "faces" / "celeba" / "identity.csv").open() as handle:
        rows = list(csv.DictReader(handle))[:60]
    assert i["n_enrolled"] + i["n_mated"] + i["n_nonmated"] == len(rows)
    assert i["n_enrolled"] == (len({r["identity"] for r in rows}) + 1) // 2
    assert 0.0 < result["ms_per_face"] < 1000.0
    assert result["timing"]["wall_ms_per_face"] == result["ms_per_face"] and result["timing"]["workers"] >= 1


def test_orl_without_pairs_reports_no_verification(shared_data):
    result = faces.evaluate(shared_data / "faces" / "orl", limit=40)  # 4 people, 10 lab photos each
    assert result["verification"] is None
    assert result["fte_rate"] == 0.0
    assert result["identification"]["rank1"] == 1.0
    assert "no pairs.csv" in faces.summarise(result)


def test_parallel_template_pass_changes_timing_only(shared_data):
    """Two images in flight at once: the same templates in the same order, and honest timing fields."""
    dataset = shared_data / "faces" / "celeba"
    images = [image for image, _ in faces.load_identities(dataset, 24)]
    one = faces.templates_for(dataset, images, workers=1)
    two = faces.templates_for(dataset, images, workers=2)
    assert len(one.templates) == len(two.templates) == len(images)
    for a, b in zip(one.templates, two.templates):
        assert (a is None) == (b is None)
        if a is not None:
            assert float(a @ b) >= 0.999
    assert (one.no_face, one.low_quality) == (two.no_face, two.low_quality)
    for run, workers in ((one, 1), (two, 2)):
        timing = run.timing()
        assert timing["workers"] == workers and len(run.latencies_ms) == len(images)
        assert timing["latency_ms_p50"] <= timing["latency_ms_p95"]
        assert 0 < timing["wall_ms_per_face"] and 0 < timing["cpu_ms_per_face"]
        assert len(timing["load_average_1min"]) == 2
    # one at a time, the wall time per image is the mean latency (up to the loop's overhead)
    assert one.ms_per_face == pytest.approx(np.mean(one.latencies_ms), rel=0.05)


def test_fairness_eval_on_a_utkface_slice(shared_data, tmp_path):
    """A small set in the fairness format built from the real crops (linked, not copied)."""
    source = shared_data / "faces" / "utkface-groups"
    with (source / "groups.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    chosen = []
    for group in ("Asian", "Indian", "White"):
        adults = [r for r in rows if r["group"] == group and float(r["age"]) >= 18][:12]
        children = [r for r in rows if r["group"] == group and float(r["age"]) < 18][:3]
        chosen += adults + children
    (tmp_path / "images").symlink_to(source / "images", target_is_directory=True)
    with (tmp_path / "groups.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["image", "age", "gender", "group"])
        writer.writeheader()
        writer.writerows(chosen)
    out = tmp_path / "fair.json"
    done = run_cli("eval", "fairness", str(tmp_path), "--json", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert FAIRNESS_FIELDS <= set(result) and result["task"] == "fairness"
    json.dumps(result, allow_nan=False)
    assert result["threshold"] == OPERATING_THRESHOLD
    assert result["n_by_group"] == {"Asian": 12, "Indian": 12, "White": 12}  # children left out
    assert result["pairs_by_group"] == {g: 66 for g in ("Asian", "Indian", "White")}
    assert all(0.9 <= r <= 1.0 for r in result["detection_rate_by_group"].values())  # face crops
    assert all(0.0 <= f <= 1.0 for f in result["fmr_by_group"].values())
    assert result["fmr_max_min_ratio"] >= 1.0
    rates = {g: max(f, 1e-6) for g, f in result["fmr_by_group"].items()}
    assert result["fmr_max_min_ratio"] == pytest.approx(max(rates.values()) / min(rates.values()), rel=1e-3)
