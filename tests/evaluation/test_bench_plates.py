import json
import shutil

import numpy as np
import pytest

from safecity.evaluation.bench_plates import bench_plates, fit_frame


def test_a_frame_is_fitted_into_1280x720_without_cutting_or_stretching():
    tall = np.full((400, 100, 3), 200, np.uint8)
    frame = fit_frame(tall)
    assert frame.shape == (720, 1280, 3)
    filled = np.argwhere(frame[:, :, 0] > 0)
    (top, left), (bottom, right) = filled.min(0), filled.max(0)
    assert (top, bottom) == (0, 719) and right - left + 1 == 180  # 100 x 400 scaled by 1.8, centred
    assert abs((left + right) / 2 - 639.5) <= 1


def test_plate_frames_are_timed_and_plates_found(shared_data, tmp_path):
    images = sorted((shared_data / "plates" / "openalpr-eu" / "images").glob("*.jpg"))[:3]
    for path in images:
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "notes.txt").write_text("not an image")
    result = bench_plates(tmp_path, frames=3, country="de", workers=2)
    assert result["frames"] == 3 and result["frame"] == [1280, 720] and result["country"] == "de"
    assert result["latency_ms"] == pytest.approx(result["detect_ms"] + result["read_ms"], abs=0.05)
    assert 0 < result["ms_per_frame"] and 0 < result["first_pass_ms_per_frame"] and result["workers"] == 2
    assert result["plates_per_frame"] >= 1 and result["plates_read"] >= 1
    json.dumps(result)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no readable images"):
        bench_plates(tmp_path / "empty")


def test_without_a_country_the_bench_learns_it_in_the_untimed_pass_and_times_each_pass(shared_data, tmp_path):
    from safecity.plates.grammar import AREAS

    images = sorted((shared_data / "plates" / "openalpr-eu" / "images").glob("*.jpg"))[:30]
    for path in images:
        shutil.copy(path, tmp_path / path.name)
    result = bench_plates(tmp_path, frames=30, passes=2)
    # European plates read with confidence settle the camera on a European country
    assert result["country"] is None and AREAS[result["region"]] == AREAS["de"]
    assert result["passes"] == 2 and len(result["pass_ms_per_frame"]) == 2
    assert result["ms_per_frame"] == pytest.approx(sum(result["pass_ms_per_frame"]) / 2, abs=0.02)
    assert result["plates_read"] >= 20


def test_too_few_readings_leave_the_country_unlearned(shared_data, tmp_path):
    path = sorted((shared_data / "plates" / "openalpr-eu" / "images").glob("*.jpg"))[0]
    shutil.copy(path, tmp_path / path.name)
    result = bench_plates(tmp_path, frames=1, detector_size=640)
    assert result["region"] is None and result["pass_ms_per_frame"] == [result["ms_per_frame"]]
    assert result["detector_size"] == 640
