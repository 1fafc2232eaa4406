"""``safecity eval faces``: verification and open-set identification, per the faces protocol.

Data set format (docs/evaluation.md): ``identity.csv`` (image, identity) and optional
``pairs.csv`` (image_a, image_b, same). Paths are relative to the data set folder.

Protocol, followed exactly:

* Each image's subject is its largest detected face. An image without a usable face
  (none found, or below the quality gate — ISO/IEC 19795-1 counts both as failures to
  enrol) has no template: its genuine comparisons fail and its impostor comparisons
  never false-accept. ``fte_rate`` is over all distinct images processed.
* Verification: score = cosine similarity of the two subjects' templates. TAR at the
  smallest threshold where FAR <= 1e-2 and 1e-3 (and 1e-4 with >= 10,000 impostor
  pairs); AUC (ties count half).
* Identification, open set: identities sorted (numerically when all are integers,
  else as strings); those at even positions (0, 2, ...) are enrolled, each by its
  first image in file-name order; mated probes are their other images, non-mated
  probes all images of the identities at odd positions. At threshold t: FPIR = share
  of non-mated probes whose best gallery score >= t; FNIR = share of mated probes
  whose best match is another identity or scores < t. ``rank1`` = share of mated
  probes whose best match is their identity (no threshold).
* ``ms_per_face``: wall time of the face pipeline (detect, refine, quality, align,
  embed) per image, reading and decoding the files excluded, with ``timing.workers``
  images in flight at once (default min(2, CPU cores); ``SAFECITY_EVAL_WORKERS=1``
  for one at a time). With more than one worker it is a throughput figure: each
  image's own time is in ``timing.latency_ms_*``, the CPU time in
  ``timing.cpu_ms_per_face`` and the machine's load during the run in
  ``timing.load_average_1min``.

``--limit N`` uses the first N rows of identity.csv and the first N pairs.

Besides the protocol's fields the result carries the thresholds used and the rates at
the product's operating threshold, so a deployment can check it on its own data.
"""

from __future__ import annotations

import csv
import math
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from safecity.faces.calibration import OPERATING_THRESHOLD, threshold_at_rate

FAR_LEVELS = ("1e-2", "1e-3")
FAR_LEVEL_EXTRA = "1e-4"
MIN_IMPOSTORS_FOR_EXTRA = 10_000
FPIR_LEVELS = ("1e-1", "1e-2", "1e-3")
NO_MATCH = -math.inf


# --------------------------------------------------------------------------- reading


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path.name} not found in {path.parent}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [name.strip() for name in (reader.fieldnames or [])]
        missing = [c for c in columns if c not in fields]
        if missing:
            raise ValueError(f"{path.name}: missing column(s) {', '.join(missing)} (has: {', '.join(fields)})")
        rows = []
        for row in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            if any(row.get(c, "") == "" for c in columns):
                continue  # blank line
            rows.append(row)
    return rows


def load_identities(dataset: Path, limit: int | None = None) -> list[tuple[str, str]]:
    rows = _read_csv(Path(dataset) / "identity.csv", ("image", "identity"))
    if limit is not None:
        rows = rows[: max(0, limit)]
    return [(row["image"], row["identity"]) for row in rows]


def load_pairs(dataset: Path, limit: int | None = None) -> list[tuple[str, str, bool]] | None:
    path = Path(dataset) / "pairs.csv"
    if not path.is_file():
        return None
    rows = _read_csv(path, ("image_a", "image_b", "same"))
    if limit is not None:
        rows = rows[: max(0, limit)]
    pairs = []
    for row in rows:
        same = row["same"].lower()
        if same not in {"0", "1", "true", "false"}:
            raise ValueError(f"pairs.csv: 'same' must be 0 or 1, got {row['same']!r}")
        pairs.append((row["image_a"], row["image_b"], same in {"1", "true"}))
    return pairs


def sort_identities(identities: Sequence[str]) -> list[str]:
    """Sorted identities: numerically when every label is an integer, else as strings."""
    unique = set(identities)
    if unique and all(re.fullmatch(r"[+-]?\d+", i) for i in unique):
        return sorted(unique, key=lambda i: (int(i), i))
    return sorted(unique)


def file_name_key(image: str) -> tuple[str, str]:
    return (Path(image).name, image)


# --------------------------------------------------------------------------- templates


