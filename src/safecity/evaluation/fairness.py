"""``safecity eval fairness``: per-group detection and false-match rates at the operating threshold.

Data set format (docs/evaluation.md): ``groups.csv`` (image, age, gender, group). The
group labels come from the data set and are used for measurement only: safecity never
infers ethnicity, race or any such attribute.

Protocol, followed exactly:

* Only adults: age >= 18 (rows whose age is not a number are skipped).
* Per group, ``detection_rate_by_group``: share of the group's adult images in which
  the face detector finds a face. ``n_by_group``: how many adult images that is.
* Per group, ``fmr_by_group``: there are no identities, so every pair is an impostor
  pair. Over *all* pairs among the group's first 300 adult images in file-name order,
  the share whose similarity reaches the system's operating threshold
  (:data:`safecity.faces.calibration.OPERATING_THRESHOLD`). An image without a
  template (no face, or below the quality gate) cannot false-match, but its pairs stay
  in the denominator.
* ``fmr_max_min_ratio`` = max / min of the per-group FMRs, each floored at 1e-6.

At a strict threshold most groups see zero or a handful of false matches among 44,850
pairs, so the ratio is noisy. The result therefore also carries 95 % Clopper-Pearson
intervals for each group's FMR, each group's FMR at the threshold where the pooled FMR
(all groups' pairs together) is 1e-3 (a higher-powered look at the same differential),
and the pairs that matched, best first: a set without identities may hold the same
person twice (UTKFace does), and such a pair is a true match the protocol must count
as false. Look at them before reading a differential into the numbers.

``--limit N`` uses the first N rows of groups.csv.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from safecity.evaluation.faces import _clean, _read_csv, file_name_key, read_image
from safecity.faces.calibration import OPERATING_THRESHOLD, threshold_at_rate

ADULT_AGE = 18
MAX_IMAGES_PER_GROUP = 300
FMR_FLOOR = 1e-6
POOLED_FMR = 1e-3
MAX_LISTED_MATCHES = 25


def load_groups(dataset: Path, limit: int | None = None) -> list[tuple[str, float, str, str]]:
    rows = _read_csv(Path(dataset) / "groups.csv", ("image", "age", "group"))
    if limit is not None:
        rows = rows[: max(0, limit)]
    out = []
    for row in rows:
        try:
            age = float(row["age"])
        except ValueError:
            continue
        out.append((row["image"], age, row.get("gender", ""), row["group"]))
    return out


def pair_scores(templates: list[np.ndarray | None]) -> np.ndarray:
    """Scores of all n(n-1)/2 pairs (upper triangle, row-major); a missing template scores -inf."""
    n = len(templates)
    if n < 2:
        return np.zeros(0, np.float64)
    valid = np.array([t is not None for t in templates])
    matrix = np.stack([t if t is not None else np.zeros(128, np.float32) for t in templates]).astype(np.float64)
    scores = matrix @ matrix.T
    scores[~valid, :] = -np.inf
    scores[:, ~valid] = -np.inf
    return scores[np.triu_indices(n, 1)]


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    if n == 0:
        return 0.0, 1.0
    alpha = 1 - level
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def max_min_ratio(rates: dict[str, float]) -> float:
    if not rates:
        return float("nan")
    floored = [max(rate, FMR_FLOOR) for rate in rates.values()]
    return max(floored) / min(floored)


def evaluate(dataset_dir: str | Path, limit: int | None = None, pipeline=None) -> dict:
    from safecity.faces.pipeline import FacePipeline

    dataset = Path(dataset_dir)
    rows = load_groups(dataset, limit)
    adults = [(image, group) for image, age, _, group in rows if age >= ADULT_AGE]
    if not adults:
        raise ValueError("groups.csv lists no adult (age >= 18) images")
    by_group: dict[str, list[str]] = {}
    for image, group in adults:
        by_group.setdefault(group, []).append(image)

    pipeline = pipeline or FacePipeline()
    pipeline.subject(np.zeros((224, 224, 3), np.uint8))  # compile before timing
    detected_by_group, fmr_by_group, n_by_group = {}, {}, {}
    ci_by_group, pairs_by_group, matches_by_group, enrol_by_group = {}, {}, {}, {}
    listed_by_group: dict[str, list[dict]] = {}
    scores_by_group: dict[str, np.ndarray] = {}
    elapsed, processed = 0.0, 0
    for group in sorted(by_group):
        images = sorted(by_group[group], key=file_name_key)
        used = set(images[:MAX_IMAGES_PER_GROUP])
        detected, templates = 0, {}
        for image in images:
            picture = read_image(dataset / image)
            start = time.perf_counter()
            if image in used:
                face = pipeline.subject(picture) if picture is not None else None
                found = face is not None
                templates[image] = face.template if face is not None else None
            else:  # only the detection rate is needed
                found = picture is not None and len(pipeline.detector.detect(picture)) > 0
            elapsed += time.perf_counter() - start
            processed += 1
            detected += int(found)
        chosen = images[:MAX_IMAGES_PER_GROUP]
        scores = pair_scores([templates[image] for image in chosen])
        matches = int((scores >= OPERATING_THRESHOLD).sum())
        first, second = np.triu_indices(len(chosen), 1)
        hits = np.flatnonzero(scores >= OPERATING_THRESHOLD)
        hits = hits[np.argsort(-scores[hits], kind="stable")][:MAX_LISTED_MATCHES]
        listed_by_group[group] = [
            {"image_a": chosen[first[k]], "image_b": chosen[second[k]], "score": _clean(scores[k])} for k in hits
        ]
        n_pairs = len(scores)
        n_by_group[group] = len(images)
        detected_by_group[group] = _clean(detected / len(images))
        fmr_by_group[group] = matches / n_pairs if n_pairs else 0.0
        ci_by_group[group] = [_clean(x) for x in clopper_pearson(matches, n_pairs)]
        pairs_by_group[group] = n_pairs
        matches_by_group[group] = matches
        enrol_by_group[group] = _clean(sum(t is not None for t in templates.values()) / len(chosen))
        scores_by_group[group] = scores

    pooled = np.concatenate(list(scores_by_group.values())) if scores_by_group else np.zeros(0)
    pooled_threshold = threshold_at_rate(pooled, POOLED_FMR)
    fmr_pooled = {g: _clean(float((s >= pooled_threshold).mean())) if len(s) else 0.0 for g, s in scores_by_group.items()}
    return {
        "task": "fairness",
        "dataset": str(dataset),
        "threshold": OPERATING_THRESHOLD,
        "fmr_by_group": {g: _clean(v) for g, v in fmr_by_group.items()},
        "detection_rate_by_group": detected_by_group,
        "fmr_max_min_ratio": _clean(max_min_ratio(fmr_by_group)),
        "n_by_group": n_by_group,
        "false_matches_by_group": matches_by_group,
        "pairs_by_group": pairs_by_group,
        "fmr_ci95_by_group": ci_by_group,
        "enrol_rate_by_group": enrol_by_group,
        "at_pooled_fmr_1e-3": {
            "threshold": _clean(pooled_threshold),
            "fmr_by_group": fmr_pooled,
            "fmr_max_min_ratio": _clean(max_min_ratio({g: v or 0.0 for g, v in fmr_pooled.items()})),
        },
        # the data set has no identities, so a "false" match may be one person photographed
        # twice: these are the pairs to look at before reading a differential into the FMRs
        "matches_at_threshold_by_group": listed_by_group,
        "fmr_floor": FMR_FLOOR,
        "ms_per_face": round(elapsed * 1000.0 / max(processed, 1), 3),
        "limit": limit,
    }


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def summarise(result: dict) -> str:
    lines = [f"fairness at threshold {result['threshold']:.2f} (adults; FMR over pairs among up to 300 images per group)"]
    lines.append(f"{'group':<12}{'n':>6}{'detected':>10}{'FMR':>12}{'false/pairs':>16}{'FMR@pooled 1e-3':>18}")
    pooled = result["at_pooled_fmr_1e-3"]["fmr_by_group"]
    for group in result["n_by_group"]:
        lines.append(
            f"{group:<12}{result['n_by_group'][group]:>6}{result['detection_rate_by_group'][group]:>10.3f}"
            f"{_fmt(result['fmr_by_group'][group], '.2e'):>12}"
            f"{str(result['false_matches_by_group'][group]) + '/' + str(result['pairs_by_group'][group]):>16}"
            f"{_fmt(pooled[group], '.2e'):>18}"
        )
    pooled_result = result["at_pooled_fmr_1e-3"]
    lines.append(
        f"FMR max/min ratio (floor {result['fmr_floor']:g}): {_fmt(result['fmr_max_min_ratio'], '.1f')}; "
        f"at the pooled FMR=1e-3 threshold {_fmt(pooled_result['threshold'], '.3f')}: "
        f"{_fmt(pooled_result['fmr_max_min_ratio'], '.1f')}"
    )
    return "\n".join(lines)
