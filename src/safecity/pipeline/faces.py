"""Faces against the watchlist: detect, follow, embed the best few shots, match, forget.

Per camera, faces are detected on frames with motion and followed with a tracker
(where the camera also runs ``objects``, which runs first, only on frames in which it
sees a person or a face track is still alive: as Frigate looks for faces on people),
so each person in view is one face track. A track's shot is embedded only when its
quality beats the track's worst kept shot (at most ``SHOTS_PER_TRACK`` embeddings
per track, not one per frame). Each new template is matched at once against the
approved, unexpired watchlist entries; a hit becomes a ``face_match`` alert.

A template that matches nothing lives only in this object's memory while its track
lives and is dropped with the track: it is never written to the store, the media
folder, a log or an event. Only a hit is stored, and then only the event (score,
entry, box and the frame as snapshot), never the probe template itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from safecity.config import Camera, Config
from safecity.faces.calibration import OPERATING_THRESHOLD
from safecity.faces.matcher import FaceHit, FaceMatcher
from safecity.faces.models import align
from safecity.faces.pipeline import FacePipeline
from safecity.faces.quality import assess
from safecity.pipeline.stage import Analyser
from safecity.records import Detections, Event, Frame, event_key
from safecity.tracking.bytetrack import ByteTracker
from safecity.vision.motion import Motion
from safecity.vision.shared import shared

SHOTS_PER_TRACK = 3


def _matcher(url: str) -> FaceMatcher:
    from safecity.db import make_engine
    from safecity.governance.watchlists import WatchlistService

    return FaceMatcher(WatchlistService(make_engine(url), actor="system:matcher"), OPERATING_THRESHOLD)


@dataclass
class _FaceTrack:
    first_ts: float
    last_ts: float
    shot_quality: list[float] = field(default_factory=list)  # qualities of the shots embedded so far
    hits: dict[int, FaceHit] = field(default_factory=dict)  # entry id -> best hit
    first_hit_ts: dict[int, float] = field(default_factory=dict)


class FaceMatches(Analyser):
    name = "faces"
    gated = True

    def __init__(self, camera: Camera, config: Config, pipeline: FacePipeline | None = None,
                 matcher: FaceMatcher | None = None) -> None:
        super().__init__(camera, config)
        self.pipeline = pipeline or shared("face-pipeline", FacePipeline)
        self.matcher = matcher or shared(f"face-matcher:{config.store.url}", lambda: _matcher(config.store.url))
        self.tracker = ByteTracker(high_threshold=0.6, new_track_threshold=0.6, low_threshold=0.3, track_buffer=2.0)
        self._tracks: dict[int, _FaceTrack] = {}
        self._last = Detections.empty()
        self.embedded = 0  # templates computed (all discarded unless they matched)
        self.on_people = "objects" in camera.analysers
        self.frames_searched = 0

    def _anyone(self, frame: Frame) -> bool:
        objects = frame.found.get("objects")
        return objects is not None and bool(np.any(objects.class_name.astype(str) == "person"))

    def process(self, frame: Frame, motion: Motion) -> list[Event]:
        if self.on_people and not self._tracks and not self._anyone(frame):
            self._last = Detections.empty()
            return []
        self.frames_searched += 1
        found = self.pipeline.detector.detect(frame.image)
        found.class_name = np.array(["face"] * len(found), dtype=object)
        tracked = self.tracker.update(found, frame.ts)
        self._last = tracked
        events: list[Event] = []
        if len(tracked):
            if self.pipeline.refine:
                tracked = self.pipeline.detector.refine(frame.image, tracked)
            crops, owners = [], []
            for i in range(len(tracked)):
                tid = int(tracked.tracker_id[i])
                track = self._tracks.setdefault(tid, _FaceTrack(frame.ts, frame.ts))
                track.last_ts = frame.ts
                marks = tracked.data["landmarks"][i]
                crop = align(frame.image, marks)
                quality = assess(marks, float(tracked.confidence[i]), crop).score
                if quality < self.pipeline.quality_threshold:
                    continue
                if len(track.shot_quality) >= SHOTS_PER_TRACK and quality <= min(track.shot_quality):
                    continue  # not better than the shots already tried
                track.shot_quality = sorted(track.shot_quality + [quality])[-SHOTS_PER_TRACK:]
                crops.append(crop)
                owners.append(i)
            if crops:
                templates = self.pipeline.embedder.embed_aligned(np.stack(crops))
                self.embedded += len(templates)
                for i, hit in zip(owners, self.matcher.match(templates)):
                    if hit is not None:
                        events += self._hit(int(tracked.tracker_id[i]), hit, tracked.xyxy[i], frame)
                del templates, crops  # nothing of a non-match outlives this call
        for tid in [t for t, track in self._tracks.items() if frame.ts - track.last_ts > self.tracker.track_buffer]:
            del self._tracks[tid]
        return events

    def _hit(self, tid: int, hit: FaceHit, box: np.ndarray, frame: Frame) -> list[Event]:
        track = self._tracks[tid]
        best = track.hits.get(hit.entry_id)
        if best is not None and hit.score <= best.score:
            return []
        track.hits[hit.entry_id] = hit
        start = track.first_hit_ts.setdefault(hit.entry_id, frame.ts)
        return [
            Event(
                camera=self.camera.name,
                type="face_match",
                label=hit.label,
                start_ts=start,
                end_ts=frame.ts,
                score=round(hit.score, 4),
                box=tuple(float(v) for v in box),
                attributes={"entry_id": hit.entry_id, "watchlist": hit.watchlist, "threshold": hit.threshold,
                            "track_id": tid},
                snapshot=frame.image,
                # one alert per person per pass, updated while a better shot comes
                key=event_key(self.camera.name, "face_match", start, f"{hit.entry_id}#{tid}"),
            )
        ]

    def overlays(self):
        last = self._last
        return [(tuple(map(float, last.xyxy[i])), "face") for i in range(len(last))]

    def flush(self) -> list[Event]:
        self._tracks.clear()
        return []
