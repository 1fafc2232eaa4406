"""The local engine: every enabled camera in its own thread on this machine.

Decoding (PyAV) and image work (OpenCV) release the GIL, so threads suffice for a
handful of cameras. Each thread owns its camera's feed and pipeline; any error stays
inside that thread, is shown in the camera's status, and the camera starts over.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Sequence

from safecity.config import Camera, Config
from safecity.events.store import EventStore
from safecity.outputs import EventSink
from safecity.pipeline.camera import CameraPipeline
from safecity.records import Event
from safecity.sources.camera import CameraFeed, CameraStatus

log = logging.getLogger(__name__)

MAX_PENDING = 10_000  # events held in memory while the store is unreachable


class LocalEngine:
    def __init__(self, config: Config, store: EventStore, sinks: Sequence[EventSink] = ()) -> None:
        self.config = config
        self.store = store
        self.sinks = list(sinks)
        self.stop_event = threading.Event()
        self.cameras = [camera for camera in config.cameras if camera.enabled]
        self.status: dict[str, CameraStatus] = {c.name: CameraStatus(c.name) for c in self.cameras}
        self._threads: list[threading.Thread] = []

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

    def _run_camera(self, camera: Camera) -> None:
        status = self.status[camera.name]
        pending: list[Event] = []
        while not self.stop_event.is_set():
            pipeline = CameraPipeline(camera, self.config)
            feed = CameraFeed(camera, self.stop_event, status, on_reopen=pipeline.restart)
            try:
                for frame in feed.frames():
                    pending.extend(pipeline.process(frame))
                    if pending:
                        pending = self._save(pending, status)
                pending.extend(pipeline.flush())
                pending = self._save(pending, status)
                return
            except Exception as error:  # an analyser bug must not end the camera for good
                log.exception("camera %s failed", camera.name)
                status.failed(f"{camera.name}: pipeline error: {error!r}")
                if self.stop_event.wait(camera.reconnect.initial_seconds):
                    return

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
