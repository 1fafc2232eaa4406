"""One camera's chain: motion gate first, then its analysers, in configured order."""

from __future__ import annotations

import math
from dataclasses import dataclass

from safecity.config import Camera, Config
from safecity.pipeline.registry import load_analyser_class
from safecity.pipeline.stage import Analyser
from safecity.records import Event, Frame
from safecity.vision.motion import MotionGate

BACKGROUND_SECONDS = 1.0


@dataclass(slots=True)
class PipelineStats:
    frames: int = 0
    frames_with_motion: int = 0
    events: int = 0


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
        self.analysers: list[Analyser] = [load_analyser_class(n)(camera, config) for n in camera.analysers]
        self.stats = PipelineStats()

    def process(self, frame: Frame) -> list[Event]:
        motion = self.gate.update(frame.image)
        self.stats.frames += 1
        self.stats.frames_with_motion += motion.active
        events: list[Event] = []
        for analyser in self.analysers:
            if analyser.gated and not motion.active:
                continue
            events.extend(analyser.process(frame, motion))
        self.stats.events += len(events)
        return events

    def flush(self) -> list[Event]:
        events = [event for analyser in self.analysers for event in analyser.flush()]
        self.stats.events += len(events)
        return events

    def restart(self) -> None:
        """The stream was reopened: the old background no longer describes the scene."""
        self.gate.reset()
