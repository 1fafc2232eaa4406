"""``safecity eval plates``: the protocol's metrics and a small real run."""

import csv
import json
import shutil
import subprocess
import sys

import pytest

from safecity.evaluation import plates
from safecity.evaluation.plates import char_accuracy, edit_distance, iou, load_labels, text_matches

REQUIRED = {"task", "n", "exact_read_rate", "char_accuracy", "detection_recall", "by_condition", "ms_per_image"}


def test_text_matching_follows_the_protocol():
    assert text_matches("1234BCD", "1234 BCD") and text_matches("1234BCD", "1234-bcd.")
    assert text_matches("12?4BC?", "1234BCD")  # '?' in the label matches anything
    assert not text_matches("1234BCD", "12?4BCD")  # but not the other way round
    assert not text_matches("1234BCD", "1234BC")
    assert edit_distance("1234BCD", "1234BC") == 1
    assert edit_distance("12?4BCD", "1294BCD") == 0
    assert char_accuracy("1234", "") == 0.0 and char_accuracy("1234", "1234567890") == 0.0
    assert char_accuracy("1234", "1284") == pytest.approx(0.75)
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_labels_are_validated(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("image,text\na.jpg,X\n")
    with pytest.raises(ValueError, match="plate"):
        load_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("image,plate,x,y,w,h\na.jpg,AB12,1,2,,\n")
    with pytest.raises(ValueError, match="incomplete box"):
        load_labels(tmp_path)


@pytest.fixture(scope="module")
def recognizer():
    from safecity.plates.read import PlateRecognizer

    return PlateRecognizer()


def test_small_run_on_real_scenes(recognizer, shared_data):
    result = plates.evaluate(shared_data / "plates" / "openalpr-eu", limit=8, recognizer=recognizer)
    assert REQUIRED <= set(result) and result["task"] == "plates" and result["n"] == 8
    assert result["detection_recall"] >= 7 / 8
    assert result["exact_read_rate"] >= 0.5
    assert result["char_accuracy"] >= result["exact_read_rate"]
    assert result["ms_per_image"] > 0 and result["by_condition"] == {}
    json.dumps(result)  # serialisable
    assert "exact read rate" in plates.summarise(result)


def test_crops_boxes_and_conditions_in_one_folder(recognizer, shared_data, tmp_path):
    """A mixed folder built from real data: two scenes with boxes, two crops, with a
    condition column; a scene label whose box is elsewhere is not detected."""
    eu = shared_data / "plates" / "openalpr-eu"
    es = shared_data / "plates" / "uc3m-es"
    (tmp_path / "img").mkdir()
    scene_rows = list(csv.DictReader(open(eu / "labels.csv")))[4:6]
    crop_rows = list(csv.DictReader(open(es / "labels.csv")))[100:102]
    lines = ["image,plate,x,y,w,h,condition"]
    for r in scene_rows:
        shutil.copy(eu / r["image"], tmp_path / "img" / (r["image"].split("/")[-1]))
        lines.append(f"img/{r['image'].split('/')[-1]},{r['plate']},{r['x']},{r['y']},{r['w']},{r['h']},day")
    # the same first scene again, with a box where no plate is
    first = scene_rows[0]["image"].split("/")[-1]
    lines.append(f"img/{first},ZZ999ZZ,0,0,20,10,day")
    for r in crop_rows:
        shutil.copy(es / r["image"], tmp_path / "img" / (r["image"].split("/")[-1]))
        lines.append(f"img/{r['image'].split('/')[-1]},{r['plate']},,,,,{r['condition']}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    result = plates.evaluate(tmp_path, recognizer=recognizer)
    assert result["n"] == 5 and result["n_images"] == 4
    assert result["n_scenes"] == 2 and result["n_crops"] == 2
    assert result["detection_recall"] == pytest.approx(2 / 3)  # only boxed labels count
    assert set(result["by_condition"]) == {"day"} | {r["condition"] for r in crop_rows}
    assert not any(m["label"] == "ZZ999ZZ" and m["found"] for m in result["misreads"])
    # the Spanish crops carry anonymising boxes: read (and rescored) with them, then back to normal
    assert result["anonymised_boxes"] is True and recognizer.reader.find_hidden is False


def test_command_line(shared_data, tmp_path):
    out = tmp_path / "p.json"
    run = subprocess.run(
        [sys.executable, "-m", "safecity.cli", "eval", "plates", str(shared_data / "plates" / "cn-crops"),
         "--json", str(out), "--limit", "6"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert REQUIRED <= set(result) and result["n"] == 6 and result["detection_recall"] is None
    assert "exact read rate" in run.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "safecity.cli", "eval", "plates", str(tmp_path), "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode != 0 and "labels.csv" in bad.stderr


def test_command_line_detector_size(shared_data, tmp_path):
    out = tmp_path / "p.json"
    eu = str(shared_data / "plates" / "openalpr-eu")
    run = subprocess.run(
        [sys.executable, "-m", "safecity.cli", "eval", "plates", eu, "--json", str(out), "--limit", "3",
         "--detector-size", "640"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert result["detector_size"] == 640 and result["n"] == 3 and result["detection_recall"] is not None
    bad = subprocess.run(
        [sys.executable, "-m", "safecity.cli", "eval", "plates", eu, "--json", str(tmp_path / "q.json"),
         "--detector-size", "650"],
        capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode != 0 and "multiple of 32" in bad.stderr and not (tmp_path / "q.json").exists()
