"""``safecity eval counting``: people counting in still frames (MAE, RMSE).

Data set format (as in the shared evaluation data's README): ``counts.csv`` with columns ``image``
(path relative to the folder) and ``count``; an optional ``roi.png`` whose white area
is the counted region. ``count`` is the number of people whose **head** lies inside
the white region (the whole image when there is no ``roi.png``).

Method: the person detector (:class:`~safecity.vision.objects.ObjectDetector`,
NanoDet) runs on each image; each person box gives a head point, the middle of the
box's top edge moved down by ``HEAD_OFFSET`` of the box height (the centre of a head
sits about a twelfth of a standing person's height below the top of the head); a
person counts when that point is on a white ROI pixel. The settings are chosen for
the *task* (people in CCTV views, often small and partly hidden), not for one file:

* input size: the image at its own resolution (never downscaled below ``MIN_INPUT``
  on its long side, and never above ``MAX_INPUT``): far people in CCTV frames are
  15-30 px tall, and NanoDet's native 416 px loses them;
* two scales, fused (``SCALES``): the detector also runs at 1.5x, and boxes found at
  both scales are merged (:func:`~safecity.vision.objects.fuse`: mean score over the
  views), then suppressed once more across scales. A small detector's misses and
  false boxes differ between scales, so the fused score is steadier: the error
  changes less when the threshold is a little off (``docs/models-objects.md``);
* ``SCORE_THRESHOLD`` 0.21 on the fused score, lower than the detector's alerting
  default (0.4): a count is unbiased where the detector's precision equals its
  recall (count = TP / P, truth = TP / R); for people in CCTV crowds that break-even
  lies near 0.21 for the fused score (0.25 for one scale);
* ``NMS_CONTAIN``: a box mostly inside a better one is a duplicate (a partial body
  under a whole one), not a second person.

``docs/models-objects.md`` records the measurements behind these choices, and how
sensitive the error is to them. ``ms_per_image`` is the wall time of detection and
counting per image (JPEG decoding excluded), on the backend shown in ``method``.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from safecity.records import Detections

HEAD_OFFSET = 0.08
MIN_INPUT = 640
MAX_INPUT = 1280
SCALES = (1.0, 1.5)
SCORE_THRESHOLD = 0.21
VIEW_THRESHOLD = 0.1  # per-scale threshold before fusion
FUSE_IOU = 0.55
NMS_IOU = 0.5
NMS_CONTAIN = 0.8


def read_counts(dataset_dir: Path) -> list[tuple[str, float]]:
    """The (image, count) rows of ``counts.csv``, in file order."""
    path = Path(dataset_dir) / "counts.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (expected columns: image, count)")
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as handle:  # tolerate a BOM
        reader = csv.DictReader(handle)
        fields = {name.strip().lower() for name in reader.fieldnames or []}
        if not {"image", "count"} <= fields:
            raise ValueError(f"{path} needs the columns image, count (has {sorted(fields)})")
        for number, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            try:
                count = float(row["count"])
            except ValueError:
                raise ValueError(f"{path}:{number}: count {row['count']!r} is not a number") from None
            if not row["image"]:
                raise ValueError(f"{path}:{number}: empty image path")
            rows.append((row["image"], count))
    if not rows:
        raise ValueError(f"{path} lists no images")
    return rows


def load_roi(dataset_dir: Path) -> np.ndarray | None:
    """The counted region as a boolean mask (white pixels), or None without ``roi.png``."""
    path = Path(dataset_dir) / "roi.png"
    if not path.is_file():
        return None
    roi = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if roi is None:
        raise ValueError(f"{path} is not a readable image")
    if roi.ndim == 3:
        if roi.shape[2] == 4:  # transparent pixels are outside
            alpha = roi[..., 3] > 127
            roi = cv2.cvtColor(roi[..., :3], cv2.COLOR_BGR2GRAY)
            return (roi > 127) & alpha
        roi = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
    return roi > 127


def head_points(people: Detections, offset: float = HEAD_OFFSET) -> np.ndarray:
    """N x 2 head points estimated from person boxes (top centre, moved down a little)."""
    xyxy = people.xyxy
    x = (xyxy[:, 0] + xyxy[:, 2]) / 2
    y = xyxy[:, 1] + offset * (xyxy[:, 3] - xyxy[:, 1])
    return np.stack([x, y], axis=1)


def count_in_roi(points: np.ndarray, roi: np.ndarray | None, shape: tuple[int, int]) -> int:
    """How many points fall on white ROI pixels (all of them inside the image without a ROI)."""
    height, width = shape
    if len(points) == 0:
        return 0
    if roi is None:
        inside = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
        return int(inside.sum())
    if roi.shape != (height, width):  # a ROI drawn at another resolution: scale the points
        points = points * np.array([roi.shape[1] / width, roi.shape[0] / height])
    cols = np.clip(np.floor(points[:, 0]).astype(int), 0, roi.shape[1] - 1)
    rows = np.clip(np.floor(points[:, 1]).astype(int), 0, roi.shape[0] - 1)
    return int(roi[rows, cols].sum())


class PeopleCounter:
    """Counts people whose head is in a region, with the counting settings above."""

    def __init__(self, score_threshold: float = SCORE_THRESHOLD, scales: tuple[float, ...] = SCALES,
                 min_input: int = MIN_INPUT, max_input: int = MAX_INPUT, head_offset: float = HEAD_OFFSET,
                 backend: str = "auto") -> None:
        self.score_threshold = score_threshold
        self.scales = tuple(scales)
        self.min_input = min_input
        self.max_input = max_input
        self.head_offset = head_offset
        self.backend = backend
        self._detectors: dict[int, Any] = {}

    def input_sizes(self, width: int, height: int) -> list[int]:
        """The network's long side per scale: the image's own, within [min_input, max_input]."""
        base = min(self.max_input, max(self.min_input, width, height))
        return [int(round(base * scale)) for scale in self.scales]

    def detector(self, size: int):
        from safecity.vision.objects import ObjectDetector

        if size not in self._detectors:
            single = len(self.scales) == 1
            self._detectors[size] = ObjectDetector(
                input_size=size, score_threshold=self.score_threshold if single else VIEW_THRESHOLD,
                nms_iou=NMS_IOU, nms_contain=NMS_CONTAIN, labels=("person",), backend=self.backend)
        return self._detectors[size]

    @property
    def backend_name(self) -> str:
        return next(iter(self._detectors.values())).backend if self._detectors else self.backend

    def people(self, image: np.ndarray) -> Detections:
        from safecity.vision.objects import fuse, nms

        height, width = image.shape[:2]
        views = [self.detector(size).detect(image) for size in self.input_sizes(width, height)]
        if len(views) == 1:
            return views[0]
        fused = fuse(views, FUSE_IOU)
        fused = fused[fused.confidence >= self.score_threshold]
        # boxes that only one scale found can still duplicate a fused one
        return fused[np.sort(nms(fused.xyxy, fused.confidence, NMS_IOU, NMS_CONTAIN))]

    def count(self, image: np.ndarray, roi: np.ndarray | None) -> int:
        people = self.people(image)
        return count_in_roi(head_points(people, self.head_offset), roi, image.shape[:2])


def evaluate(dataset_dir: Path, limit: int | None = None, counter: PeopleCounter | None = None) -> dict[str, Any]:
    """Count people in each listed image and compare with the labels."""
    dataset_dir = Path(dataset_dir)
    rows = read_counts(dataset_dir)
    if limit is not None:
        if limit < 1:
            raise ValueError("--limit must be at least 1")
        rows = rows[:limit]
    roi = load_roi(dataset_dir)
    counter = counter or PeopleCounter()
    errors, predicted, seconds = [], [], 0.0
    warm = False
    backend = ""
    for name, truth in rows:
        path = dataset_dir / name
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"image {path} is missing or unreadable")
        if not warm:  # compile the network outside the timed loop
            counter.people(image)
            backend = counter.backend_name
            warm = True
        start = time.perf_counter()
        n = counter.count(image, roi)
        seconds += time.perf_counter() - start
        predicted.append(n)
        errors.append(n - truth)
    err = np.asarray(errors, np.float64)
    truth_total = float(sum(t for _, t in rows))
    return {
        "task": "counting",
        "n": len(rows),
        "mae": round(float(np.abs(err).mean()), 4),
        "rmse": round(float(math.sqrt((err**2).mean())), 4),
        "ms_per_image": round(1000 * seconds / len(rows), 2),
        "mean_count": round(truth_total / len(rows), 3),
        "mean_predicted": round(float(np.mean(predicted)), 3),
        "bias": round(float(err.mean()), 4),
        "roi": roi is not None,
        "method": {
            "detector": "nanodet (COCO person)",
            "backend": backend,
            "score_threshold": counter.score_threshold,
            "input_size": [counter.min_input, counter.max_input],
            "scales": list(counter.scales),
            "nms_iou": NMS_IOU,
            "nms_contain": NMS_CONTAIN,
            "head_offset": counter.head_offset,
        },
    }


def summarise(result: dict[str, Any]) -> str:
    return (
        f"counting: {result['n']} images, MAE {result['mae']:.2f}, RMSE {result['rmse']:.2f} "
        f"(mean count {result.get('mean_count', float('nan')):.1f}, predicted {result.get('mean_predicted', float('nan')):.1f}), "
        f"{result['ms_per_image']:.1f} ms per image"
    )
