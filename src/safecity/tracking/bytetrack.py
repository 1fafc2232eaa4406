"""ByteTrack: give detections identities that persist from frame to frame.

ByteTrack (Zhang et al., ECCV 2022) keeps the low-confidence boxes that other
trackers throw away: an occluded or blurred person often still gets a weak box, and
matching it to an existing track keeps that track alive without ever letting a weak
box start a new one (which is where false tracks come from). Per update:

1. every track is predicted to ``ts`` by a constant-velocity Kalman filter;
2. high-score boxes are matched to confirmed and recently lost tracks by IoU
   (fused with the box score) with the Hungarian algorithm;
3. low-score boxes are matched to the confirmed tracks still unmatched, by plain IoU;
4. tentative tracks (seen once) are matched to the high-score boxes left over;
5. high-score boxes still unmatched start tentative tracks, which are confirmed -
   and only then given an id - when they are matched again on the next update;
6. tracks unmatched for longer than ``track_buffer`` **seconds** are dropped.

Unlike the reference implementation, everything that was counted in frames is
counted in seconds, so the tracker works unchanged at any analysis fps; and a box
is only ever matched to a track of the same ``class_name`` (a person never
continues a car's track). A tentative track, which has no velocity yet, is
matched with a buffered IoU that widens with its uncertainty, so that fast objects
can still be confirmed at low fps. Association is otherwise pure IoU: cheap, and
adequate when boxes overlap between consecutive analysed frames; appearance
features can be added as another cost term later.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from safecity.records import Detections
from safecity.tracking.kalman import KalmanBoxFilter, cxcywh_to_xyxy, xyxy_to_cxcywh

_FORBIDDEN = 1e6  # cost of a pair that may never match (other class, no overlap)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of N x 4 and M x 4 ``xyxy`` boxes (N x M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _buffered_iou(tracks: np.ndarray, boxes: np.ndarray, margins: np.ndarray) -> np.ndarray:
    """IoU after growing each track box, and every box compared with it, by its margin.

    Growing both boxes of a pair by the same amount keeps a perfect match at 1 but
    lets boxes that moved further than their size still overlap (the buffered IoU of
    C-BIoU, Yang et al. 2023). The margin comes from the track's own position
    uncertainty, which grows with time since it was last seen: a track seen once,
    0.2 s ago at 5 fps, searches wider than a well-established one at 30 fps.
    """
    m = np.concatenate([-margins, margins], axis=1)  # N x 4, added to x1 y1 x2 y2
    grown_tracks = tracks + m
    grown_boxes = boxes[None, :, :] + m[:, None, :]  # N x M x 4
    lt = np.maximum(grown_tracks[:, None, :2], grown_boxes[..., :2])
    rb = np.minimum(grown_tracks[:, None, 2:], grown_boxes[..., 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_t = np.prod(grown_tracks[:, 2:] - grown_tracks[:, :2], axis=1)[:, None]
    area_b = np.prod(np.clip(grown_boxes[..., 2:] - grown_boxes[..., :2], 0, None), axis=2)
    union = area_t + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def assign(cost: np.ndarray, max_cost: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Minimum-cost one-to-one matching that never accepts a pair above ``max_cost``.

    Pairs above the limit are made prohibitively expensive before solving, so the
    solver first maximises the number of acceptable pairs and then their total cost;
    any forbidden pair it was forced into is discarded afterwards.
    Returns (matches as (row, col)), unmatched rows, unmatched cols.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return [], list(range(n)), list(range(m))
    allowed = cost <= max_cost
    rows, cols = linear_sum_assignment(np.where(allowed, cost, _FORBIDDEN))
    matches = [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]
    matched_r = {r for r, _ in matches}
    matched_c = {c for _, c in matches}
    return (
        matches,
        [r for r in range(n) if r not in matched_r],
        [c for c in range(m) if c not in matched_c],
    )


class TrackState(enum.Enum):
    TENTATIVE = "tentative"  # seen once; no id yet
    TRACKED = "tracked"  # confirmed and matched on the last update
    LOST = "lost"  # confirmed, unmatched since ``last_seen``


@dataclass(slots=True)
class _Track:
    class_name: str
    mean: np.ndarray
    cov: np.ndarray
    last_seen: float
    state: TrackState = TrackState.TENTATIVE
    track_id: int = 0

    @property
    def xyxy(self) -> np.ndarray:
        return cxcywh_to_xyxy(self.mean[:4])[0]


@dataclass
class ByteTracker:
    """Multi-object tracker; call :meth:`update` once per analysed frame, in time order.

    Defaults follow ByteTrack's published settings: boxes scoring at least
    ``high_threshold`` are trusted, those between ``low_threshold`` and it are only
    used to extend tracks, and a new track needs ``new_track_threshold``.
    ``match_threshold``, ``low_match_threshold`` and ``tentative_match_threshold`` are
    the largest acceptable association costs (1 - IoU, times the score in the fused
    first and tentative passes). ``track_buffer`` is how long, in seconds, a lost track
    may be re-found; ByteTrack's 30 frames at 30 fps.

    ``buffer_sigmas`` widens the search of tentative tracks by that many standard
    deviations of their position (0 gives plain ByteTrack). It is not applied to
    confirmed tracks: on TUD-Stadtmitte with noisy boxes that only added ID
    switches between people walking side by side, while confirmed tracks already
    follow their predicted motion.
    """

    high_threshold: float = 0.5
    low_threshold: float = 0.1
    new_track_threshold: float = 0.6
    match_threshold: float = 0.8
    low_match_threshold: float = 0.5
    tentative_match_threshold: float = 0.7
    track_buffer: float = 1.0
    buffer_sigmas: float = 1.0
    kalman: KalmanBoxFilter = field(default_factory=KalmanBoxFilter)

    def __post_init__(self) -> None:
        if not 0 <= self.low_threshold <= self.high_threshold:
            raise ValueError("need 0 <= low_threshold <= high_threshold")
        if self.track_buffer < 0:
            raise ValueError("track_buffer must be >= 0 seconds")
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new stream, or a seek)."""
        self._tracks: list[_Track] = []
        self._ts: float | None = None
        self._next_id = 1

    def update(self, detections: Detections, ts: float) -> Detections:
        """Associate one frame's boxes; return the tracked ones with ``tracker_id`` set.

        The returned rows are the input rows (original boxes, scores and ``data``
        columns) of boxes that belong to a confirmed track on this frame; unmatched
        and tentative boxes are left out. ``ts`` is in seconds and must not decrease.
        """
        first_frame = self._ts is None
        if self._ts is not None and ts < self._ts:
            raise ValueError(f"time went backwards: {ts} after {self._ts}; call reset() on a seek")
        dt = 0.0 if self._ts is None else ts - self._ts
        self._ts = ts
        self._predict(dt)

        det_boxes = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(detections.confidence, dtype=np.float64)
        classes = np.asarray(detections.class_name, dtype=object)
        high = np.flatnonzero(scores >= self.high_threshold)
        low = np.flatnonzero((scores >= self.low_threshold) & (scores < self.high_threshold))

        confirmed = [t for t in self._tracks if t.state is not TrackState.TENTATIVE]
        tentative = [t for t in self._tracks if t.state is TrackState.TENTATIVE]
        assigned: dict[int, _Track] = {}  # detection row -> track

        # 1. High-score boxes against confirmed and lost tracks (score-fused IoU).
        cost = self._cost(confirmed, det_boxes[high], classes[high], scores[high])
        matches, left_tracks, left_high = assign(cost, self.match_threshold)
        for r, c in matches:
            assigned[int(high[c])] = confirmed[r]
        left_high_rows = high[left_high]

        # 2. Low-score boxes against tracks that were tracked last frame (plain IoU).
        #    Lost tracks are excluded: a weak box far in time is too weak a proof.
        candidates = [confirmed[r] for r in left_tracks if confirmed[r].state is TrackState.TRACKED]
        cost = self._cost(candidates, det_boxes[low], classes[low], None)
        matches, left_candidates, _ = assign(cost, self.low_match_threshold)
        for r, c in matches:
            assigned[int(low[c])] = candidates[r]
        for r in left_candidates:
            candidates[r].state = TrackState.LOST

        # 3. Tentative tracks against the high-score boxes left over.
        #    A tentative track has no velocity yet, so its prediction is just its one
        #    box; it searches as far as its uncertainty allows (buffered IoU), or a
        #    person walking across the view at 5 fps moves too far to be confirmed.
        cost = self._cost(
            tentative,
            det_boxes[left_high_rows],
            classes[left_high_rows],
            scores[left_high_rows],
            buffered=True,
        )
        matches, left_tentative, left_new = assign(cost, self.tentative_match_threshold)
        for r, c in matches:
            assigned[int(left_high_rows[c])] = tentative[r]
        dead = {id(tentative[r]) for r in left_tentative}

        self._correct(assigned, det_boxes, ts)

        # 4. Unmatched confident boxes start tentative tracks (confirmed at once on
        #    the very first frame, when there is nothing they could be confused with).
        born: list[_Track] = []
        for c in left_new:
            row = int(left_high_rows[c])
            if scores[row] < self.new_track_threshold:
                continue
            mean, cov = self.kalman.initiate(xyxy_to_cxcywh(det_boxes[row]))
            track = _Track(str(classes[row]), mean[0], cov[0], ts)
            if first_frame:
                self._confirm(track)
                assigned[row] = track
            born.append(track)

        # 5. Forget tracks lost for too long and tentative tracks not seen again.
        self._tracks = [
            t
            for t in self._tracks
            if id(t) not in dead and not (t.state is TrackState.LOST and ts - t.last_seen > self.track_buffer)
        ] + born

        rows = np.array(
            sorted(r for r, t in assigned.items() if t.state is TrackState.TRACKED), dtype=np.int64
        )
        out = detections[rows]
        out.tracker_id = np.array([assigned[int(r)].track_id for r in rows], dtype=np.int64)
        return out

    def _predict(self, dt: float) -> None:
        if not self._tracks or dt <= 0:
            return
        mean = np.stack([t.mean for t in self._tracks])
        cov = np.stack([t.cov for t in self._tracks])
        # A lost track keeps moving but stops growing or shrinking: its size
        # velocity was estimated from too little to extrapolate blindly (ByteTrack).
        lost = np.array([t.state is TrackState.LOST for t in self._tracks])
        mean[lost, 6:8] = 0.0
        mean, cov = self.kalman.predict(mean, cov, dt)
        for track, m, c in zip(self._tracks, mean, cov):
            track.mean, track.cov = m, c

    def _cost(
        self,
        tracks: list[_Track],
        boxes: np.ndarray,
        classes: np.ndarray,
        scores: np.ndarray | None,
        buffered: bool = False,
    ) -> np.ndarray:
        """1 - IoU (times the detection score when given); other classes forbidden.

        ``buffered`` grows the boxes by the tracks' position uncertainty first
        (:func:`_buffered_iou`); it is used for tentative tracks only.
        """
        if not tracks or len(boxes) == 0:
            return np.zeros((len(tracks), len(boxes)))
        track_boxes = np.stack([t.xyxy for t in tracks])
        if buffered and self.buffer_sigmas > 0:
            iou = _buffered_iou(track_boxes, boxes, self._margins(tracks))
        else:
            iou = box_iou(track_boxes, boxes)
        if scores is not None:
            iou = iou * scores[None, :]
        cost = 1.0 - iou
        same_class = np.array([t.class_name for t in tracks], dtype=object)[:, None] == classes[None, :]
        cost[~same_class | (iou <= 0)] = _FORBIDDEN
        return cost

    def _margins(self, tracks: list[_Track]) -> np.ndarray:
        """Per-track (x, y) margin: ``buffer_sigmas`` standard deviations of its centre."""
        cov = np.stack([t.cov for t in tracks])
        return self.buffer_sigmas * np.sqrt(np.clip(cov[:, [0, 1], [0, 1]], 0, None))

    def _correct(self, assigned: dict[int, _Track], boxes: np.ndarray, ts: float) -> None:
        if not assigned:
            return
        rows = list(assigned)
        tracks = [assigned[r] for r in rows]
        mean, cov = self.kalman.update(
            np.stack([t.mean for t in tracks]),
            np.stack([t.cov for t in tracks]),
            xyxy_to_cxcywh(boxes[rows]),
        )
        for track, m, c in zip(tracks, mean, cov):
            track.mean, track.cov = m, c
            track.last_seen = ts
            if track.state is TrackState.TENTATIVE:
                self._confirm(track)
            track.state = TrackState.TRACKED

    def _confirm(self, track: _Track) -> None:
        track.track_id = self._next_id
        self._next_id += 1
        track.state = TrackState.TRACKED
