"""One narrow way to run a neural network: OpenVINO first, onnxruntime as the fallback.

Every model in safecity (detectors, embedders, OCR) runs through
:class:`InferenceModel`, so swapping a model or a runtime touches one file. OpenVINO
was 2-9x faster than onnxruntime on every model measured on this class of CPU;
onnxruntime stays as the portable fallback, and tests check that both agree.
``SAFECITY_BACKEND=onnxruntime`` (or ``openvino``) forces one.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

BACKENDS = ("openvino", "onnxruntime")

# OpenVINO's Python binding initialises C++ statics on first use (compiling a model, a
# thread's first infer request); several camera threads doing that at once deadlocked
# (one waits on the static's guard while holding the GIL the other needs). Those first
# uses are serialised; steady-state inference runs in parallel.
_FIRST_USE = threading.Lock()


_default_streams = 0  # 0: one inference at a time on every core (lowest latency)
# input shapes compiled apart per model (InferenceModel static_shapes): each costs memory
# (PP-OCRv6's recogniser ~60 MB, its line finder ~30 MB), and a camera's lines come in a
# few widths, seen first
MAX_STATIC_SHAPES = 8
PRECISIONS = ("auto", "f32")  # InferenceModel precision: OpenVINO's choice, or full float


@dataclass(frozen=True, slots=True)
class ImageInput:
    """A model whose first input is an image batch, fed as the camera gives it: uint8,
    N x H x W x 3, BGR. The network sees ``(pixel - mean) / scale`` per channel, NCHW,
    RGB where ``rgb``. On OpenVINO the conversion is compiled into the model (it runs
    in the same pass as the first layer); on onnxruntime it is done in numpy. A 800x480
    frame's conversion in numpy (``cv2.dnn.blobFromImage``) and copying four times as
    many bytes into the request cost the plate detector about 4 ms a frame
    (docs/plates.md, seventh round)."""

    mean: float = 0.0
    scale: float = 255.0
    rgb: bool = True

    def blob(self, images: np.ndarray) -> np.ndarray:
        """What the network sees: the conversion done in numpy."""
        x = images[..., ::-1] if self.rgb else images
        return ((x.astype(np.float32) - self.mean) / self.scale).transpose(0, 3, 1, 2).copy()

    def apply(self, model) -> object:
        """``model`` (an ``openvino.Model``) taking uint8 NHWC BGR images in."""
        import openvino as ov
        from openvino.preprocess import ColorFormat, PrePostProcessor

        ppp = PrePostProcessor(model)
        tensor = ppp.input(0).tensor()
        tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
        ppp.input(0).model().set_layout(ov.Layout("NCHW"))
        steps = ppp.input(0).preprocess().convert_element_type(ov.Type.f32)
        if self.rgb:
            steps.convert_color(ColorFormat.RGB)
        if self.mean:
            steps.mean(self.mean)
        if self.scale != 1.0:
            steps.scale(self.scale)
        return ppp.build()


def set_default_streams(streams: int) -> None:
    """How many threads are expected to call each model at once, for models loaded from
    now on. An engine running several cameras in one process sets it to its share of
    the cores: each model then runs that many inferences side by side, one core each
    (throughput), instead of one at a time on every core (0, the default: latency)."""
    global _default_streams
    _default_streams = max(0, int(streams))


def default_streams() -> int:
    return int(os.environ.get("SAFECITY_INFERENCE_STREAMS", _default_streams))


def model_cache_dir() -> Path:
    """Where models converted from packaged weights are kept (never downloaded)."""
    root = os.environ.get("SAFECITY_MODEL_DIR") or Path.home() / ".cache" / "safecity" / "models"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def available_backends() -> list[str]:
    found = []
    for name in BACKENDS:
        try:
            __import__(name)
            found.append(name)
        except ImportError:
            continue
    return found


def choose_backend(requested: str = "auto") -> str:
    requested = os.environ.get("SAFECITY_BACKEND", requested) if requested == "auto" else requested
    available = available_backends()
    if requested == "auto":
        if not available:
            raise RuntimeError("no inference runtime installed: install openvino or onnxruntime")
        return available[0]
    if requested not in available:
        raise RuntimeError(f"inference backend {requested!r} is not installed (have: {', '.join(available) or 'none'})")
    return requested


class InferenceModel:
    """A loaded network. Call it with arrays in input order, or a name→array mapping.

    Thread-safe: OpenVINO gets one infer request per thread; onnxruntime sessions are
    safe to share. ``threads`` caps the CPU threads one inference may use.

    ``streams`` (default: :func:`default_streams`) is how many callers may run it at
    once. With 0, OpenVINO's LATENCY hint runs one inference at a time on all cores, so
    threads calling together take turns. With N >= 1 it is compiled with N streams of
    ``threads`` (default 1) cores each, so N cameras' frames run side by side; on
    onnxruntime each call is then kept to ``threads`` (default 1) cores.

    ``static_shapes`` (OpenVINO): a model called with ever-changing input shapes (text
    lines of every width) is compiled once per shape, up to :data:`MAX_STATIC_SHAPES`
    (then the dynamic model serves the rest). A dynamic-shape model that switches shape
    pays for it on every switch: PP-OCRv6's recogniser took 9-11 ms per line alternating
    between widths, 7 ms compiled per width.

    ``precision`` (OpenVINO): "auto" leaves the choice to OpenVINO, which computes in
    bf16 on CPUs that support it; "f32" keeps full precision. bf16 keeps 8 bits of
    mantissa, and a recogniser's close calls (8 or B) can flip (onnxruntime computes in
    f32 either way). bf16 is not always the faster: on an AMD EPYC it was, on the Xeon
    without AMX of a later session PP-OCRv6's recogniser took 10 ms a line in bf16 and
    6.6 ms in f32 (docs/plates.md, seventh round).

    ``image_input`` (:class:`ImageInput`): the first input takes uint8 NHWC BGR images,
    converted as it says, inside the model where the runtime can.
    """

    def __init__(self, path: str | Path, backend: str = "auto", threads: int | None = None,
                 streams: int | None = None, static_shapes: bool = False, precision: str = "auto",
                 image_input: ImageInput | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"model file not found: {self.path}")
        self.backend = choose_backend(backend)
        self.streams = default_streams() if streams is None else max(0, int(streams))
        self._local = threading.local()
        self.image_input = image_input
        if self.backend == "openvino":
            import openvino as ov

            if self.streams:
                config = {"NUM_STREAMS": self.streams, "INFERENCE_NUM_THREADS": self.streams * (threads or 1)}
            else:
                config = {"PERFORMANCE_HINT": "LATENCY"}
                if threads:
                    config["INFERENCE_NUM_THREADS"] = threads
            if precision == "f32":
                config["INFERENCE_PRECISION_HINT"] = "f32"
            self._core, self._config = ov.Core(), config
            with _FIRST_USE:
                self._compiled = self._core.compile_model(self._read(), "CPU", config)
            self.inputs = [port.any_name for port in self._compiled.inputs]
            self.outputs = [port.any_name for port in self._compiled.outputs]
            self._by_shape: dict[tuple, object] | None = {} if static_shapes else None
        else:
            import onnxruntime as ort

            options = ort.SessionOptions()
            if threads or self.streams:
                options.intra_op_num_threads = threads or 1
            options.log_severity_level = 3
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self.inputs = [i.name for i in self._session.get_inputs()]
            self.outputs = [o.name for o in self._session.get_outputs()]

    def __call__(self, *arrays: np.ndarray, **named: np.ndarray) -> list[np.ndarray]:
        feeds: Mapping[str, np.ndarray] = named or dict(zip(self.inputs, arrays))
        if len(feeds) != len(self.inputs):
            raise ValueError(f"{self.path.name} takes inputs {self.inputs}, got {list(feeds)}")
        if self.image_input is not None:
            first = self.inputs[0]
            images = np.asarray(feeds[first])
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
                raise ValueError(f"{self.path.name} takes uint8 N x H x W x 3 images, got {images.dtype} {images.shape}")
            if self.backend != "openvino":
                feeds = {**feeds, first: self.image_input.blob(images)}
        if self.backend == "openvino":
            compiled = self._for_shapes(feeds)
            requests = self._local.__dict__.setdefault("requests", {})
            request = requests.get(id(compiled))
            if request is None:
                with _FIRST_USE:
                    request = requests[id(compiled)] = compiled.create_infer_request()
                    result = request.infer(dict(feeds))
            else:
                result = request.infer(dict(feeds))
            return [np.asarray(result[port]) for port in compiled.outputs]
        return list(self._session.run(self.outputs, dict(feeds)))

    def _for_shapes(self, feeds: Mapping[str, np.ndarray]):
        """The compiled model for these input shapes (see ``static_shapes``)."""
        if self._by_shape is None:
            return self._compiled
        key = tuple((name, tuple(np.shape(array))) for name, array in sorted(feeds.items()))
        compiled = self._by_shape.get(key)
        if compiled is not None:
            return compiled
        if len(self._by_shape) >= MAX_STATIC_SHAPES:
            return self._compiled
        with _FIRST_USE:
            if key not in self._by_shape:
                model = self._read()
                model.reshape({name: list(shape) for name, shape in key})
                self._by_shape[key] = self._core.compile_model(model, "CPU", self._config)
        return self._by_shape[key]

    def _read(self):
        """The OpenVINO model, with its image conversion where it has one."""
        model = self._core.read_model(str(self.path))
        return self.image_input.apply(model) if self.image_input is not None else model

    def __repr__(self) -> str:
        return f"InferenceModel({self.path.name}, backend={self.backend}, streams={self.streams})"


def output_by_name(model: InferenceModel, outputs: Sequence[np.ndarray], name: str) -> np.ndarray:
    return outputs[model.outputs.index(name)]
