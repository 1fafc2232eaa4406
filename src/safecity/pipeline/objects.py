"""People and vehicles: detect, track, and turn tracks into events and counts.

Detection runs when the motion gate is open or a track is still alive (so a car that
stops keeps its identity for the tracker's buffer), never on a static empty scene.
It emits, per camera:

- ``object``: one event per tracked person or vehicle, published when the track is
  confirmed and again when it is lost (Frigate's model), with the best snapshot;
- ``line_crossing``: each crossing of a configured line, with its direction;
- ``zone_dwell``: each stay in a configured zone, with its duration;
- ``count``: every ``count_interval_seconds``, the crossings per line and direction
  and the peak occupancy per zone and class: the time series behind the charts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from safecity.config import Camera, Config
from safecity.pipeline.stage import Analyser
from safecity.records import Detections, Event, Frame, event_key
from safecity.tracking.analytics import CameraAnalytics
from safecity.tracking.bytetrack import ByteTracker
from safecity.vision.motion import Motion
from safecity.vision.shared import shared

OBJECT_CLASSES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
FAMILY = {"person": "person", "bicycle": "two-wheeler", "motorcycle": "two-wheeler", "car": "vehicle",
          "bus": "vehicle", "truck": "vehicle"}


def _object_detector():
    from safecity.vision.objects import ObjectDetector

    return ObjectDetector()


@dataclass(slots=True)
class _Seen:
    """What we know of one track while it lives."""

    class_name: str
    first_ts: float
    last_ts: float
    best_score: float = -1.0
    box: tuple[float, float, float, float] | None = None
    snapshot: np.ndarray | None = None
    confidence: float = 0.0
    frames: int = 0
    classes: Counter[str] = field(default_factory=Counter)
    published: bool = False
    zones: set[str] = field(default_factory=set)


class ObjectEvents(Analyser):
    name = "objects"
    gated = False  # it gates itself: motion, or tracks still alive

    def __init__(self, camera: Camera, config: Config, detector=None) -> None:
        super().__init__(camera, config)
        thresholds = config.thresholds_for(camera)
        self.min_seconds = thresholds.event_min_seconds
        self.interval = thresholds.count_interval_seconds
        self.detector = detector or shared("objects", _object_detector)
        # NanoDet scores real objects from 0.4 up at CCTV angles; ByteTrack's defaults
        # (0.5 / 0.6) assume a stronger detector and left cars seen from above untracked
        self.tracker = ByteTracker(
            high_threshold=0.4, new_track_threshold=0.45, low_threshold=0.2, track_buffer=max(1.0, 3.0 / camera.fps)
        )
        self.analytics = CameraAnalytics(camera)
        self._tracks: dict[int, _Seen] = {}
        self._window_start: float | None = None
        self._crossings: Counter[tuple[str, str, str]] = Counter()
        self._peaks: dict[str, Counter[str]] = defaultdict(Counter)
        self._last = Detections.empty()

    def process(self, frame: Frame, motion: Motion) -> list[Event]:
        events: list[Event] = []
        if self._window_start is None:
            self._window_start = frame.ts
        self._last = Detections.empty()
        frame.found[self.name] = self._last
        if motion.active or self._tracks:
            detections = self.detector.detect(frame.image)
            detections = detections[np.isin(detections.class_name.astype(str), OBJECT_CLASSES)]
            # track families, not classes: a detector often calls one van car, truck and
            # bus on successive frames, which must not split it into three tracks
            detections.data["class"] = detections.class_name.copy()
            detections.class_name = np.array([FAMILY[str(c)] for c in detections.class_name], dtype=object)
            tracked = self.tracker.update(detections, frame.ts)
            self._last = frame.found[self.name] = tracked
            events += self._follow(tracked, frame)
            update = self.analytics.update(tracked, frame.ts, frame.width, frame.height)
            events += self._analytics_events(update.crossings, update.exits)
            for occupancy in update.occupancy:
                peak = self._peaks[occupancy.zone]
                for cls, n in occupancy.counts.items():
                    peak[cls] = max(peak[cls], n)
            for stay in self.analytics.zones.dwelling():
                if stay.track_id in self._tracks:
                    self._tracks[stay.track_id].zones.add(stay.zone)
        events += self._lost(frame.ts)
        if frame.ts - self._window_start >= self.interval:
            events += self._count_event(frame.ts)
        return events

    def overlays(self):
        last = self._last
        return [
            (tuple(map(float, last.xyxy[i])), f"{last.class_name[i]} #{int(last.tracker_id[i])}") for i in range(len(last))
        ]

    def flush(self) -> list[Event]:
        events = self._analytics_events((), self.analytics.flush())
        events += self._lost(float("inf"))
        if self._window_start is not None and (self._crossings or self._peaks):
            last = max((s.last_ts for s in self._tracks.values()), default=self._window_start)
            events += self._count_event(last)
        return events

    # tracks -> object events

    def _follow(self, tracked: Detections, frame: Frame) -> list[Event]:
        events = []
        for i in range(len(tracked)):
            tid = int(tracked.tracker_id[i])
            box = tuple(float(v) for v in tracked.xyxy[i])
            confidence = float(tracked.confidence[i])
            seen = self._tracks.get(tid)
            if seen is None:
                seen = self._tracks[tid] = _Seen(str(tracked.class_name[i]), frame.ts, frame.ts)
            seen.last_ts = frame.ts
            seen.frames += 1
            seen.confidence = max(seen.confidence, confidence)
            seen.classes[str(tracked.data["class"][i])] += 1
            # the best view: large and confidently detected, not cut by the frame edge
            area = (box[2] - box[0]) * (box[3] - box[1])
            edge = box[0] <= 1 or box[1] <= 1 or box[2] >= frame.width - 1 or box[3] >= frame.height - 1
            score = confidence * np.sqrt(max(area, 1.0)) * (0.5 if edge else 1.0)
            if score > seen.best_score:
                seen.best_score, seen.box, seen.snapshot = score, box, frame.image
            if not seen.published and seen.last_ts - seen.first_ts >= self.min_seconds:
                seen.published = True
                events.append(self._object_event(tid, seen, final=False))
        return events

    def _lost(self, now: float) -> list[Event]:
        gone = [tid for tid, seen in self._tracks.items() if now - seen.last_ts > self.tracker.track_buffer]
        events = []
        for tid in gone:
            seen = self._tracks.pop(tid)
            if seen.published:
                events.append(self._object_event(tid, seen, final=True))
        return events

    def _object_event(self, tid: int, seen: _Seen, final: bool) -> Event:
        return Event(
            camera=self.camera.name,
            type="object",
            label=seen.classes.most_common(1)[0][0] if seen.classes else seen.class_name,
            start_ts=seen.first_ts,
            end_ts=seen.last_ts if final else None,
            score=round(seen.confidence, 3),
            box=seen.box,
            attributes={"track_id": tid, "family": seen.class_name, "frames": seen.frames, "zones": sorted(seen.zones)},
            snapshot=seen.snapshot,
            key=event_key(self.camera.name, "object", seen.first_ts, f"{seen.class_name}#{tid}"),
        )

    # analytics -> events and counts

    def _analytics_events(self, crossings, exits) -> list[Event]:
        events = []
        for c in crossings:
            self._crossings[(c.line, c.direction, c.class_name)] += 1
            events.append(
                Event(
                    camera=self.camera.name, type="line_crossing", label=c.class_name, start_ts=c.ts, end_ts=c.ts,
                    attributes={"line": c.line, "direction": c.direction, "track_id": c.track_id},
                    key=event_key(self.camera.name, "line_crossing", c.ts, f"{c.line}#{c.track_id}"),
                )
            )
        for d in exits:
            events.append(
                Event(
                    camera=self.camera.name, type="zone_dwell", label=d.class_name, start_ts=d.enter_ts,
                    end_ts=d.exit_ts,
                    attributes={"zone": d.zone, "seconds": round(d.seconds(), 2), "track_id": d.track_id},
                    key=event_key(self.camera.name, "zone_dwell", d.enter_ts, f"{d.zone}#{d.track_id}"),
                )
            )
        return events

    def _count_event(self, now: float) -> list[Event]:
        start, self._window_start = self._window_start, now
        lines: dict = defaultdict(lambda: {"in": {}, "out": {}})
        for (line, direction, cls), n in self._crossings.items():
            lines[line][direction][cls] = n
        for line in self.camera.lines:
            lines[line.name]  # every configured line appears, zero or not
        zones = {zone.name: dict(self._peaks.get(zone.name, {})) for zone in self.camera.zones}
        self._crossings.clear()
        self._peaks.clear()
        if not self.camera.lines and not self.camera.zones:
            return []
        return [
            Event(
                camera=self.camera.name, type="count", label="interval", start_ts=start, end_ts=now,
                attributes={"lines": dict(lines), "zone_peaks": zones},
            )
        ]