@dataclass
class TemplateRun:
    templates: list[np.ndarray | None]
    no_face: int = 0
    low_quality: int = 0
    unreadable: int = 0
    pipeline_ms: float = 0.0  # wall time of the pipeline work, reading excluded
    qualities: list[float | None] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)  # each image's own pipeline time
    cpu_ms: float = 0.0  # CPU time of this process during the pipeline work (all threads)
    workers: int = 1
    load_average: list[float] = field(default_factory=list)  # 1-min load at start and end

    @property
    def ms_per_face(self) -> float:
        return self.pipeline_ms / max(len(self.templates), 1)

    def timing(self) -> dict:
        """Latency and throughput, both: see docs/faces.md (Speed) for how to read them."""
        latencies = np.asarray(self.latencies_ms, np.float64)
        n = max(len(self.templates), 1)
        return {
            "workers": self.workers,
            "wall_ms_per_face": round(self.ms_per_face, 3),
            "latency_ms_mean": round(float(latencies.mean()), 3) if len(latencies) else None,
            "latency_ms_p50": round(float(np.percentile(latencies, 50)), 3) if len(latencies) else None,
            "latency_ms_p95": round(float(np.percentile(latencies, 95)), 3) if len(latencies) else None,
            "cpu_ms_per_face": round(self.cpu_ms / n, 3),
            "load_average_1min": [round(x, 2) for x in self.load_average],
        }


def read_image(path: Path) -> np.ndarray | None:
    if not path.is_file():
        raise FileNotFoundError(f"image listed in the data set is missing: {path}")
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def default_workers() -> int:
    """Images processed side by side: ``SAFECITY_EVAL_WORKERS``, else min(2, CPU cores)."""
    value = os.environ.get("SAFECITY_EVAL_WORKERS")
    if value:
        return max(1, int(value))
    return max(1, min(2, os.cpu_count() or 1))


def _load() -> float:
    try:
        return float(os.getloadavg()[0])
    except OSError:  # pragma: no cover - not on every platform
        return float("nan")


#: Images read ahead per batch; the pipeline is timed batch by batch, reading excluded.
BATCH = 32


def templates_for(dataset: Path, images: Sequence[str], pipeline=None, workers: int | None = None) -> TemplateRun:
    """The subject's template for each image (None: failure to enrol).

    ``workers`` images go through the pipeline side by side (threads; the networks
    release the GIL). Images are read in batches of :data:`BATCH` before the clock
    starts; the wall time of each batch's pipeline work is summed into
    ``pipeline_ms``, so ``ms_per_face`` is wall time per image at that parallelism
    (with one worker: the latency), and ``latencies_ms`` keeps each image's own time.
    """
    from safecity.faces.pipeline import FacePipeline

    workers = workers or default_workers()
    pipeline = pipeline or FacePipeline(streams=workers)
    run = TemplateRun(templates=[], workers=workers, load_average=[_load()])
    warm = np.zeros((224, 224, 3), np.uint8)

    def subject(picture: np.ndarray):
        start = time.perf_counter()
        face = pipeline.subject(picture)
        return face, (time.perf_counter() - start) * 1000.0

    with ThreadPoolExecutor(max_workers=workers) as pool:
        # first inference compiles lazily (per thread): keep it out of the timing
        list(pool.map(subject, [warm] * workers))
        for first in range(0, len(images), BATCH):
            chunk = images[first : first + BATCH]
            pictures = [read_image(Path(dataset) / image) for image in chunk]
            readable = [picture for picture in pictures if picture is not None]
            wall, cpu = time.perf_counter(), time.process_time()
            results = list(pool.map(subject, readable)) if workers > 1 else [subject(p) for p in readable]
            run.pipeline_ms += (time.perf_counter() - wall) * 1000.0
            run.cpu_ms += (time.process_time() - cpu) * 1000.0
            found = iter(results)
            for picture in pictures:
                if picture is None:
                    run.unreadable += 1
                    run.templates.append(None)
                    run.qualities.append(None)
                    continue
                face, ms = next(found)
                run.latencies_ms.append(ms)
                if face is None:
                    run.no_face += 1
                    run.templates.append(None)
                    run.qualities.append(None)
                    continue
                run.qualities.append(face.quality.score)
                if face.template is None:
                    run.low_quality += 1
                run.templates.append(face.template)
    run.load_average.append(_load())
    return run


