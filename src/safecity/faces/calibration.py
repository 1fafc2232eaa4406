"""The operating threshold: the similarity at which two face templates are said to match.

It is *chosen from data*, never guessed, and the numbers behind it are kept here and in
docs/faces.md. Reproduce them with::

    python -m safecity.faces.calibration /work/shared/data/faces/celeba

Method (open-set identification against a watchlist):

* Templates come from :class:`safecity.faces.pipeline.FacePipeline`, exactly as the
  product makes them (refined landmarks, quality gate, SFace).
* Every pair of images of *different* identities in the calibration set is an
  impostor comparison (CelebA slice: 1,260 images of 110 people; 773,980 pairs of
  faces that pass the quality gate). Their scores give the per-comparison
  false-match rate FMR(t).
* A non-mated probe searched against a watchlist of G entries is a false positive
  when any of its G comparisons reaches t: FPIR_G(t) = 1 - (1 - FMR(t))^G. This was
  checked against direct simulation (300 random splits of the identities into a
  55-entry watchlist and non-mated probes, 187,641 searches): FPIR = 1e-3 at 0.490
  simulated, 0.486 from the formula.
* The product's default is the smallest threshold with FPIR_G <= 1e-3 for a
  reference watchlist of :data:`REFERENCE_WATCHLIST` entries, rounded *up* to two
  decimals. A larger watchlist needs a higher threshold (see :func:`fpir_at`, and the
  table in docs/faces.md); this calibration set cannot resolve FMR below ~1e-6.

The evaluation (``safecity eval faces``) also reports FPIR and FNIR at this
threshold on whatever set it is given, so a deployment can check it on its own data.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

#: Watchlist size the default threshold is calibrated for.
REFERENCE_WATCHLIST = 100
#: Target false-positive identification rate for that watchlist.
TARGET_FPIR = 1e-3
#: Two templates match when their cosine similarity is at least this (see module notes).
OPERATING_THRESHOLD = 0.54

#: Where OPERATING_THRESHOLD came from (kept with the constant for the audit trail).
CALIBRATION = {
    "data": "faces/celeba (1,260 images, 110 identities; CelebA, evaluation only)",
    "pipeline": "YuNet + landmark refinement, quality gate 0.1, SFace fp32 (no flip)",
    "impostor_pairs": 773_980,
    "reference_watchlist": REFERENCE_WATCHLIST,
    "target_fpir": TARGET_FPIR,
    "fmr_target": 1.0e-5,
    "threshold_exact": 0.5379,  # 8 impostor pairs at or above it
    "threshold": OPERATING_THRESHOLD,  # rounded up
    "check_55_simulated": 0.4902,  # half/half splits, 187,641 searches; formula: 0.4864
    "held_out_orl_max_impostor": 0.4545,  # 70,300 pairs, none reach the threshold
}


def threshold_at_rate(nonmatch_scores: Sequence[float] | np.ndarray, rate: float) -> float:
    """The smallest threshold t with share(scores >= t) <= rate.

    Scores of -inf (failures to enrol) never reach any threshold. Returns -inf when
    even accepting everything stays within ``rate``; ties at the boundary are excluded
    together, so the rate is never exceeded.
    """
    scores = np.sort(np.asarray(nonmatch_scores, np.float64))[::-1]
    n = len(scores)
    if n == 0:
        return -math.inf
    allowed = int(math.floor(rate * n + 1e-9))
    if allowed >= n:
        return -math.inf
    boundary = scores[allowed]  # the first score that must be rejected
    if not np.isfinite(boundary):
        return -math.inf
    return float(np.nextafter(boundary, math.inf))


def rate_at(scores: Sequence[float] | np.ndarray, threshold: float) -> float:
    """Share of scores >= threshold (0 for no scores)."""
    scores = np.asarray(scores, np.float64)  # float32 would round a just-above threshold back down
    return float((scores >= threshold).mean()) if len(scores) else 0.0


def fpir_at(fmr: float, watchlist: int) -> float:
    """FPIR for a watchlist of ``watchlist`` entries when each comparison false-matches at ``fmr``."""
    return 1.0 - (1.0 - fmr) ** watchlist


def fmr_for_fpir(fpir: float, watchlist: int) -> float:
    """The per-comparison FMR that gives ``fpir`` on a watchlist of that size."""
    return 1.0 - (1.0 - fpir) ** (1.0 / watchlist)


def impostor_scores(templates: np.ndarray, identities: Sequence[str], valid: np.ndarray) -> np.ndarray:
    """Scores of every pair of valid templates with different identities (upper triangle)."""
    templates = np.asarray(templates, np.float32)
    ids = np.asarray(identities)
    index = np.flatnonzero(valid)
    out: list[np.ndarray] = []
    for start in range(0, len(index), 512):
        rows = index[start : start + 512]
        block = templates[rows] @ templates[index].T
        later = index[None, :] > rows[:, None]
        different = ids[rows][:, None] != ids[index][None, :]
        out.append(block[later & different].astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0, np.float64)


def simulated_fpir_threshold(
    templates: np.ndarray, identities: Sequence[str], valid: np.ndarray, fpir: float, repeats: int = 300, seed: int = 0
) -> tuple[float, int]:
    """Threshold at ``fpir`` from random half/half watchlist splits of the identities."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(identities)
    unique = np.unique(ids[valid])
    scores = np.asarray(templates, np.float32) @ np.asarray(templates, np.float32).T
    best: list[np.ndarray] = []
    for _ in range(repeats):
        order = rng.permutation(unique)
        enrolled, others = order[: len(order) // 2], order[len(order) // 2 :]
        gallery = [rng.choice(np.flatnonzero((ids == e) & valid)) for e in enrolled]
        probes = np.flatnonzero(np.isin(ids, others) & valid)
        best.append(scores[np.ix_(probes, gallery)].max(1))
    searches = np.concatenate(best)
    return threshold_at_rate(searches, fpir), len(searches)


def calibrate(
    templates: np.ndarray,
    identities: Sequence[str],
    valid: np.ndarray,
    watchlists: Iterable[int] = (10, 55, REFERENCE_WATCHLIST, 1000),
    fpir: float = TARGET_FPIR,
) -> dict:
    """The numbers behind OPERATING_THRESHOLD, for any labelled set of templates."""
    from scipy.stats import beta

    impostors = impostor_scores(templates, identities, valid)
    n = len(impostors)
    table = {}
    for size in watchlists:
        fmr = fmr_for_fpir(fpir, size)
        threshold = threshold_at_rate(impostors, fmr)
        above = int((impostors >= threshold).sum())  # float64 on both sides
        table[str(size)] = {
            "fmr_target": fmr,
            "threshold": threshold,
            "impostors_above": above,
            "resolvable": fmr * n >= 1.0,  # fewer than one expected impostor: the data cannot tell
            "fmr_upper_95": float(beta.ppf(0.95, above + 1, n - above)) if n else 1.0,
        }
    simulated, searches = simulated_fpir_threshold(templates, identities, valid, fpir)
    top = np.sort(impostors)[::-1][:10]
    return {
        "impostor_pairs": n,
        "top_impostor_scores": [round(float(s), 4) for s in top],
        "by_watchlist": table,
        "simulated_half_split": {"threshold": simulated, "searches": searches},
        "operating_threshold": OPERATING_THRESHOLD,
        "fmr_at_operating_threshold": rate_at(impostors, OPERATING_THRESHOLD),
    }


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - a documented one-off
    import argparse
    import json
    from pathlib import Path

    from safecity.evaluation.faces import load_identities, templates_for

    parser = argparse.ArgumentParser(description="Recompute the face-match threshold calibration.")
    parser.add_argument("dataset", type=Path, help="folder with identity.csv (faces format)")
    args = parser.parse_args(argv)
    rows = load_identities(args.dataset)
    images = [image for image, _ in rows]
    result = templates_for(args.dataset, images)
    valid = np.array([t is not None for t in result.templates])
    templates = np.stack([t if t is not None else np.zeros(128, np.float32) for t in result.templates])
    print(json.dumps(calibrate(templates, [identity for _, identity in rows], valid), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
