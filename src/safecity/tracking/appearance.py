"""Appearance descriptors for cross-camera search: clothing and body colours, never a face.

Two cameras see the same coat differently: another exposure, white balance, gamma.
So the whole frame is normalised first (grey-world white balance, then brightness
equalised over the frame, which undoes any monotone exposure or gamma curve), and
only then is the object described: colour pixels by hue and saturation, grey and
black pixels (most clothing) by their equalised brightness. A person is described
in two parts, torso and legs; the head (the top sixth of the box) is left out on
purpose: the search follows clothing, not identity. Descriptors are computed on
demand from stored snapshots for one incident's search and are not kept.
"""

from __future__ import annotations

import cv2
import numpy as np

HUE_BINS, SAT_BINS, GREY_BINS = 12, 3, 8
MIN_SATURATION = 50  # below this a pixel's hue is noise


def normalise_frame(image: np.ndarray) -> np.ndarray:
    """HSV of the frame after grey-world balance, with V equalised over the whole frame."""
    balanced = image.astype(np.float32)
    means = balanced.reshape(-1, 3).mean(axis=0) + 1e-3
    balanced *= means.mean() / means
    hsv = cv2.cvtColor(np.clip(balanced, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV)
    hsv[..., 2] = cv2.equalizeHist(hsv[..., 2])
    return hsv


def _histogram(hsv: np.ndarray) -> np.ndarray:
    pixels = hsv.reshape(-1, 3)
    if len(pixels) == 0:
        return np.zeros(HUE_BINS * SAT_BINS + GREY_BINS, np.float32)
    colour = pixels[pixels[:, 1] >= MIN_SATURATION]
    grey = pixels[pixels[:, 1] < MIN_SATURATION]
    chroma, _, _ = np.histogram2d(
        colour[:, 0], colour[:, 1], bins=[HUE_BINS, SAT_BINS], range=[[0, 180], [MIN_SATURATION, 256]]
    )
    shade, _ = np.histogram(grey[:, 2], bins=GREY_BINS, range=(0, 256))
    hist = np.concatenate([chroma.ravel(), shade]).astype(np.float32)
    return hist / len(pixels)


def describe(image: np.ndarray, box: tuple[float, float, float, float] | list[float], family: str) -> np.ndarray:
    """An L2-normalised descriptor of the object in ``box`` (pixels) of ``image``."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 8 or y2 - y1 < 8:
        raise ValueError("box too small to describe")
    hsv = normalise_frame(image)[y1:y2, x1:x2]
    # the middle of the box: its sides are mostly background
    mx = (x2 - x1) // 5
    hsv = hsv[:, mx : hsv.shape[1] - mx]
    if family == "person":
        height = hsv.shape[0]
        parts = [_histogram(hsv[height // 6 : height // 2]), _histogram(hsv[height // 2 :])]  # torso, legs
    else:
        parts = [_histogram(hsv)]
    vector = np.sqrt(np.concatenate(parts))  # Hellinger: the cosine of square roots
    norm = np.linalg.norm(vector)
    return vector / norm if norm else vector


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b)) if a.shape == b.shape else 0.0
