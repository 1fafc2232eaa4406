"""Scale-out on Ray: camera groups run as actors that Ray restarts when they die.

Each actor runs a :class:`~safecity.engines.local.LocalEngine` for a group of cameras
on whichever node has room. Placement uses a custom resource, ``camera_slots``:
each node advertises how many camera groups it can take (``ray start --resources
'{"camera_slots": 4}'``), and a cluster with more slots than groups leaves room for
failover: when a node or worker process dies, Ray restarts the actor elsewhere.
A restarted actor reopens its cameras; events carry idempotent keys, so what it
processes again is stored once, and nothing it had not yet stored is lost.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ray

from safecity.config import Config
from safecity.engines.local import LocalEngine
from safecity.events.store import EventStore
from safecity.outputs import sinks_from_config
from safecity.sources.camera import CameraStatus

log = logging.getLogger(__name__)

SLOT = "camera_slots"


@ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)
class CameraGroup:
    """A group of cameras on one Ray worker; constructed again by Ray after a crash."""

    def __init__(self, config_json: dict[str, Any], group: int) -> None:
        import os

        self.config = Config.model_validate(config_json)
        self.group = group
        self.pid = os.getpid()
        self.store = EventStore.from_config(self.config.store)
        self.engine = LocalEngine(self.config, self.store, sinks_from_config(self.config.outputs))
        self.engine.start()

    def health(self) -> dict[str, Any]:
        return {"group": self.group, "pid": self.pid, "cameras": self.engine.health()}

    def stop(self) -> None:
        self.engine.stop()
        self.store.close()


def camera_groups(config: Config, per_group: int) -> list[Config]:
    """Split the enabled cameras into configs of at most ``per_group`` cameras each."""
    cameras = [c for c in config.cameras if c.enabled]
    return [
        config.model_copy(update={"cameras": cameras[i : i + per_group]}) for i in range(0, len(cameras), per_group)
    ]


class RayEngine:
    """Same surface as LocalEngine (start, stop, health), cameras spread over a Ray cluster."""

    def __init__(self, config: Config, address: str, cameras_per_group: int = 4, namespace: str = "safecity") -> None:
        self.config = config
        self.address = address
        self.cameras_per_group = cameras_per_group
        self.namespace = namespace
        self.cameras = [c for c in config.cameras if c.enabled]
        self.actors: list[Any] = []

    def start(self) -> None:
        if not ray.is_initialized():
            ray.init(address=self.address, namespace=self.namespace, logging_level=logging.WARNING)
        for number, group in enumerate(camera_groups(self.config, self.cameras_per_group)):
            actor = CameraGroup.options(resources={SLOT: 1}, name=f"cameras-{number}", lifetime="detached").remote(
                group.model_dump(mode="json"), number
            )
            self.actors.append(actor)

    def health(self, timeout: float = 5.0) -> list[dict]:
        """Per-camera status from every group; a group being restarted shows as restarting."""
        cameras: list[dict] = []
        for number, actor in enumerate(self.actors):
            try:
                cameras += ray.get(actor.health.remote(), timeout=timeout)["cameras"]
            except (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError):
                group = self.cameras[number * self.cameras_per_group : (number + 1) * self.cameras_per_group]
                cameras += [CameraStatus(c.name, state="restarting").as_dict() for c in group]
        return cameras

    def latest_frame(self, camera: str):
        return None  # frames stay on the worker nodes; the console shows the newest snapshot

    def group_health(self, timeout: float = 5.0) -> list[dict | None]:
        found = []
        for actor in self.actors:
            try:
                found.append(ray.get(actor.health.remote(), timeout=timeout))
            except (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError):
                found.append(None)
        return found

    def stop(self) -> None:
        for actor in self.actors:
            try:
                ray.get(actor.stop.remote(), timeout=30)
            except Exception:  # already gone: nothing to stop
                pass
            ray.kill(actor, no_restart=True)
        self.actors.clear()

    def wait_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.health()):
                return True
            time.sleep(0.5)
        return False
