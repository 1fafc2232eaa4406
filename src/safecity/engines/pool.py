"""Many cameras on one machine: camera groups in a pool of processes, one per core.

Threads share one interpreter lock, so beyond a few cameras the Python parts of the
analysis (tracking, voting, drawing) stop scaling. The pool splits the enabled
cameras into as many groups as there are worker processes (default: the number of
cores) and runs each group as a :class:`LocalEngine` in its own process; inside a
process, cameras share each model session (one NanoDet, one SFace, …). Every worker
writes to the same store (SQLite WAL serialises writers; PostgreSQL handles them)
and reports its cameras' health once a second over its own pipe: a pipe per worker,
not one shared queue, so a worker killed mid-write cannot leave a lock held that
would silence the others. A worker that dies is started again with its cameras.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from safecity.config import Config
from safecity.sources.camera import CameraStatus

log = logging.getLogger(__name__)


def _worker(config_json: dict[str, Any], group: int, channel: Connection, cores: int = 1) -> None:
    import signal

    from safecity.engines.local import LocalEngine
    from safecity.events.store import EventStore
    from safecity.outputs import sinks_from_config

    # SIGTERM from the parent means "stop your cameras cleanly". A process-shared Event
    # would be simpler, but a worker killed while waiting on it blocks every later set()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    config = Config.model_validate(config_json)
    store = EventStore.from_config(config.store)
    engine = LocalEngine(config, store, sinks_from_config(config.outputs), cores=cores)
    engine.start()
    try:
        while not stop.is_set():
            channel.send((os.getpid(), engine.health()))
            stop.wait(1.0)
    except (BrokenPipeError, EOFError):
        pass  # the parent is gone: stop
    finally:
        engine.stop()
        store.close()
        channel.close()


def split(config: Config, groups: int) -> list[Config]:
    cameras = [c for c in config.cameras if c.enabled]
    groups = max(1, min(groups, len(cameras)))
    return [config.model_copy(update={"cameras": cameras[i::groups]}) for i in range(groups)] if cameras else []


class ProcessPoolEngine:
    """Same surface as LocalEngine: start, stop, health, cameras, latest_frame."""

    def __init__(self, config: Config, workers: int | None = None) -> None:
        self.config = config
        self.cameras = [c for c in config.cameras if c.enabled]
        self.groups = split(config, workers or os.cpu_count() or 1)
        self.cores_per_worker = max(1, (os.cpu_count() or 1) // max(1, len(self.groups)))
        self._context = mp.get_context("spawn")  # fresh interpreters: no forked model or thread state
        self._stop = threading.Event()
        self._processes: dict[int, Any] = {}
        self._channels: dict[int, Connection] = {}
        self._health: dict[int, tuple[int, list[dict]]] = {}
        self._watcher = threading.Thread(target=self._watch, name="pool-watch", daemon=True)
        self._stopping = False
        self.restarts = 0

    def _spawn(self, group: int) -> None:
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker, args=(self.groups[group].model_dump(mode="json"), group, send, self.cores_per_worker),
            name=f"safecity-cameras-{group}", daemon=True,
        )
        process.start()
        send.close()  # the child holds the only sending end: its death closes the pipe
        self._processes[group], self._channels[group] = process, receive

    def start(self) -> None:
        for group in range(len(self.groups)):
            self._spawn(group)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping:
            by_channel = {channel: group for group, channel in self._channels.items()}
            for channel in wait(list(by_channel), timeout=0.5):
                group = by_channel[channel]
                try:
                    self._health[group] = channel.recv()
                except (EOFError, OSError):
                    channel.close()
                    self._channels.pop(group, None)
            for group, process in list(self._processes.items()):
                if not self._stop.is_set() and not process.is_alive():
                    log.warning("camera worker %s (pid %s) died; starting it again", group, process.pid)
                    process.join(0)
                    self.restarts += 1
                    self._health.pop(group, None)
                    old = self._channels.pop(group, None)
                    if old is not None:
                        old.close()
                    self._spawn(group)

    def health(self) -> list[dict]:
        cameras: list[dict] = []
        for group, config in enumerate(self.groups):
            reported = self._health.get(group)
            if reported is None:
                cameras += [CameraStatus(c.name, state="starting").as_dict() for c in config.cameras]
            else:
                cameras += [{**c, "worker_pid": reported[0]} for c in reported[1]]
        return cameras

    def latest_frame(self, camera: str):
        return None  # frames stay in their worker process; the console shows the newest snapshot

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()  # no more restarts; the watcher keeps reading until the workers exit
        for process in list(self._processes.values()):
            process.terminate()  # SIGTERM: the worker stops its cameras and flushes their events
        deadline = time.monotonic() + timeout
        for process in list(self._processes.values()):
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
        self._stopping = True
        self._watcher.join(2)
        for channel in self._channels.values():
            channel.close()
