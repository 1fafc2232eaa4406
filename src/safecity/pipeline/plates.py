"""Licence plates: find, read on every analysed frame, vote once per vehicle pass, check lists.

Each plate is followed with a tracker; a plate track is one vehicle pass. Its reads
are collected and, when the track ends, voted on (more reads and higher confidence
win). Every pass gives exactly one ``plate_read`` event with the best crop's frame,
including passes whose plate could not be read: those are stored as ``unreadable``
and counted, never silently dropped. A readable plate that is on an approved,
unexpired plate list also gives a ``plate_match`` alert.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from safecity.config import Camera, Config
from safecity.pipeline.stage import Analyser
from safecity.plates.vote import TrackVotes
from safecity.records import Detections, Event, Frame, event_key
from safecity.tracking.bytetrack import ByteTracker
from safecity.vision.motion import Motion
from safecity.vision.shared import shared


def _recognizer():
    from safecity.plates.read import PlateRecognizer

    return PlateRecognizer()


class PlateLists:
    """The approved, unexpired plate-list entries, re-read every few seconds."""

    def __init__(self, url: str, refresh_seconds: float = 5.0) -> None:
        from safecity.db import make_engine
        from safecity.governance.watchlists import WatchlistService

        self.service = WatchlistService(make_engine(url), actor="system:plates")
        self.refresh_seconds = refresh_seconds
        self._entries: dict = {}
        self._read_at = -1e9

    def lookup(self, plate: str):
        if time.monotonic() - self._read_at >= self.refresh_seconds:
            self._entries = self.service.active_plates()
            self._read_at = time.monotonic()
        return self._entries.get(plate, [])


@dataclass
class _Pass:
    first_ts: float
    last_ts: float
    best_quality: float = -1.0
    frame: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    reads: int = 0


class PlateEvents(Analyser):
    name = "plates"
    gated = True

    def __init__(self, camera: Camera, config: Config, recognizer=None, lists: PlateLists | None = None) -> None:
        super().__init__(camera, config)
        self.recognizer = recognizer or shared("plates", _recognizer)
        self.lists = lists or shared(f"plate-lists:{config.store.url}", lambda: PlateLists(config.store.url))
        self.tracker = ByteTracker(high_threshold=0.4, new_track_threshold=0.45, low_threshold=0.2, track_buffer=1.5)
        self.votes = TrackVotes()
        self._passes: dict[int, _Pass] = {}
        self._last = Detections.empty()

    def process(self, frame: Frame, motion: Motion) -> list[Event]:
        found, reads = self.recognizer.recognise(frame.image)
        found.data["read"] = np.array(reads + [None], dtype=object)[:-1]  # keep the reads with their rows
        tracked = self.tracker.update(found, frame.ts)
        self._last = tracked
        for i in range(len(tracked)):
            tid = int(tracked.tracker_id[i])
            box = tuple(float(v) for v in tracked.xyxy[i])
            quality = float(tracked.confidence[i]) * (box[2] - box[0])
            current = self._passes.setdefault(tid, _Pass(frame.ts, frame.ts))
            current.last_ts = frame.ts
            current.reads += 1
            read = tracked.data["read"][i]
            self.votes.add(tid, read, quality)
            if quality > current.best_quality:
                current.best_quality, current.frame, current.box = quality, frame.image, box
        return self._finish([t for t, p in self._passes.items() if frame.ts - p.last_ts > self.tracker.track_buffer])

    def flush(self) -> list[Event]:
        return self._finish(list(self._passes))

    def overlays(self):
        last = self._last
        return [(tuple(map(float, last.xyxy[i])), "plate") for i in range(len(last))]

    def _finish(self, track_ids: list[int]) -> list[Event]:
        events = []
        for tid in track_ids:
            current = self._passes.pop(tid)
            result = self.votes.finish(tid)
            text = result.text
            attributes = {
                "plate": text, "readable": result.readable, "reads": result.reads, "support": result.support,
                "unreadable_reads": result.unreadable_reads, "char_confidences": list(result.char_confidences),
                "track_id": tid,
            }
            read = Event(
                camera=self.camera.name, type="plate_read", label=text or "unreadable", start_ts=current.first_ts,
                end_ts=current.last_ts, score=round(result.confidence, 3), box=current.box, attributes=attributes,
                snapshot=current.frame, key=event_key(self.camera.name, "plate_read", current.first_ts, f"#{tid}"),
            )
            events.append(read)
            for entry in self.lists.lookup(text) if text else []:
                events.append(
                    Event(
                        camera=self.camera.name, type="plate_match", label=text, start_ts=current.first_ts,
                        end_ts=current.last_ts, score=read.score, box=current.box,
                        attributes={**attributes, "entry_id": entry.id, "watchlist": entry.watchlist,
                                    "entry_label": entry.label},
                        snapshot=current.frame,
                        key=event_key(self.camera.name, "plate_match", current.first_ts, f"{entry.id}#{tid}"),
                    )
                )
        return events