# --------------------------------------------------------------------------- metrics


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the smallest threshold whose FAR is <= far."""
    threshold = threshold_at_rate(impostor, far)
    accepted = np.isfinite(genuine) & (genuine >= threshold)  # a failure to enrol never matches
    tar = float(accepted.mean()) if len(genuine) else float("nan")
    return tar, threshold


def auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Area under the ROC curve: P(genuine > impostor) + P(tie) / 2."""
    if not len(genuine) or not len(impostor):
        return float("nan")
    from scipy.stats import rankdata

    scores = np.concatenate([genuine, impostor])
    scores = np.where(np.isfinite(scores), scores, -10.0)  # FTE: below any similarity
    ranks = rankdata(scores)
    n_g, n_i = len(genuine), len(impostor)
    return float((ranks[:n_g].sum() - n_g * (n_g + 1) / 2) / (n_g * n_i))


def roc_points(genuine: np.ndarray, impostor: np.ndarray, points: int = 60) -> dict[str, list[float]]:
    """The ROC/DET curve at thresholds spread over the observed scores, for `safecity report`."""
    scores = np.concatenate([genuine, impostor])
    scores = scores[np.isfinite(scores)]
    if not len(scores) or not len(genuine) or not len(impostor):
        return {"threshold": [], "far": [], "tar": []}
    thresholds = np.unique(np.quantile(scores, np.linspace(0, 1, points)))
    far = [float((impostor >= t).mean()) for t in thresholds]
    tar = [float((np.isfinite(genuine) & (genuine >= t)).mean()) for t in thresholds]
    return {"threshold": [round(float(t), 4) for t in thresholds], "far": far, "tar": tar}


