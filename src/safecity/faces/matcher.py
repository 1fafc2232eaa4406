"""Matching probe templates against the active watchlist gallery with FAISS.

The index is rebuilt from :meth:`WatchlistService.face_gallery` whenever the service's
revision changes (an enrolment, a removal, or an expiry passing), so an expired entry
can never match. The probe templates themselves are never stored: :meth:`match`
returns only hits, and whatever matched nothing is dropped with the call's locals.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import faiss
import numpy as np

from safecity.faces.index import build_index
from safecity.governance.watchlists import FaceGallery, WatchlistService


@dataclass(frozen=True, slots=True)
class FaceHit:
    entry_id: int
    label: str
    watchlist: str
    score: float
    threshold: float


class FaceMatcher:
    def __init__(self, service: WatchlistService, default_threshold: float, refresh_seconds: float = 5.0) -> None:
        self.service = service
        self.default_threshold = default_threshold
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._revision: tuple | None = None
        self._checked_at = 0.0
        self._gallery: FaceGallery | None = None
        self._index: faiss.Index | None = None

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < self.refresh_seconds:
            return
        with self._lock:
            self._checked_at = now
            revision = self.service.revision()
            if not force and revision == self._revision:
                return
            gallery = self.service.face_gallery()
            index = None
            if len(gallery.entry_ids):
                index = build_index(gallery.vectors)
            self._gallery, self._index, self._revision = gallery, index, revision

    @property
    def size(self) -> int:
        return 0 if self._gallery is None else len(self._gallery.entry_ids)

    def match(self, probes: np.ndarray, k: int = 5) -> list[FaceHit | None]:
        """For each L2-normalised probe, the best active entry above its list's threshold."""
        self.refresh()
        probes = np.ascontiguousarray(np.atleast_2d(probes), dtype=np.float32)
        gallery, index = self._gallery, self._index
        if index is None or gallery is None or len(probes) == 0:
            return [None] * len(probes)
        scores, rows = index.search(probes, min(k, index.ntotal))
        hits: list[FaceHit | None] = []
        for score_row, index_row in zip(scores, rows):
            best = None
            for score, row in zip(score_row, index_row):
                if row < 0:
                    continue
                threshold = gallery.thresholds[row]
                threshold = self.default_threshold if np.isnan(threshold) else float(threshold)
                if score >= threshold and (best is None or score > best.score):
                    best = FaceHit(
                        int(gallery.entry_ids[row]), gallery.labels[row], gallery.watchlists[row], float(score), threshold
                    )
            hits.append(best)
        return hits
