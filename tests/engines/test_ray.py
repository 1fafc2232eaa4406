"""Ray engine on a real local cluster: a killed worker's cameras resume, no event lost or doubled."""

import os
import signal
import time
from pathlib import Path

import pytest

from safecity.config import parse_config
from safecity.engines.offline import analyze_file
from safecity.events.store import EventQuery, EventStore
from tests.support.ray_cluster import ray_cluster

ray = pytest.importorskip("ray")


@pytest.mark.slow
def test_killed_worker_resumes_without_losing_or_doubling_events(car_clip, tmp_path):
    store_url = f"sqlite:///{tmp_path / 'var' / 'safecity.db'}"
    config = parse_config(
        {
            "store": {"url": store_url},
            "thresholds": {"event_gap_seconds": 1.0, "event_min_seconds": 0.5},
            "cameras": [{"name": "lot", "source": str(car_clip), "fps": 5, "realtime": True}],
        }
    )
    # what an uninterrupted pass over the same recording stores
    reference = EventStore(f"sqlite:///{tmp_path / 'reference.db'}")
    analyze_file(config.cameras[0], config, reference)
    expected = {(r.key, r.end_time) for r in reference.search(EventQuery(limit=500))[0]}
    assert expected

    from safecity.engines.ray_engine import RayEngine

    import tempfile

    with tempfile.TemporaryDirectory(prefix="ray-", dir="/tmp") as short, ray_cluster(Path(short)) as address:
        engine = RayEngine(config, address, cameras_per_group=1)
        engine.start()
        try:
            assert engine.wait_until(lambda h: h and h[0].get("frames", 0) >= 15, timeout=90)
            (before,) = engine.group_health()
            os.kill(before["pid"], signal.SIGKILL)  # the worker process dies mid-stream
            killed_at = time.monotonic()
            assert engine.wait_until(
                lambda h: h and h[0].get("frames", 0) >= 1 and h[0].get("state") == "running", timeout=60
            )
            resumed_after = time.monotonic() - killed_at
            (after,) = engine.group_health()
            assert after["pid"] != before["pid"]
            assert resumed_after < 30, resumed_after
            print(f"cameras resumed {resumed_after:.1f} s after the worker was killed")
            assert engine.wait_until(lambda h: h and h[0].get("state") == "finished", timeout=90)
        finally:
            engine.stop()
            ray.shutdown()

    store = EventStore(store_url)
    stored = {(r.key, r.end_time) for r in store.search(EventQuery(limit=500))[0]}
    assert stored == expected  # every event once, and each one complete
