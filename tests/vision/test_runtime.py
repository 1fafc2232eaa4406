"""The inference runtime: latency mode and side-by-side streams give the same outputs."""

import threading

import numpy as np
import pytest

from safecity.engines.local import inference_streams
from safecity.plates.detect import convert
from safecity.vision import runtime
from safecity.vision.runtime import InferenceModel


def test_one_camera_gets_latency_mode_and_several_share_the_cores():
    assert inference_streams(1, 2) == 0
    assert inference_streams(8, 2) == 2
    assert inference_streams(3, 16) == 3


@pytest.mark.parametrize("backend", runtime.available_backends())
def test_streams_give_the_same_outputs_from_parallel_callers(backend):
    path = convert()  # the plate detector: a real network, small and fixed
    latency = InferenceModel(path, backend=backend, streams=0)
    parallel = InferenceModel(path, backend=backend, streams=2)
    assert parallel.streams == 2 and latency.streams == 0
    images = [np.random.default_rng(i).random((1, 3, 320, 320), dtype=np.float32) for i in range(4)]
    expected = [latency(x)[1] for x in images]
    results: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        results[i] = parallel(images[i])[1]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for i, want in enumerate(expected):
        np.testing.assert_allclose(results[i], want, atol=2e-3)


def test_the_process_default_applies_to_models_loaded_afterwards(monkeypatch):
    monkeypatch.delenv("SAFECITY_INFERENCE_STREAMS", raising=False)
    monkeypatch.setattr(runtime, "_default_streams", 0)
    runtime.set_default_streams(2)
    assert InferenceModel(convert()).streams == 2
    monkeypatch.setenv("SAFECITY_INFERENCE_STREAMS", "0")
    assert InferenceModel(convert()).streams == 0


@pytest.mark.skipif("openvino" not in runtime.available_backends(), reason="needs OpenVINO")
def test_full_float_precision_is_asked_of_openvino_and_matches_onnxruntime():
    path = convert()
    f32 = InferenceModel(path, backend="openvino", precision="f32")
    assert f32._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    x = np.random.default_rng(3).random((1, 3, 320, 320), dtype=np.float32)
    if "onnxruntime" in runtime.available_backends():
        np.testing.assert_allclose(f32(x)[1], InferenceModel(path, backend="onnxruntime")(x)[1], atol=1e-4)
    with pytest.raises(ValueError, match="unknown precision"):
        InferenceModel(path, backend="openvino", precision="fp8")


@pytest.mark.skipif("openvino" not in runtime.available_backends(), reason="needs OpenVINO")
def test_static_shapes_compile_each_shape_once_and_give_the_same_outputs(monkeypatch):
    path = convert()
    dynamic = InferenceModel(path, backend="openvino")
    static = InferenceModel(path, backend="openvino", static_shapes=True)
    shapes = [(1, 3, 160, 320), (1, 3, 320, 320), (1, 3, 160, 320)]
    for i, shape in enumerate(shapes):
        x = np.random.default_rng(i).random(shape, dtype=np.float32)
        np.testing.assert_allclose(static(x)[1], dynamic(x)[1], atol=2e-3)
    assert len(static._by_shape) == 2  # the repeated shape reused its compiled model
    # past the cap, new shapes run on the dynamic model
    monkeypatch.setattr(runtime, "MAX_STATIC_SHAPES", 2)
    x = np.random.default_rng(9).random((1, 3, 96, 320), dtype=np.float32)
    np.testing.assert_allclose(static(x)[1], dynamic(x)[1], atol=2e-3)
    assert len(static._by_shape) == 2


@pytest.mark.parametrize("backend", runtime.available_backends())
def test_an_image_input_takes_camera_pixels_and_gives_what_the_float_blob_gives(backend):
    import cv2

    from safecity.vision.runtime import ImageInput

    path = convert()
    images = np.random.default_rng(5).integers(0, 256, (1, 320, 320, 3), dtype=np.uint8)
    floats = InferenceModel(path, backend=backend, static_shapes=True)
    pixels = InferenceModel(path, backend=backend, static_shapes=True, image_input=ImageInput(scale=255.0, rgb=True))
    blob = cv2.dnn.blobFromImage(images[0], 1 / 255.0, swapRB=True)
    np.testing.assert_allclose(ImageInput(scale=255.0, rgb=True).blob(images), blob, atol=1e-6)
    np.testing.assert_allclose(pixels(images)[1], floats(blob)[1], atol=1e-4)
    with pytest.raises(ValueError, match="uint8"):
        pixels(blob)
    # other statistics: mean and scale both apply, channels kept in order
    gray = ImageInput(mean=127.5, scale=127.5, rgb=False).blob(images)
    np.testing.assert_allclose(gray, images.transpose(0, 3, 1, 2) / 127.5 - 1.0, atol=1e-6)
