"""A camera as an endless feed: lost streams reopen with back-off, files may loop.

Errors stay inside the feed: they are counted and shown in the camera's status, and
the feed keeps trying, so one broken camera never takes the others down.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

from safecity.config import Camera
from safecity.records import Frame
from safecity.sources.video import SourceError, VideoSource

log = logging.getLogger(__name__)


@dataclass
class CameraStatus:
    """What the health endpoint shows for one camera."""

    name: str
    state: str = "starting"  # starting, connecting, running, reconnecting, finished, stopped
    frames: int = 0
    fps: float = 0.0
    lag_seconds: float = 0.0
    errors: int = 0
    reconnects: int = 0
    events: int = 0
    dropped: int = 0
    queue_depth: int = 0
    analyser_ms: dict[str, float] = field(default_factory=dict)
    last_error: str | None = None
    last_frame_at: float | None = None

    def saw(self, frame: Frame) -> None:
        now = time.time()
        if self.last_frame_at is not None:
            gap = max(now - self.last_frame_at, 1e-3)
            self.fps = 1.0 / gap if self.fps == 0 else 0.9 * self.fps + 0.1 / gap
        self.last_frame_at = now
        self.frames += 1
        self.lag_seconds = max(0.0, now - frame.ts)

    def failed(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        log.warning("%s", message)

    def as_dict(self) -> dict:
        return asdict(self)


class CameraFeed:
    def __init__(
        self,
        camera: Camera,
        stop: threading.Event,
        status: CameraStatus | None = None,
        on_reopen: Callable[[], None] = lambda: None,
    ) -> None:
        self.camera = camera
        self.stop = stop
        self.status = status or CameraStatus(camera.name)
        self.on_reopen = on_reopen

    def _source(self) -> VideoSource:
        return VideoSource(
            self.camera.name,
            self.camera.source,
            self.camera.fps,
            realtime=self.camera.realtime,
            wall_clock=self.camera.loop,
            open_timeout=self.camera.reconnect.open_timeout_seconds,
        )

    def frames(self) -> Iterator[Frame]:
        try:
            yield from self._frames()
        finally:
            if self.status.state != "finished":
                self.status.state = "stopped"

    def _frames(self) -> Iterator[Frame]:
        backoff = self.camera.reconnect
        delay = backoff.initial_seconds
        index = 0
        opened_before = False
        while not self.stop.is_set():
            if opened_before:
                self.on_reopen()
            opened_before = True
            self.status.state = "connecting"
            received = 0
            source = self._source()
            try:
                for frame in source.frames(index):
                    if received == 0:
                        self.status.state = "running"
                    received += 1
                    index = frame.index + 1
                    self.status.saw(frame)
                    yield frame
                    if self.stop.is_set():
                        return
                if not source.live and not self.camera.loop:
                    self.status.state = "finished"
                    return
                if not source.live:
                    continue  # a looping file: start again at once
            except SourceError as error:
                self.status.failed(str(error))
            if received:
                delay = backoff.initial_seconds  # it worked for a while: start backing off afresh
            self.status.state = "reconnecting"
            self.status.reconnects += 1
            wait = min(delay, backoff.max_seconds) * random.uniform(0.8, 1.2)
            if self.stop.wait(wait):
                return
            delay = min(delay * 2, backoff.max_seconds)
