"""Licence plates: find on moving vehicles, read until sure, vote once per vehicle pass, check lists.

Where the camera also runs the ``objects`` analyser (it runs first), plates are looked
for only inside vehicles that move (their box overlaps the motion gate's regions) or
that carry a plate being followed, each crop at a resolution that suits it, as
Frigate and DeepStream run plate recognition as a secondary stage on vehicle objects:
parked cars and empty road cost nothing. Without ``objects`` the whole frame is searched.

Each plate is followed with a tracker; a plate track is one vehicle pass. A pass is read
when first seen, then again when its plate is clearly larger than at the best read so
far or half a second has gone by, until ``SETTLED_SUPPORT`` reads agree. When the track
ends its reads are voted on (more reads and higher confidence win). Every pass gives
exactly one ``plate_read`` event with the best crop's frame, including passes whose plate
could not be read: those are stored as ``unreadable`` and counted, never silently
dropped. A readable plate that is on an approved, unexpired plate list also gives a
``plate_match`` alert.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from safecity.config import Camera, Config
from safecity.pipeline.stage import Analyser
from safecity.plates.grammar import RegionPrior
from safecity.plates.vote import TrackVotes
from safecity.records import Detections, Event, Frame, event_key, plate_key
from safecity.tracking.bytetrack import ByteTracker, box_iou
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
        return self._entries.get(plate_key(plate), [])


PLATE_CLASSES = ("car", "bus", "truck", "motorcycle")  # what carries a plate (the objects analyser's classes)
REGION_MARGIN = 0.1  # share of a vehicle box added on each side: bumpers stick out of boxes
CROP_SIZES = (320, 416, 512, 640, 800)  # detector input sizes for crops: a few shapes, cached plans
READ_INTERVAL = 0.5  # seconds between reads of an unsettled pass
READ_GROWTH = 1.2  # ... or sooner when the plate is this much larger than at its best read
SETTLED_SUPPORT = 3  # agreeing readable reads after which a pass is not read again


@dataclass
class _Pass:
    first_ts: float
    last_ts: float
    best_quality: float = -1.0
    frame: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None  # where the plate was at its best
    last_box: tuple[float, float, float, float] | None = None  # where it was last seen
    reads: int = 0
    read_ts: float = -1e18
    read_quality: float = 0.0
    settled: bool = False


def merge_boxes(boxes: list[list[float]]) -> list[list[float]]:
    """Replace boxes that intersect by their union until none intersect (so no plate is
    searched for, and found, twice)."""
    merged: list[list[float]] = []
    for box in boxes:
        box = [float(v) for v in box]
        # a union can reach boxes its parts did not: absorb until nothing is met
        while merged and (hits := box_iou(np.array(merged), np.array(box))[:, 0] > 0).any():
            met = np.array([m for m, hit in zip(merged, hits) if hit] + [box])
            merged = [m for m, hit in zip(merged, hits) if not hit]
            box = [*met[:, :2].min(0).tolist(), *met[:, 2:].max(0).tolist()]
        merged.append(box)
    return merged


def crop_size(width: int, height: int) -> int:
    """The detector input size for a crop: the smallest of ``CROP_SIZES`` that holds its
    longer side (small vehicles are enlarged to 320, large ones shrunk to 800)."""
    side = max(width, height)
    return next((s for s in CROP_SIZES if s >= side), CROP_SIZES[-1])


class PlateEvents(Analyser):
    name = "plates"
    gated = True

    def __init__(self, camera: Camera, config: Config, recognizer=None, lists: PlateLists | None = None) -> None:
        super().__init__(camera, config)
        self.recognizer = recognizer or shared("plates", _recognizer)
        self.lists = lists or shared(f"plate-lists:{config.store.url}", lambda: PlateLists(config.store.url))
        self.tracker = ByteTracker(high_threshold=0.4, new_track_threshold=0.45, low_threshold=0.2, track_buffer=1.5)
        self.votes = TrackVotes()
        # the camera's country, given or learned from its own readings (labels are never used)
        self.region = RegionPrior(country=camera.plate_country)
        self.on_vehicles = "objects" in camera.analysers
        self._passes: dict[int, _Pass] = {}
        self._last = Detections.empty()
        self.frames_searched = 0  # frames where the detector ran (at least on one vehicle)
        self.plates_read = 0  # plates sent to the reader

    def search_regions(self, frame: Frame, motion: Motion) -> list[list[float]] | None:
        """Where to look for plates: boxes in frame pixels, or None for the whole frame."""
        if not self.on_vehicles:
            return None
        objects = frame.found.get("objects")
        if objects is None or not len(objects):
            return []
        classes = objects.data.get("class", objects.class_name).astype(str)
        vehicles = np.asarray(objects.xyxy, np.float64)[np.isin(classes, PLATE_CLASSES)]
        followed = np.array([p.last_box for p in self._passes.values() if p.last_box], np.float64).reshape(-1, 4)
        moving = (box_iou(vehicles, motion.regions.xyxy) > 0).any(1)
        wanted = vehicles[moving | (box_iou(vehicles, followed) > 0).any(1)]
        h, w = frame.height, frame.width
        regions = []
        for x0, y0, x1, y1 in wanted:
            mx, my = (x1 - x0) * REGION_MARGIN, (y1 - y0) * REGION_MARGIN
            regions.append([max(0.0, x0 - mx), max(0.0, y0 - my), min(float(w), x1 + mx), min(float(h), y1 + my)])
        return merge_boxes(regions)

    def find(self, frame: Frame, motion: Motion) -> Detections:
        regions = self.search_regions(frame, motion)
        detector = self.recognizer.detector
        if regions is None:
            self.frames_searched += 1
            return detector.detect(frame.image)
        parts = []
        for x0, y0, x1, y1 in regions:
            a, b, c, d = int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))
            if c - a < 8 or d - b < 8:
                continue
            found = detector.detect(frame.image[b:d, a:c], size=crop_size(c - a, d - b))
            if len(found):
                found.xyxy = found.xyxy + np.array([a, b, a, b], found.xyxy.dtype)
                parts.append(found)
        self.frames_searched += bool(regions)
        return Detections.merge(parts) if parts else Detections.empty()

    def _wants_read(self, current: _Pass, quality: float, ts: float) -> bool:
        if current.settled:
            return False
        return current.reads == 0 or quality >= READ_GROWTH * current.read_quality or ts - current.read_ts >= READ_INTERVAL

    def process(self, frame: Frame, motion: Motion) -> list[Event]:
        tracked = self.tracker.update(self.find(frame, motion), frame.ts)
        self._last = tracked
        to_read: list[tuple[int, _Pass, float]] = []
        for i in range(len(tracked)):
            tid = int(tracked.tracker_id[i])
            box = tuple(float(v) for v in tracked.xyxy[i])
            quality = float(tracked.confidence[i]) * (box[2] - box[0])
            current = self._passes.setdefault(tid, _Pass(frame.ts, frame.ts))
            current.last_ts, current.last_box = frame.ts, box
            if quality > current.best_quality:
                current.best_quality, current.frame, current.box = quality, frame.image, box
            if self._wants_read(current, quality, frame.ts):
                to_read.append((i, current, quality))
        if to_read:
            rows = np.array([i for i, _, _ in to_read])
            # (too small: an empty reading)
            reads = self.recognizer.read_boxes(frame.image, tracked.xyxy[rows], self.region.priors())
            self.plates_read += len(reads)
            for (i, current, quality), read in zip(to_read, reads):
                self.region.observe(read.grammar, read.text, read.char_confidences)
                tid = int(tracked.tracker_id[i])
                self.votes.add(tid, read, quality)
                if current.frame is frame.image and read.lettering:
                    # the pass's best view: its box fitted to the plate (the detector's
                    # may hold the recess around it) for the event and its snapshot
                    tight = self.recognizer.plate_boxes(frame.image.shape, tracked.xyxy[i : i + 1], [read])[0]
                    current.box = tuple(float(v) for v in tight)
                current.reads += 1
                current.read_ts, current.read_quality = frame.ts, max(current.read_quality, quality)
                so_far = self.votes.peek(tid)
                current.settled = so_far.readable and so_far.support >= SETTLED_SUPPORT
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
