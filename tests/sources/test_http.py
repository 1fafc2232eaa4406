"""An HTTP camera: a real HTTP server on loopback serving an MP4 as a stream."""

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from safecity.sources.video import SourceError, VideoSource
from tests.support.clips import cut_clip


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def http_root(tmp_path, car_clip):
    cut_clip(car_clip, tmp_path / "cam.mp4", 3.0, faststart=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_stream_is_decoded_and_its_end_reported(http_root):
    source = VideoSource("web", f"{http_root}/cam.mp4", fps=5)
    frames = []
    with pytest.raises(SourceError, match="ended"):
        for frame in source.frames():
            frames.append(frame)
    assert source.live and 13 <= len(frames) <= 17  # 3 s at 5 fps
    assert frames[0].image.shape == (432, 768, 3)


def test_http_not_found_is_a_clear_error(http_root):
    with pytest.raises(SourceError, match="web: cannot open .*404|web: cannot open .*Not Found"):
        list(VideoSource("web", f"{http_root}/missing.mp4", fps=5, open_timeout=3).frames())