def _score(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return NO_MATCH
    return float(np.dot(a, b))


def verification(pairs, template_of) -> dict | None:
    if pairs is None:
        return None
    genuine = np.array([_score(template_of[a], template_of[b]) for a, b, same in pairs if same], np.float64)
    impostor = np.array([_score(template_of[a], template_of[b]) for a, b, same in pairs if not same], np.float64)
    levels = list(FAR_LEVELS) + ([FAR_LEVEL_EXTRA] if len(impostor) >= MIN_IMPOSTORS_FOR_EXTRA else [])
    tar, thresholds = {}, {}
    for name in levels:
        value, threshold = tar_at_far(genuine, impostor, float(name))
        tar[name] = _clean(value)
        thresholds[name] = _clean(threshold)
    return {
        "tar_at_far": tar,
        "auc": _clean(auc(genuine, impostor)),
        "n_genuine": int(len(genuine)),
        "n_impostor": int(len(impostor)),
        "threshold_at_far": thresholds,
        "roc": roc_points(genuine, impostor),
        "at_operating_threshold": {
            "threshold": OPERATING_THRESHOLD,
            "tar": _clean(float((genuine >= OPERATING_THRESHOLD).mean())) if len(genuine) else None,
            "far": _clean(float((impostor >= OPERATING_THRESHOLD).mean())) if len(impostor) else None,
        },
    }


def identification(rows: list[tuple[str, str]], template_of) -> dict:
    identities = sort_identities([identity for _, identity in rows])
    enrolled, others = identities[0::2], set(identities[1::2])
    by_identity: dict[str, list[str]] = {}
    for image, identity in rows:
        by_identity.setdefault(identity, []).append(image)

    gallery_ids, gallery = [], []
    mated: list[tuple[str, str]] = []
    for identity in enrolled:
        images = sorted(by_identity[identity], key=file_name_key)
        first = images[0]
        if template_of[first] is not None:
            gallery_ids.append(identity)
            gallery.append(template_of[first])
        mated += [(image, identity) for image in images if image != first]
    nonmated = [(image, identity) for image, identity in rows if identity in others]
    matrix = np.stack(gallery) if gallery else np.zeros((0, 128), np.float32)

    def search(image: str) -> tuple[float, str | None]:
        template = template_of[image]
        if template is None or not len(matrix):
            return NO_MATCH, None
        scores = matrix @ template
        best = int(np.argmax(scores))
        return float(scores[best]), gallery_ids[best]

    mated_scores, mated_hit = [], []
    for image, identity in mated:
        score, best = search(image)
        mated_scores.append(score)
        mated_hit.append(best == identity)
    nonmated_results = [search(image) for image, _ in nonmated]
    mated_scores_a = np.array(mated_scores, np.float64)
    mated_hit_a = np.array(mated_hit, bool)
    nonmated_scores = np.array([score for score, _ in nonmated_results], np.float64)

    fnir, thresholds = {}, {}
    for name in FPIR_LEVELS:
        threshold = threshold_at_rate(nonmated_scores, float(name))
        thresholds[name] = _clean(threshold)
        fnir[name] = _clean(1.0 - float((mated_hit_a & (mated_scores_a >= threshold)).mean())) if len(mated) else None
    order = np.argsort(-nonmated_scores, kind="stable")[:3]
    return {
        "rank1": _clean(float(mated_hit_a.mean())) if len(mated) else None,
        "fnir_at_fpir": fnir,
        "n_mated": len(mated),
        "n_nonmated": len(nonmated),
        "n_enrolled": len(enrolled),
        "n_gallery_templates": len(gallery),
        "threshold_at_fpir": thresholds,
        "at_operating_threshold": {
            "threshold": OPERATING_THRESHOLD,
            "fpir": _clean(float((nonmated_scores >= OPERATING_THRESHOLD).mean())) if len(nonmated) else None,
            "fnir": _clean(1.0 - float((mated_hit_a & (mated_scores_a >= OPERATING_THRESHOLD)).mean()))
            if len(mated)
            else None,
        },
        # the searches that set FPIR=1e-3 on small sets: worth a look for label noise
        "top_nonmated": [
            {"probe": nonmated[i][0], "probe_identity": nonmated[i][1], "gallery_identity": nonmated_results[i][1],
             "score": _clean(nonmated_scores[i])}
            for i in order
            if np.isfinite(nonmated_scores[i])
        ],
    }


def _clean(value: float | None) -> float | None:
    """JSON-safe: NaN and infinities (a threshold that accepts everything) become null."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, 6)


# --------------------------------------------------------------------------- entry points


def evaluate(dataset_dir: str | Path, limit: int | None = None, pipeline=None, workers: int | None = None) -> dict:
    dataset = Path(dataset_dir)
    rows = load_identities(dataset, limit)
    pairs = load_pairs(dataset, limit)
    if not rows and not pairs:
        raise ValueError("no images listed in identity.csv")
    images: list[str] = []
    seen: set[str] = set()
    for image in [image for image, _ in rows] + [p for a, b, _ in (pairs or []) for p in (a, b)]:
        if image not in seen:
            seen.add(image)
            images.append(image)
    run = templates_for(dataset, images, pipeline, workers)
    template_of = dict(zip(images, run.templates))
    failures = sum(t is None for t in run.templates)
    return {
        "task": "faces",
        "dataset": str(dataset),
        "n_images": len(images),
        "fte_rate": _clean(failures / len(images)) if images else None,
        "fte": {"no_face": run.no_face, "low_quality": run.low_quality, "unreadable": run.unreadable},
        "verification": verification(pairs, template_of),
        "identification": identification(rows, template_of) if rows else None,
        "ms_per_face": round(run.ms_per_face, 3),
        "timing": run.timing(),
        "operating_threshold": OPERATING_THRESHOLD,
        "limit": limit,
    }


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def summarise(result: dict) -> str:
    lines = [
        f"faces: {result['n_images']} images, failure to enrol {_fmt(result['fte_rate'])} "
        f"(no face {result['fte']['no_face']}, low quality {result['fte']['low_quality']}), "
        f"{result['ms_per_face']:.1f} ms per face"
        + (
            f" ({t['workers']} at a time; latency {t['latency_ms_mean']:.1f} ms, CPU {t['cpu_ms_per_face']:.1f} ms per face)"
            if (t := result.get("timing")) and t.get("latency_ms_mean") is not None
            else ""
        )
    ]
    v = result.get("verification")
    if v:
        tars = ", ".join(f"TAR@FAR={k} {_fmt(x)}" for k, x in v["tar_at_far"].items())
        lines.append(f"verification ({v['n_genuine']} genuine, {v['n_impostor']} impostor pairs): {tars}, AUC {_fmt(v['auc'])}")
    else:
        lines.append("verification: no pairs.csv")
    i = result.get("identification")
    if i:
        fnirs = ", ".join(f"FNIR@FPIR={k} {_fmt(x)}" for k, x in i["fnir_at_fpir"].items())
        op = i["at_operating_threshold"]
        lines.append(
            f"identification ({i['n_enrolled']} enrolled, {i['n_mated']} mated, {i['n_nonmated']} non-mated probes): "
            f"rank-1 {_fmt(i['rank1'])}, {fnirs}"
        )
        lines.append(
            f"at the operating threshold {op['threshold']:.2f}: FPIR {_fmt(op['fpir'])}, FNIR {_fmt(op['fnir'])}"
        )
    return "\n".join(lines)
