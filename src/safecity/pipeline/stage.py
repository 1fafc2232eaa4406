"""The one interface every analyser implements.

A camera pipeline calls :meth:`Analyser.process` once per sampled frame, after the
motion gate. Gated analysers (the default: anything that runs a model) are skipped on
frames without motion; ungated ones see every frame, which they need when they keep
time themselves (closing an event after a quiet spell, counting dwell time).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from safecity.config import Camera, Config
from safecity.records import Event, Frame
from safecity.vision.motion import Motion


Overlay = tuple[tuple[float, float, float, float], str]
"""A box (x1, y1, x2, y2 in pixels) and its caption, drawn on the live camera tile."""


class Analyser(ABC):
    name: ClassVar[str]
    gated: ClassVar[bool] = True

    def __init__(self, camera: Camera, config: Config) -> None:
        self.camera = camera
        self.config = config

    @abstractmethod
    def process(self, frame: Frame, motion: Motion) -> list[Event]:
        """Look at one frame; return the events it completes (often none)."""

    def flush(self) -> list[Event]:
        """The stream ended: return any event still open."""
        return []

    def overlays(self) -> list[Overlay]:
        """What this analyser saw on the last frame, for the live view."""
        return []
