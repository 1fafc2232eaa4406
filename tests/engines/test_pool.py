import os
import signal
import time

import pytest

from safecity.config import parse_config
from safecity.engines.pool import ProcessPoolEngine, split
from safecity.events.store import EventQuery, EventStore


def test_cameras_are_split_over_the_workers():
    config = parse_config({"cameras": [{"name": f"c{i}", "source": "x.mp4"} for i in range(5)]})
    groups = split(config, 2)
    assert [[c.name for c in g.cameras] for g in groups] == [["c0", "c2", "c4"], ["c1", "c3"]]
    assert len(split(config, 16)) == 5


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.slow
def test_pool_runs_cameras_in_processes_and_restarts_a_dead_worker(short_clip, tmp_path):
    url = f"sqlite:///{tmp_path / 'var' / 'safecity.db'}"
    EventStore(url).close()  # migrate once, before the workers race to
    config = parse_config(
        {
            "store": {"url": url},
            "thresholds": {"event_min_seconds": 0.5},
            "cameras": [{"name": f"cam{i}", "source": str(short_clip), "loop": True} for i in range(4)],
        }
    )
    engine = ProcessPoolEngine(config, workers=2)
    engine.start()
    try:
        assert wait_until(lambda: all(c.get("frames", 0) > 5 for c in engine.health()), timeout=60)
        health = engine.health()
        pids = {c["worker_pid"] for c in health}
        assert len(health) == 4 and len(pids) == 2 and os.getpid() not in pids
        victim = health[0]["worker_pid"]
        os.kill(victim, signal.SIGKILL)
        assert wait_until(
            lambda: engine.restarts == 1 and all(c.get("frames", 0) > 0 for c in engine.health()), timeout=60
        )
        assert victim not in {c["worker_pid"] for c in engine.health()}
    finally:
        started = time.monotonic()
        engine.stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 15
    store = EventStore(url)
    cameras = {r.camera for r in store.search(EventQuery(limit=500))[0]}
    assert cameras == {"cam0", "cam1", "cam2", "cam3"}
    store.close()
