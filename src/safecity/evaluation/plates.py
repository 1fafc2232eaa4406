"""``safecity eval plates DATASET``: licence-plate finding and reading on a labelled set.

Format (``labels.csv``: image, plate, x, y, w, h [, condition]) and protocol are those of
the shared data README:

- a row *with* a box is a full scene: the whole pipeline runs (find + read); the label is
  **read** when a returned plate overlaps its box with IoU >= 0.3 and its text, without
  spaces, dashes and dots, equals the label (``?`` in a label matches any character);
  it is **detected** when any returned plate overlaps it with IoU >= 0.3;
- a row *without* a box is a plate crop, read as one plate.

Reported: ``exact_read_rate``, ``char_accuracy`` (1 - edit distance / label length,
floored at 0, averaged; a ``?`` in the label matches anything), ``detection_recall`` over
boxed labels (null without any), ``by_condition`` and ``ms_per_image`` (find+read or
read time per image, image decoding excluded).

Region: like a camera, the reader learns from its own confident readings which country's
formats dominate the set (:class:`~safecity.plates.grammar.RegionPrior`; labels are never
used) and then rescores every reading with that region's grammars preferred. The rate
before that step is reported too (``exact_read_rate_without_region``), as is the region.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from safecity.plates.grammar import UNKNOWN, RegionPrior, normalise_text

IOU_THRESHOLD = 0.3
ANONYMISED_SHARE = 0.8  # crops with anonymising boxes above which a set is read as anonymised
REQUIRED = ("image", "plate")


@dataclass(slots=True)
class Label:
    image: str
    plate: str
    box: tuple[float, float, float, float] | None  # x0, y0, x1, y1
    condition: str | None


def load_labels(dataset_dir: Path, limit: int | None = None) -> list[Label]:
    path = Path(dataset_dir) / "labels.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no labels.csv in {dataset_dir}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} lacks column(s) {', '.join(missing)}")
        labels = []
        for line, row in enumerate(reader, start=2):
            if limit is not None and len(labels) >= limit:
                break
            plate = normalise_text((row.get("plate") or "").strip().upper())
            if not row.get("image") or not plate:
                raise ValueError(f"{path}:{line}: empty image or plate")
            coords = [(row.get(k) or "").strip() for k in ("x", "y", "w", "h")]
            box = None
            if all(coords):
                try:
                    x, y, w, h = (float(c) for c in coords)
                except ValueError:
                    raise ValueError(f"{path}:{line}: bad box {coords}") from None
                box = (x, y, x + w, y + h)
            elif any(coords):
                raise ValueError(f"{path}:{line}: incomplete box {coords}")
            condition = (row.get("condition") or "").strip() or None
            labels.append(Label(row["image"], plate, box, condition))
    if not labels:
        raise ValueError(f"{path} holds no labels")
    return labels


def iou(a: tuple[float, ...] | np.ndarray, b: tuple[float, ...] | np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def text_matches(label: str, text: str) -> bool:
    """Equal after normalising; ``?`` in the label matches any one character."""
    text = normalise_text(text)
    return len(text) == len(label) and all(a == UNKNOWN or a == b for a, b in zip(label, text))


def edit_distance(label: str, text: str) -> int:
    """Levenshtein distance, a ``?`` in the label substituting for any character free."""
    text = normalise_text(text)
    prev = list(range(len(text) + 1))
    for i, a in enumerate(label, 1):
        cur = [i] + [0] * len(text)
        for j, b in enumerate(text, 1):
            sub = prev[j - 1] + (0 if (a == b or a == UNKNOWN) else 1)
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, sub)
        prev = cur
    return prev[-1]


def char_accuracy(label: str, text: str) -> float:
    return max(0.0, 1.0 - edit_distance(label, text) / len(label))


class _Image:
    """The pipeline's output for one image: plate boxes (scenes) and their reads."""

    def __init__(self, boxes: np.ndarray | None, reads: list, ms: float) -> None:
        self.boxes = boxes  # None for a crop
        self.reads = reads
        self.ms = ms


def _predict_for(label: Label, result: _Image | None) -> tuple[str, bool]:
    """(text read for this label, whether a plate was found for it)."""
    if result is None:
        return "", False
    if label.box is None:
        return (result.reads[0].text if result.reads else ""), True
    overlaps = [(iou(label.box, b), i) for i, b in enumerate(result.boxes)]
    overlaps = [(o, i) for o, i in overlaps if o >= IOU_THRESHOLD]
    if not overlaps:
        return "", False
    for _, i in sorted(overlaps, reverse=True):
        if text_matches(label.plate, result.reads[i].text):
            return result.reads[i].text, True
    return result.reads[max(overlaps)[1]].text, True


def _score(labels: list[Label], results: dict[str, _Image | None]) -> dict[str, Any]:
    exact, chars, found_boxed, boxed = [], [], 0, 0
    by_condition: dict[str, list[bool]] = {}
    misreads = []
    unreadable = 0
    for label in labels:
        text, found = _predict_for(label, results.get(label.image))
        ok = text_matches(label.plate, text)
        exact.append(ok)
        chars.append(char_accuracy(label.plate, text))
        if label.box is not None:
            boxed += 1
            found_boxed += found
        if found and not text:
            unreadable += 1
        if label.condition:
            by_condition.setdefault(label.condition, []).append(ok)
        if not ok:
            misreads.append({"image": label.image, "label": label.plate, "read": text, "found": found,
                             **({"condition": label.condition} if label.condition else {})})
    return {
        "exact_read_rate": float(np.mean(exact)),
        "char_accuracy": float(np.mean(chars)),
        "detection_recall": (found_boxed / boxed) if boxed else None,
        "by_condition": {k: float(np.mean(v)) for k, v in sorted(by_condition.items())},
        "unreadable": unreadable,
        "misreads": misreads,
    }


