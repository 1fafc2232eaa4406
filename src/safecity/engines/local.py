"""The local engine: every enabled camera in its own thread on this machine.

Decoding (PyAV) and image work (OpenCV, OpenVINO) release the GIL, so threads suffice
for a handful of cameras. Each camera has a reader thread that keeps pace with its
stream and an analysis thread that takes the newest frames from a two-frame buffer
(older ones are dropped and counted when analysis falls behind). Any error stays in
its camera: it is shown in the camera's status, and the camera carries on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Sequence

from safecity.config import Camera, Config
from safecity.events.store import EventStore
from safecity.outputs import EventSink
from safecity.pipeline.camera import CameraPipeline
from safecity.pipeline.stage import Overlay
from safecity.records import Event, Frame
from safecity.sources.buffer import LatestFrames
from safecity.sources.camera import CameraFeed, CameraStatus
from safecity.vision.runtime import set_default_streams

log = logging.getLogger(__name__)

MAX_PENDING = 10_000  # events held in memory while the store is unreachable


def inference_streams(cameras: int, cores: int) -> int:
    """Streams each model gets when ``cameras`` share ``cores``: one camera runs each
    inference on every core (0: lowest latency); several run side by side, one core each."""
    return 0 if cameras <= 1 else max(1, min(cameras, cores))


class LocalEngine:
    """``cores``: the CPU cores this engine may use (default: all of the machine's); a
    process pool gives each worker its share."""

    def __init__(self, config: Config, store: EventStore, sinks: Sequence[EventSink] = (),
                 cores: int | None = None) -> None:
        self.config = config
        self.store = store
        self.sinks = list(sinks)
        self.stop_event = threading.Event()
        self.cameras = [camera for camera in config.cameras if camera.enabled]
        self.status: dict[str, CameraStatus] = {c.name: CameraStatus(c.name) for c in self.cameras}
        self._threads: list[threading.Thread] = []
        self._latest: dict[str, tuple[Frame, list[Overlay]]] = {}
        set_default_streams(inference_streams(len(self.cameras), cores or os.cpu_count() or 1))

    def start(self) -> None:
        for camera in self.cameras:
            thread = threading.Thread(target=self._run_camera, args=(camera,), name=f"camera-{camera.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for sink in self.sinks:
            sink.close()

    def health(self) -> list[dict]:
        return [status.as_dict() for status in self.status.values()]

    def latest_frame(self, camera: str) -> tuple[Frame, list[Overlay]] | None:
        """The newest analysed frame of a camera and what the analysers drew on it."""
        return self._latest.get(camera)

    def _run_camera(self, camera: Camera) -> None:
        """Reader thread decodes into a small buffer; this thread analyses from it."""
        status = self.status[camera.name]
        buffer: LatestFrames[Frame] = LatestFrames(size=2)
        reopened = threading.Event()
        feed = CameraFeed(camera, self.stop_event, status, on_reopen=reopened.set)
        reader = threading.Thread(target=self._read, args=(feed, buffer), name=f"read-{camera.name}", daemon=True)
        reader.start()
        pending: list[Event] = []
        pipeline = CameraPipeline(camera, self.config)
        while not buffer.closed:
            frame = buffer.get(timeout=0.5)
            status.dropped = buffer.dropped
            status.queue_depth = len(buffer)
            if frame is None:
                continue
            if reopened.is_set():
                reopened.clear()
                pipeline.restart()
            try:
                pending.extend(pipeline.process(frame))
            except Exception as error:  # an analyser bug must not end the camera for good
                log.exception("camera %s failed", camera.name)
                status.failed(f"{camera.name}: pipeline error: {error!r}")
                pipeline = CameraPipeline(camera, self.config)
                continue
            status.analyser_ms = pipeline.stats.mean_ms()
            self._latest[camera.name] = (frame, pipeline.overlays())
            if pending:
                pending = self._save(pending, status)
        reader.join(5)
        pending.extend(pipeline.flush())
        self._save(pending, status)

    @staticmethod
    def _read(feed: CameraFeed, buffer: LatestFrames[Frame]) -> None:
        try:
            for frame in feed.frames():
                buffer.put(frame)
        finally:
            buffer.close()

    def _save(self, events: list[Event], status: CameraStatus) -> list[Event]:
        """Write events; on failure keep them for the next attempt (bounded)."""
        try:
            status.events += self.store.add_events(events)
        except Exception as error:
            status.failed(f"{status.name}: store unavailable, {len(events)} events held: {error!r}")
            return events[-MAX_PENDING:]
        for sink in self.sinks:  # only what the store kept goes out
            try:
                sink.publish(events)
            except Exception as error:
                status.failed(f"{status.name}: output {type(sink).__name__} failed: {error!r}")
        return []
