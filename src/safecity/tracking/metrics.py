"""MOT metrics: CLEAR MOT (MOTA, MOTP) and identity scores (IDF1), plus MOTChallenge files.

The definitions, and the tie-breaking details that move the numbers, follow the
``motmetrics`` package (py-motmetrics 1.4.0), the de-facto reference, so scores can
be compared with published ones; ``tests/tracking/test_metrics.py`` checks them
against values motmetrics computed on the TUD sequences. motmetrics itself is not a
dependency: it drags in pandas, and this module is a page of numpy.

CLEAR MOT (Bernardin & Stiefelhagen 2008), frame by frame: a ground-truth object
and a hypothesis may match when their IoU is at least ``iou_threshold``. Pairs
matched on an earlier frame are kept first if they still may match; the rest are
matched by minimum total distance (1 - IoU). A match whose object was last matched
to a different hypothesis is an ID switch. MOTA = 1 - (FN + FP + IDSW) / GT.

Identity scores (Ristani et al. 2016): every ground-truth trajectory is paired with
at most one hypothesis trajectory for the whole sequence so as to maximise the
number of frames where the pair overlaps (IoU >= threshold); those frames are IDTP.
IDF1 = 2 IDTP / (GT + hypotheses).

The module deliberately does not import the tracker: a yardstick must not share
code with what it measures.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from safecity.records import Detections

_SEPARATORS = re.compile(r"[,\s]+")
_FORBIDDEN = 1e9


@dataclass(frozen=True, slots=True)
class MotTrajectories:
    """Boxes with identities over a sequence, in MOTChallenge's terms.

    ``frame`` and ``track_id`` are N ints; ``xywh`` is N x 4 (top-left x, y, width,
    height in pixels); ``confidence`` N floats. Used for ground truth and tracker
    output alike.
    """

    frame: np.ndarray
    track_id: np.ndarray
    xywh: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def from_rows(cls, rows: Iterable[Iterable[float]]) -> MotTrajectories:
        """Rows of ``frame, id, x, y, w, h[, conf, ...]`` (extra columns ignored)."""
        table = [list(map(float, row)) for row in rows]
        if not table:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0))
        width = min(len(r) for r in table)
        if width < 6:
            raise ValueError("MOT rows need at least frame, id, x, y, w, h")
        data = np.array([r[: min(width, 7)] for r in table], dtype=np.float64)
        conf = data[:, 6] if data.shape[1] > 6 else np.ones(len(data))
        return cls(data[:, 0].astype(np.int64), data[:, 1].astype(np.int64), data[:, 2:6], conf)

    @classmethod
    def read(cls, path: str | Path, min_confidence: float | None = None) -> MotTrajectories:
        """Read a MOTChallenge ``gt.txt`` / result file (comma or space separated).

        ``min_confidence`` drops rows below it (MOTChallenge ground truth marks
        ignored boxes with confidence 0); by default every row is kept, as
        motmetrics does.
        """
        rows = []
        for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append([float(v) for v in _SEPARATORS.split(line) if v])
            except ValueError:
                raise ValueError(f"{path}:{number}: not a MOTChallenge row: {line!r}") from None
        result = cls.from_rows(rows)
        if min_confidence is not None:
            keep = result.confidence >= min_confidence
            result = cls(
                result.frame[keep], result.track_id[keep], result.xywh[keep], result.confidence[keep]
            )
        return result

    @classmethod
    def from_tracked(cls, frames: Iterable[tuple[int, Detections]]) -> MotTrajectories:
        """Tracker output (frame number, tracked detections) as trajectories."""
        rows = []
        for frame, dets in frames:
            for box, tid, conf in zip(dets.xyxy, dets.tracker_id, dets.confidence):
                x1, y1, x2, y2 = (float(v) for v in box)
                rows.append([frame, int(tid), x1, y1, x2 - x1, y2 - y1, float(conf)])
        return cls.from_rows(rows)

    def write(self, path: str | Path) -> None:
        """Write in MOTChallenge result format (``frame,id,x,y,w,h,conf,-1,-1,-1``)."""
        lines = [
            f"{f},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{c:.4g},-1,-1,-1"
            for f, i, (x, y, w, h), c in zip(self.frame, self.track_id, self.xywh, self.confidence)
        ]
        Path(path).write_text("\n".join(lines) + ("\n" if lines else ""))

    def by_frame(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """frame -> (ids, xywh boxes), rows in file order."""
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        order = np.argsort(self.frame, kind="stable")
        frames = self.frame[order]
        if not len(frames):
            return out
        starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]])
        for a, b in itertools.pairwise([*starts.tolist(), len(frames)]):
            rows = order[a:b]
            out[int(frames[a])] = (self.track_id[rows], self.xywh[rows])
        return out


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of N and M ``xywh`` boxes, computed as motmetrics does."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    a_br = a[:, :2] + a[:, 2:]
    b_br = b[:, :2] + b[:, 2:]
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a_br[:, None], b_br[None, :])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = np.prod(a[:, 2:], axis=1)[:, None] + np.prod(b[:, 2:], axis=1)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _match_distance(gt_boxes: np.ndarray, hyp_boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """1 - IoU, NaN where the pair may not match (motmetrics' ``iou_matrix``)."""
    dist = 1.0 - iou_xywh(gt_boxes, hyp_boxes)
    dist[dist > 1.0 - iou_threshold] = np.nan
    return dist


@dataclass(frozen=True, slots=True)
class ClearMot:
    """CLEAR MOT counts for one sequence. ``motp`` is motmetrics' mean 1 - IoU of matches."""

    num_objects: int
    num_predictions: int
    matches: int
    false_positives: int
    misses: int
    id_switches: int
    distance_sum: float

    @property
    def mota(self) -> float:
        if self.num_objects == 0:
            return float("nan")
        return 1.0 - (self.misses + self.false_positives + self.id_switches) / self.num_objects

    @property
    def motp(self) -> float:
        return self.distance_sum / self.matches if self.matches else float("nan")

    @property
    def recall(self) -> float:
        return self.matches / self.num_objects if self.num_objects else float("nan")

    @property
    def precision(self) -> float:
        return self.matches / self.num_predictions if self.num_predictions else float("nan")


@dataclass(frozen=True, slots=True)
class IdentityScores:
    idtp: int
    idfp: int
    idfn: int

    @property
    def idf1(self) -> float:
        denom = 2 * self.idtp + self.idfp + self.idfn
        return 2 * self.idtp / denom if denom else float("nan")

    @property
    def idp(self) -> float:
        denom = self.idtp + self.idfp
        return self.idtp / denom if denom else float("nan")

    @property
    def idr(self) -> float:
        denom = self.idtp + self.idfn
        return self.idtp / denom if denom else float("nan")


@dataclass(frozen=True, slots=True)
class MotScores:
    clear: ClearMot
    identity: IdentityScores

    @property
    def mota(self) -> float:
        return self.clear.mota

    @property
    def idf1(self) -> float:
        return self.identity.idf1

    def as_dict(self) -> dict[str, float | int]:
        c, i = self.clear, self.identity
        return {
            "mota": c.mota, "motp": c.motp, "idf1": i.idf1, "idp": i.idp, "idr": i.idr,
            "recall": c.recall, "precision": c.precision, "num_objects": c.num_objects,
            "num_predictions": c.num_predictions, "false_positives": c.false_positives,
            "misses": c.misses, "id_switches": c.id_switches,
            "idtp": i.idtp, "idfp": i.idfp, "idfn": i.idfn,
        }  # fmt: skip


def clear_mot(gt: MotTrajectories, hyp: MotTrajectories, iou_threshold: float = 0.5) -> ClearMot:
    """CLEAR MOT events over every frame that has ground truth or hypotheses."""
    gt_frames, hyp_frames = gt.by_frame(), hyp.by_frame()
    empty = (np.zeros(0, np.int64), np.zeros((0, 4)))
    previous: dict[int, int] = {}  # object id -> hypothesis id it was last matched to
    matches = fps = misses = switches = 0
    distance_sum = 0.0
    for frame in sorted(set(gt_frames) | set(hyp_frames)):
        oids, oboxes = gt_frames.get(frame, empty)
        hids, hboxes = hyp_frames.get(frame, empty)
        dist = _match_distance(oboxes, hboxes, iou_threshold)
        o_done = np.zeros(len(oids), bool)
        h_done = np.zeros(len(hids), bool)
        if len(oids) and len(hids):
            # 1. Keep last frame's correspondences when they still may match.
            for i, oid in enumerate(oids):
                if int(oid) not in previous:
                    continue
                (js,) = np.nonzero(~h_done & (hids == previous[int(oid)]))
                if len(js) and np.isfinite(dist[i, js[0]]):
                    o_done[i] = h_done[js[0]] = True
                    matches += 1
                    distance_sum += float(dist[i, js[0]])
            # 2. Minimum-distance matching of the rest; a changed partner is a switch.
            free = dist.copy()
            free[o_done, :] = np.nan
            free[:, h_done] = np.nan
            valid = np.isfinite(free)
            if valid.any():
                rows, cols = linear_sum_assignment(np.where(valid, free, _FORBIDDEN))
                for i, j in zip(rows, cols):
                    if not valid[i, j]:
                        continue
                    oid, hid = int(oids[i]), int(hids[j])
                    if oid in previous and previous[oid] != hid:
                        switches += 1
                    previous[oid] = hid
                    o_done[i] = h_done[j] = True
                    matches += 1
                    distance_sum += float(dist[i, j])
        misses += int((~o_done).sum())
        fps += int((~h_done).sum())
    return ClearMot(len(gt), len(hyp), matches, fps, misses, switches, distance_sum)


def identity_scores(gt: MotTrajectories, hyp: MotTrajectories, iou_threshold: float = 0.5) -> IdentityScores:
    """IDTP/IDFP/IDFN from the global one-to-one pairing of trajectories.

    The usual formulation adds a dummy partner per trajectory and minimises
    IDFP + IDFN; since that total is (GT + hypotheses) - 2 * IDTP, it is the same as
    maximising the overlap frames of paired trajectories, which is solved here
    directly on the (objects x hypotheses) overlap-count matrix.
    """
    oid_list = np.unique(gt.track_id)
    hid_list = np.unique(hyp.track_id)
    o_index = {int(o): k for k, o in enumerate(oid_list)}
    h_index = {int(h): k for k, h in enumerate(hid_list)}
    overlap = np.zeros((len(oid_list), len(hid_list)))
    hyp_frames = hyp.by_frame()
    for frame, (oids, oboxes) in gt.by_frame().items():
        if frame not in hyp_frames:
            continue
        hids, hboxes = hyp_frames[frame]
        oi, hj = np.nonzero(np.isfinite(_match_distance(oboxes, hboxes, iou_threshold)))
        for i, j in zip(oi, hj):
            overlap[o_index[int(oids[i])], h_index[int(hids[j])]] += 1
    idtp = 0
    if overlap.size:
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        idtp = int(overlap[rows, cols].sum())
    return IdentityScores(idtp=idtp, idfp=len(hyp) - idtp, idfn=len(gt) - idtp)


def combine(scores: Iterable[MotScores]) -> MotScores:
    """Scores over several sequences, as if they were one (motmetrics' OVERALL row).

    Counts add up; identities never span sequences, so IDTP adds up too.
    """
    scores = list(scores)
    c = [s.clear for s in scores]
    i = [s.identity for s in scores]
    return MotScores(
        ClearMot(
            sum(x.num_objects for x in c), sum(x.num_predictions for x in c), sum(x.matches for x in c),
            sum(x.false_positives for x in c), sum(x.misses for x in c), sum(x.id_switches for x in c),
            sum(x.distance_sum for x in c),
        ),
        IdentityScores(sum(x.idtp for x in i), sum(x.idfp for x in i), sum(x.idfn for x in i)),
    )  # fmt: skip


def evaluate(gt: MotTrajectories, hyp: MotTrajectories, iou_threshold: float = 0.5) -> MotScores:
    """CLEAR MOT and identity scores of ``hyp`` against ground truth ``gt``."""
    return MotScores(clear_mot(gt, hyp, iou_threshold), identity_scores(gt, hyp, iou_threshold))