def evaluate(dataset_dir: Path | str, limit: int | None = None, recognizer=None,
             adapt_region: bool = True, detector_size: int | None = None) -> dict[str, Any]:
    """Run the plate pipeline over a data set in the plates format; see the module doc.
    ``detector_size``: the detector's input size (default: ``PlateRecognizer``'s)."""
    from safecity.plates.read import PlateRecognizer

    dataset_dir = Path(dataset_dir)
    labels = load_labels(dataset_dir, limit)
    recognizer = recognizer or PlateRecognizer(size=detector_size)
    reader = recognizer.reader

    # one run per image (a scene may carry several labels)
    kinds: dict[str, bool] = {}
    for label in labels:
        kinds[label.image] = kinds.get(label.image, False) or label.box is not None
    results: dict[str, _Image | None] = {}
    errors: list[str] = []
    anonymised = False
    for name, is_scene in kinds.items():
        image = cv2.imread(str(dataset_dir / name), cv2.IMREAD_COLOR)
        if image is None:
            errors.append(name)
            results[name] = None
            continue
        start = time.perf_counter()
        if is_scene:
            detections, reads = recognizer.recognise(image)
            boxes = detections.xyxy
        else:
            reads, boxes = reader.read_many([image]), None
        results[name] = _Image(boxes, reads, (time.perf_counter() - start) * 1000)

    # anonymised crops: where most crops carry flat character-sized boxes (a data set's
    # anonymisation, never seen on real plates in quantity), read them again with the
    # boxes marking unknown characters. A property of the images, not of the labels.
    crops = [n for n, is_scene in kinds.items() if not is_scene and results.get(n) is not None]
    if crops and not getattr(reader, "find_hidden", True) and hasattr(reader, "find_hidden"):
        from safecity.plates.hidden import hidden_boxes

        boxed = sum(bool(hidden_boxes(cv2.imread(str(dataset_dir / n), cv2.IMREAD_COLOR))) for n in crops)
        if boxed >= ANONYMISED_SHARE * len(crops):
            reader.find_hidden = True  # until the end of this run (region rescoring included)
            for n in crops:
                image = cv2.imread(str(dataset_dir / n), cv2.IMREAD_COLOR)
                start = time.perf_counter()
                results[n] = _Image(None, reader.read_many([image]), (time.perf_counter() - start) * 1000)
            anonymised = True
    try:
        return _finish(dataset_dir, labels, kinds, results, errors, anonymised, recognizer, adapt_region)
    finally:
        if anonymised:
            reader.find_hidden = False


def _finish(dataset_dir: Path, labels: list[Label], kinds: dict[str, bool], results: dict[str, "_Image | None"],
            errors: list[str], anonymised: bool, recognizer, adapt_region: bool) -> dict[str, Any]:
    reader = recognizer.reader
    first = _score(labels, results)
    region = None
    final = first
    if adapt_region:
        prior = RegionPrior()
        for result in results.values():
            for r in result.reads if result else []:
                prior.observe(r.grammar, r.text, r.char_confidences)
        region = prior.region
        if region is not None:
            priors = prior.priors()
            for result in results.values():
                if result is None:
                    continue
                start = time.perf_counter()
                result.reads = [reader.rescore(r.views, priors) if r.views else r for r in result.reads]
                result.ms += (time.perf_counter() - start) * 1000
            final = _score(labels, results)

    timings = [r.ms for r in results.values() if r is not None]
    detector = getattr(recognizer, "detector", None)
    backend = getattr(getattr(reader.recogniser, "model", None), "backend", None)
    return {
        "task": "plates",
        "dataset": str(dataset_dir),
        "n": len(labels),
        "exact_read_rate": final["exact_read_rate"],
        "char_accuracy": final["char_accuracy"],
        "detection_recall": final["detection_recall"],
        "by_condition": final["by_condition"],
        "ms_per_image": float(np.mean(timings)) if timings else 0.0,
        "ms_per_image_median": float(np.median(timings)) if timings else 0.0,
        "n_images": len(kinds),
        "n_scenes": sum(kinds.values()),
        "n_crops": len(kinds) - sum(kinds.values()),
        "unreadable": final["unreadable"],
        "region": region,
        "anonymised_boxes": anonymised,
        "exact_read_rate_without_region": first["exact_read_rate"],
        "backend": backend,
        "detector_size": getattr(detector, "size", None),
        "unloadable_images": errors,
        "misreads": final["misreads"],
    }


def summarise(result: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    lines = [
        f"plates: {result['n']} labels in {result['n_images']} images "
        f"({result['n_scenes']} scenes, {result['n_crops']} crops)",
        f"  exact read rate  {pct(result['exact_read_rate'])}"
        + (f"  (region {result['region']}; {pct(result['exact_read_rate_without_region'])} before)"
           if result.get("region") else ""),
        f"  char accuracy    {pct(result['char_accuracy'])}",
        f"  detection recall {pct(result['detection_recall'])}",
        f"  unreadable       {result['unreadable']}",
        f"  time             {result['ms_per_image']:.1f} ms per image ({result.get('backend')})",
    ]
    for name, rate in result["by_condition"].items():
        lines.append(f"  {name:16s} {pct(rate)}")
    if result.get("unloadable_images"):
        lines.append(f"  images that could not be loaded: {len(result['unloadable_images'])}")
    return "\n".join(lines)
