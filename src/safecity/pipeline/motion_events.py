"""Motion events: the analyser that needs no model, and the first events a camera gives.

As in Frigate, an event is published as soon as it is confirmed (motion lasting
``event_min_seconds``; shorter flicker is dropped), with no end time, and published
again under the same key when it ends: after ``event_gap_seconds`` without motion,
or once it reaches ``event_max_seconds``. The store keeps the latest version, so a
search shows ongoing events while they happen. The snapshot is the frame with the
most motion, and the event names the configured zones that the motion touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from safecity.config import Camera, Config
from safecity.pipeline.stage import Analyser
from safecity.records import Event, Frame
from safecity.vision.motion import Motion


@dataclass(slots=True)
class _OpenEvent:
    start_ts: float
    last_ts: float
    peak_area: float = 0.0
    frames: int = 0
    published: bool = False
    box: tuple[float, float, float, float] | None = None
    snapshot: np.ndarray | None = None
    zones: set[str] = field(default_factory=set)


class MotionEvents(Analyser):
    name = "motion"
    gated = False

    def __init__(self, camera: Camera, config: Config) -> None:
        super().__init__(camera, config)
        thresholds = config.thresholds_for(camera)
        self.min_seconds = thresholds.event_min_seconds
        self.gap_seconds = thresholds.event_gap_seconds
        self.max_seconds = thresholds.event_max_seconds
        self._polygons = [(z.name, np.array(z.polygon, np.float32)) for z in camera.zones]
        self._open: _OpenEvent | None = None

    def process(self, frame: Frame, motion: Motion) -> list[Event]:
        current = self._open
        if not motion.active:
            if current is not None and frame.ts - current.last_ts >= self.gap_seconds:
                return self._close()
            return []
        if current is None:
            current = self._open = _OpenEvent(start_ts=frame.ts, last_ts=frame.ts)
        current.last_ts = frame.ts
        current.frames += 1
        current.zones |= self._zones_touched(motion, frame)
        if motion.area > current.peak_area:
            regions = motion.regions.xyxy
            current.peak_area = motion.area
            current.box = (
                float(regions[:, 0].min()),
                float(regions[:, 1].min()),
                float(regions[:, 2].max()),
                float(regions[:, 3].max()),
            )
            current.snapshot = frame.image.copy()
        duration = current.last_ts - current.start_ts
        if duration >= self.max_seconds:
            return self._close()
        if not current.published and duration >= self.min_seconds:
            current.published = True
            return [self._event(current, final=False)]
        return []

    def flush(self) -> list[Event]:
        return self._close()

    def _close(self) -> list[Event]:
        done, self._open = self._open, None
        if done is None or done.last_ts - done.start_ts < self.min_seconds:
            return []
        return [self._event(done, final=True)]

    def _event(self, state: _OpenEvent, final: bool) -> Event:
        return Event(
            camera=self.camera.name,
            type="motion",
            label="motion",
            start_ts=state.start_ts,
            end_ts=state.last_ts if final else None,
            score=round(state.peak_area, 4),
            box=state.box,
            attributes={"frames": state.frames, "zones": sorted(state.zones)},
            snapshot=state.snapshot,
        )

    def _zones_touched(self, motion: Motion, frame: Frame) -> set[str]:
        if not self._polygons:
            return set()
        boxes = motion.regions.xyxy
        # a moving thing stands where the bottom centre of its box is
        points = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)
        size = np.array([frame.width, frame.height], np.float32)
        touched = set()
        for name, polygon in self._polygons:
            outline = polygon * size
            if any(cv2.pointPolygonTest(outline, (float(x), float(y)), False) >= 0 for x, y in points):
                touched.add(name)
        return touched
