"""One camera's chain: motion gate first, then its analysers in a fixed order (objects before faces and plates)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from safecity.config import Camera, Config
from safecity.pipeline.registry import ANALYSERS, load_analyser_class
from safecity.pipeline.stage import Analyser, Overlay
from safecity.records import Event, Frame
from safecity.vision.motion import Motion, MotionGate

BACKGROUND_SECONDS = 1.0


@dataclass(slots=True)
class PipelineStats:
    frames: int = 0
    frames_with_motion: int = 0
    events: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # time spent per stage
    calls: dict[str, int] = field(default_factory=dict)

    def timed(self, stage: str, started: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started
        self.calls[stage] = self.calls.get(stage, 0) + 1

    def mean_ms(self) -> dict[str, float]:
        return {k: round(1000 * v / max(self.calls[k], 1), 2) for k, v in self.seconds.items()}


class CameraPipeline:
    def __init__(self, camera: Camera, config: Config) -> None:
        thresholds = config.thresholds_for(camera)
        self.camera = camera
        # the background forgets in about a second whatever the fps, so a person who
        # stood still and left stops counting as motion soon after
        learning_rate = 1.0 - math.exp(-1.0 / (camera.fps * BACKGROUND_SECONDS))
        self.gate = MotionGate(
            pixel_threshold=thresholds.motion_pixel, min_area=thresholds.motion_area, learning_rate=learning_rate
        )
        # registry order, whatever the config's order: analysers publish what they found
        # on the frame (``Frame.found``) for those after them, e.g. objects before plates
        names = sorted(dict.fromkeys(camera.analysers), key=list(ANALYSERS).index)
        self.analysers: list[Analyser] = [load_analyser_class(n)(camera, config) for n in names]
        self.stats = PipelineStats()
        self._motion: Motion | None = None

    def process(self, frame: Frame) -> list[Event]:
        started = time.perf_counter()
        motion = self.gate.update(frame.image)
        self.stats.timed("motion_gate", started)
        self.stats.frames += 1
        self.stats.frames_with_motion += motion.active
        self._motion = motion
        events: list[Event] = []
        for analyser in self.analysers:
            if analyser.gated and not motion.active:
                continue
            started = time.perf_counter()
            events.extend(analyser.process(frame, motion))
            self.stats.timed(analyser.name, started)
        self.stats.events += len(events)
        return events

    def overlays(self) -> list[Overlay]:
        """Motion regions and every analyser's boxes from the last frame."""
        drawn: list[Overlay] = []
        if self._motion is not None:
            drawn += [(tuple(map(float, box)), "motion") for box in self._motion.regions.xyxy]
        for analyser in self.analysers:
            drawn += analyser.overlays()
        return drawn

    def flush(self) -> list[Event]:
        events = [event for analyser in self.analysers for event in analyser.flush()]
        self.stats.events += len(events)
        return events

    def restart(self) -> None:
        """The stream was reopened: the old background no longer describes the scene."""
        self.gate.reset()
