"""The plate detector: fastanpr's YOLOv8n checkpoint rebuilt as ONNX without torch."""

import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from safecity.plates import detect
from safecity.plates.detect import LOOK_SIZE, PlateDetector, convert, load_checkpoint, packaged_checkpoint
from safecity.vision.runtime import available_backends


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def onnx_path(model_dir):
    import os

    old = os.environ.get("SAFECITY_MODEL_DIR")
    os.environ["SAFECITY_MODEL_DIR"] = str(model_dir)
    try:
        yield convert()
    finally:
        if old is None:
            os.environ.pop("SAFECITY_MODEL_DIR", None)
        else:
            os.environ["SAFECITY_MODEL_DIR"] = old


@pytest.fixture(scope="module")
def eu_scenes(shared_data):
    import csv

    root = shared_data / "plates" / "openalpr-eu"
    rows = list(csv.DictReader(open(root / "labels.csv")))[:12]
    return [(cv2.imread(str(root / r["image"])), [float(r[k]) for k in "xywh"]) for r in rows]


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_checkpoint_is_read_without_torch_or_ultralytics():
    code = (
        "import sys; from safecity.plates.detect import load_checkpoint, packaged_checkpoint;"
        "ck = load_checkpoint(packaged_checkpoint());"
        "layers = ck['model'].child('model').children();"
        "assert len(layers) == 23 and layers[-1].kind == 'Detect' and int(layers[-1].nc) == 1;"
        "assert 'torch' not in sys.modules and 'ultralytics' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    payload = pickle.dumps({"model": Evil()}, protocol=2)
    bad = tmp_path / "evil.pt"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("evil/data.pkl", payload)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        load_checkpoint(bad)


@pytest.fixture(scope="module")
def int8_path(onnx_path):
    if "openvino" not in available_backends() or not detect.int8_available():
        pytest.skip("the 8-bit detector needs OpenVINO and NNCF")
    return detect.quantize()  # in the module's model folder (see onnx_path)


def test_convert_is_cached_and_callable_from_the_command_line(onnx_path, int8_path, model_dir, capsys, monkeypatch):
    assert onnx_path.parent == model_dir and onnx_path.is_file()
    assert int8_path.parent == model_dir and int8_path.with_suffix(".bin").is_file()
    stamps = onnx_path.stat().st_mtime_ns, int8_path.stat().st_mtime_ns
    monkeypatch.setenv("SAFECITY_MODEL_DIR", str(model_dir))
    assert detect.main(["convert"]) == 0
    assert capsys.readouterr().out.split() == [str(onnx_path), str(int8_path)]
    assert (onnx_path.stat().st_mtime_ns, int8_path.stat().st_mtime_ns) == stamps  # not rebuilt
    assert detect.main(["nonsense"]) == 2


def test_int8_detector_finds_the_plates_the_float_one_finds(onnx_path, int8_path, eu_scenes):
    exact, int8 = PlateDetector(size=800, model=onnx_path), PlateDetector(size=800, model=int8_path)
    assert int8.model.backend == "openvino"
    for image, _ in eu_scenes:
        a, b = exact.detect(image), int8.detect(image)
        for box, conf in zip(a.xyxy[a.confidence > 0.4], a.confidence[a.confidence > 0.4]):
            match = max(range(len(b)), key=lambda j: _iou(box, b.xyxy[j]))
            assert _iou(box, b.xyxy[match]) > 0.75
            assert abs(conf - b.confidence[match]) < 0.15


def test_the_precision_is_chosen_by_the_runtime(onnx_path, int8_path):
    assert detect.detector_model("float") == onnx_path
    assert detect.detector_model("auto", backend="openvino") == int8_path
    assert detect.detector_model("int8", backend="openvino") == int8_path
    if "onnxruntime" in available_backends():
        assert detect.detector_model("auto", backend="onnxruntime") == onnx_path
        with pytest.raises(ValueError, match="OpenVINO only"):
            detect.detector_model("int8", backend="onnxruntime")
    with pytest.raises(ValueError, match="precision must be"):
        detect.detector_model("fp16")


def test_a_failed_8bit_build_falls_back_to_the_float_model(onnx_path, monkeypatch, caplog):
    if "openvino" not in available_backends():
        pytest.skip("needs OpenVINO")

    def broken(*args, **kwargs):
        raise RuntimeError("calibration frames unreadable")

    monkeypatch.setattr(detect, "int8_available", lambda: True)
    monkeypatch.setattr(detect, "quantize", broken)
    assert detect.detector_model("auto", backend="openvino") == onnx_path
    assert "using the float model" in caplog.text
    with pytest.raises(RuntimeError, match="unreadable"):
        detect.detector_model("int8", backend="openvino")


@pytest.mark.skipif("onnxruntime" not in available_backends(), reason="needs onnxruntime")
def test_matches_ultralytics_reference_output(onnx_path, shared_data):
    """Reference: ultralytics 8.0.136 + torch on the same letterboxed image (computed once,
    offline): its three best raw boxes on openalpr-us car12.jpg, in image pixels."""
    image = cv2.imread(str(shared_data / "plates" / "openalpr-us" / "images" / "car12.jpg"))
    det = PlateDetector(size=640, backend="onnxruntime", model=onnx_path)
    boxes, scores = det.raw(image)
    top = np.argsort(-scores)[:3]
    reference = [
        ([323.389, 554.71, 520.558, 681.651], 0.795),
        ([324.483, 554.234, 520.734, 682.212], 0.7879),
        ([324.609, 553.349, 520.324, 682.342], 0.7859),
    ]
    for i, (box, score) in zip(top, reference):
        assert np.allclose(boxes[i], box, atol=0.1)
        assert scores[i] == pytest.approx(score, abs=1e-3)


@pytest.mark.skipif(len(available_backends()) < 2, reason="needs OpenVINO and onnxruntime")
def test_openvino_and_onnxruntime_agree(onnx_path, eu_scenes):
    ov = PlateDetector(backend="openvino", model=onnx_path)
    ort = PlateDetector(backend="onnxruntime", model=onnx_path)
    for image, _ in eu_scenes[:5]:
        a, b = ov.detect(image), ort.detect(image)
        strong_a = a[a.confidence > 0.4]
        assert len(strong_a) >= 1
        for box, conf in zip(strong_a.xyxy, strong_a.confidence):
            match = max(range(len(b)), key=lambda j: _iou(box, b.xyxy[j]))
            assert _iou(box, b.xyxy[match]) > 0.9  # OpenVINO runs in bf16 on this CPU
            assert abs(conf - b.confidence[match]) < 0.03


def test_finds_labelled_plates_in_real_scenes(onnx_path, eu_scenes):
    det = PlateDetector(model=onnx_path)
    found = 0
    for image, (x, y, w, h) in eu_scenes:
        d = det.detect(image)
        assert set(d.class_name) <= {"plate"}
        assert (d.xyxy[:, [0, 2]] <= image.shape[1]).all() and (d.xyxy[:, [1, 3]] <= image.shape[0]).all()
        found += any(_iou(b, (x, y, x + w, y + h)) >= 0.3 for b in d.xyxy)
    assert found >= len(eu_scenes) - 1


def test_empty_scene_gives_no_plates(onnx_path):
    det = PlateDetector(model=onnx_path)
    blank = np.full((720, 1280, 3), 128, np.uint8)
    d = det.detect(blank)
    assert len(d) == 0 and d.xyxy.shape == (0, 4)


@pytest.mark.parametrize("size", [100, 2000, 810, 800.0, True, "800"])
def test_an_unusable_input_size_is_refused(onnx_path, size):
    with pytest.raises(ValueError, match="multiple of 32"):
        PlateDetector(size=size, model=onnx_path)


def test_the_size_sets_the_frame_input(onnx_path):
    frame = np.zeros((720, 1280, 3), np.uint8)
    for size, (h, w) in ((640, (384, 640)), (832, (480, 832))):
        xyxy, scores = PlateDetector(size=size, model=onnx_path).raw(frame)
        # one candidate per anchor of the three strides of an h x w input
        assert len(scores) == len(xyxy) == sum((h // s) * (w // s) for s in (8, 16, 32))


def test_packaged_weights_are_found():
    path = packaged_checkpoint()
    assert path.name == "best.pt" and path.stat().st_size > 5_000_000


def test_a_second_look_finds_small_plates_the_whole_frame_missed(shared_data):
    import csv

    root = shared_data / "plates" / "openalpr-us"
    rows = list(csv.DictReader(open(root / "labels.csv")))[:62]  # distant plates among them
    det = PlateDetector(size=800)  # as PlateRecognizer runs it
    gained = 0
    for r in rows:
        image = cv2.imread(str(root / r["image"]))
        x, y, w, h = (float(r[k]) for k in "xywh")
        plain = det.detect(image)
        looked = det.detect(image, second_look=True)
        extra = looked.data.get("second_look", np.zeros(len(looked), bool))
        # the second look only adds: the sure plates are the plain detector's
        np.testing.assert_allclose(looked.xyxy[~extra], plain.xyxy)
        assert (looked.confidence[extra] >= det.confidence).all()
        missed = not any(_iou(b, (x, y, x + w, y + h)) >= 0.3 for b in plain.xyxy)
        gained += missed and any(_iou(b, (x, y, x + w, y + h)) >= 0.3 for b in looked.xyxy[extra])
    assert gained >= 1


def test_a_candidate_inside_a_window_already_searched_is_not_looked_at_again(shared_data, monkeypatch):
    """Doubtful candidates crowd together; a window searched once answers for every
    candidate inside it. Same plates as looking at each one apart, fewer looks."""
    import csv

    root = shared_data / "plates" / "openalpr-us"
    rows = list(csv.DictReader(open(root / "labels.csv")))[:40]
    det = PlateDetector(size=800)
    looks = []
    plain_detect = PlateDetector.detect

    def counting(self, image, size=None, second_look=False):
        looks.append(size == LOOK_SIZE)
        return plain_detect(self, image, size, second_look)

    monkeypatch.setattr(PlateDetector, "detect", counting)
    shared = [det.detect(cv2.imread(str(root / r["image"])), second_look=True) for r in rows]
    shared_looks, looks[:] = sum(looks), []
    reuse = PlateDetector._look_again
    monkeypatch.setattr(PlateDetector, "_look_again", lambda self, image, box, searched: reuse(self, image, box, []))
    apart = [det.detect(cv2.imread(str(root / r["image"])), second_look=True) for r in rows]
    for a, b in zip(shared, apart):
        np.testing.assert_allclose(a.xyxy, b.xyxy)
    assert shared_looks < sum(looks)
