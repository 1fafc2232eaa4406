import time

from safecity.config import parse_config
from safecity.engines.local import LocalEngine
from safecity.events.store import EventQuery, EventStore


def wait_for(condition, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def test_a_failing_camera_never_takes_the_others_down(short_clip, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    config = parse_config(
        {
            "thresholds": {"event_min_seconds": 0.5},
            "cameras": [
                {"name": "dead-rtsp", "source": "rtsp://127.0.0.1:9/none",
                 "reconnect": {"initial_seconds": 0.2, "max_seconds": 0.4, "open_timeout_seconds": 1}},
                {"name": "corrupt", "source": str(broken), "reconnect": {"initial_seconds": 0.2, "max_seconds": 0.4}},
                {"name": "good", "source": str(short_clip), "fps": 5},
            ],
        }
    )
    store = EventStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    engine = LocalEngine(config, store)
    engine.start()
    try:
        assert wait_for(lambda: engine.status["good"].state == "finished", timeout=30)
        assert wait_for(lambda: engine.status["dead-rtsp"].errors >= 2, timeout=10)
    finally:
        engine.stop()
    good = engine.status["good"]
    assert good.frames >= 18 and good.errors == 0 and good.events >= 1
    rows, total = store.search(EventQuery(camera="good"))
    assert total == good.events and rows[0].end_time is not None
    for name in ("dead-rtsp", "corrupt"):
        status = engine.status[name]
        assert status.frames == 0 and status.errors >= 2 and status.reconnects >= 2
        assert name in status.last_error
        assert status.state == "stopped"
    assert "cannot open" in engine.status["corrupt"].last_error
    store.close()


def test_looping_file_camera_keeps_playing_in_real_time(short_clip, tmp_path):
    config = parse_config({"cameras": [{"name": "loop", "source": str(short_clip), "fps": 10, "loop": True}]})
    store = EventStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    engine = LocalEngine(config, store)
    started = time.monotonic()
    engine.start()
    try:
        assert wait_for(lambda: engine.status["loop"].frames >= 60, timeout=20)  # more than one 4 s pass
    finally:
        engine.stop()
    elapsed = time.monotonic() - started
    status = engine.status["loop"]
    assert elapsed >= 5.0  # paced: 60 frames at 10 fps take about 6 s, not the 0.2 s decoding takes
    assert status.errors == 0 and 5 <= status.fps <= 15
    store.close()
