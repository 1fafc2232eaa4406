"""RTSP cameras against a real gst-rtsp-server on loopback."""

import threading
import time

import pytest

from safecity.config import parse_config
from safecity.sources.camera import CameraFeed
from safecity.sources.video import SourceError, VideoSource
from tests.support.rtsp import rtsp_available, serve_rtsp


@pytest.fixture(scope="module", autouse=True)
def gstreamer():
    if not rtsp_available():
        pytest.fail("gst-rtsp-server is not installed: run .ci/run (or apt-get install the packages it lists)")


def test_rtsp_stream_is_decoded_at_the_analysis_fps(car_clip):
    with serve_rtsp({"cam1": car_clip}, gop=12) as base:
        source = VideoSource("gate", f"{base}/cam1", fps=5, open_timeout=5)
        frames = []
        for frame in source.frames():
            frames.append(frame)
            if len(frames) == 15:
                break
    assert source.live and source.info.width == 768 and source.info.height == 432
    assert all(f.image.shape == (432, 768, 3) for f in frames)
    pts = [f.pts for f in frames]
    assert all(0.15 <= b - a <= 0.25 for a, b in zip(pts, pts[1:]))
    # live frames carry wall-clock time (the first ones may arrive in a burst)
    assert all(a <= b for a, b in zip([f.ts for f in frames], [f.ts for f in frames][1:]))
    assert abs(frames[-1].ts - time.time()) < 2


def test_wrong_mount_is_a_clear_error(car_clip):
    with serve_rtsp({"cam1": car_clip}) as base:
        with pytest.raises(SourceError, match="gate: cannot open rtsp://.*/nope"):
            list(VideoSource("gate", f"{base}/nope", fps=5, open_timeout=3).frames())


def test_lost_stream_reconnects_with_backoff_and_resumes(car_clip):
    with serve_rtsp({"cam1": car_clip}, gop=12) as base:
        port = int(base.rsplit(":", 1)[1])
        camera = parse_config(
            {"cameras": [{"name": "gate", "source": f"{base}/cam1", "fps": 5,
                          "reconnect": {"initial_seconds": 0.5, "max_seconds": 2, "open_timeout_seconds": 3}}]}
        ).cameras[0]
        stop = threading.Event()
        feed = CameraFeed(camera, stop)
        received: list[float] = []

        def consume():
            for frame in feed.frames():
                received.append(time.monotonic())

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        deadline = time.monotonic() + 20
        while len(received) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(received) >= 5, feed.status
    # the server is gone: the feed notices, backs off and keeps trying
    lost_at = time.monotonic()
    time.sleep(3)
    assert feed.status.state in {"reconnecting", "connecting"}
    assert feed.status.reconnects >= 2 and feed.status.errors >= 1
    before = len(received)
    with serve_rtsp({"cam1": car_clip}, port=port, gop=12):
        deadline = time.monotonic() + 20
        while len(received) < before + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
    consumer.join(10)
    assert len(received) >= before + 5, feed.status
    assert received[before] - lost_at > 3  # resumed only after the server came back
    assert feed.status.state == "stopped"
