"""The motion gate: a cheap test that runs before any model, as in Frigate.

Most CCTV frames show nothing new. Comparing a small, blurred greyscale copy of the
frame with a slowly updated background costs well under a millisecond, and lets every
model-driven analyser skip static frames entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from safecity.records import Detections


@dataclass(slots=True)
class Motion:
    """What the gate saw in one frame.

    ``area`` is the share of the frame that changed; ``regions`` are the changed
    areas as boxes in full-frame pixels; ``active`` says whether analysers should run.
    """

    active: bool
    area: float
    regions: Detections

    @classmethod
    def still(cls) -> "Motion":
        return cls(False, 0.0, Detections.empty())


class MotionGate:
    """Running-average background subtraction on a downscaled frame.

    ``pixel_threshold`` is the grey-level change that counts; ``min_area`` is the share
    of the frame that must change for the gate to open. A change over ``relearn_area``
    of the frame (lights switched, camera moved, stream restarted) resets the
    background instead of raising a storm of motion.
    """

    def __init__(
        self,
        pixel_threshold: int = 25,
        min_area: float = 0.002,
        height: int = 180,
        learning_rate: float = 0.05,
        relearn_area: float = 0.8,
    ) -> None:
        self.pixel_threshold = pixel_threshold
        self.min_area = min_area
        self.height = height
        self.learning_rate = learning_rate
        self.relearn_area = relearn_area
        self._background: np.ndarray | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def reset(self) -> None:
        self._background = None

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        scale = self.height / h if h > self.height else 1.0
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return cv2.GaussianBlur(grey, (5, 5), 0).astype(np.float32)

    def update(self, image: np.ndarray) -> Motion:
        """Compare ``image`` (BGR or grey) with the background, then learn from it."""
        grey = self._prepare(image)
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey
            return Motion.still()
        diff = cv2.absdiff(grey, self._background)
        cv2.accumulateWeighted(grey, self._background, self.learning_rate)
        mask = (diff >= self.pixel_threshold).astype(np.uint8) * 255
        mask = cv2.dilate(mask, self._kernel, iterations=2)
        area = float(np.count_nonzero(mask)) / mask.size
        if area >= self.relearn_area:
            self._background = grey
            return Motion.still()
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_pixels = self.min_area * mask.size
        scale = image.shape[0] / grey.shape[0]
        boxes = []
        for contour in contours:
            if cv2.contourArea(contour) < min_pixels / 4:
                continue  # specks: noise, rain, compression artefacts
            x, y, w, h = cv2.boundingRect(contour)
            boxes.append((x * scale, y * scale, (x + w) * scale, (y + h) * scale))
        regions = Detections.from_boxes(boxes, class_name="motion") if boxes else Detections.empty()
        return Motion(active=area >= self.min_area and bool(boxes), area=area, regions=regions)
