"""A real two-node Ray cluster on loopback: head on 127.0.0.2, worker on 127.0.0.3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.support.mosquitto import free_port

RAY = str(Path(sys.executable).with_name("ray"))


def _ray(*args: str, env: dict) -> None:
    result = subprocess.run([RAY, *args], capture_output=True, text=True, timeout=180, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


@contextmanager
def ray_cluster(tmp: Path, slots: int = 2) -> Iterator[str]:
    """``tmp`` must be a short path: Ray's unix sockets live under it (107-byte limit)."""
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": str(tmp)}
    common = ["--disable-usage-stats", f"--temp-dir={tmp}"]
    try:
        _ray("start", "--head", "--node-ip-address=127.0.0.2", f"--port={port}", "--num-cpus=1",
             "--include-dashboard=false", "--resources", json.dumps({"camera_slots": 0}), *common, env=env)
        _ray("start", f"--address=127.0.0.2:{port}", "--node-ip-address=127.0.0.3", "--num-cpus=1",
             "--resources", json.dumps({"camera_slots": slots}), *common, env=env)
        yield f"127.0.0.2:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120, env=env)
