import threading
import time

from safecity.sources.buffer import LatestFrames


def test_newest_frames_win_and_drops_are_counted():
    buffer: LatestFrames[int] = LatestFrames(size=2)
    for i in range(5):
        buffer.put(i)
    assert buffer.dropped == 3 and len(buffer) == 2
    assert [buffer.get(0.01), buffer.get(0.01), buffer.get(0.01)] == [3, 4, None]


def test_get_waits_for_a_frame_and_close_ends_the_stream():
    buffer: LatestFrames[str] = LatestFrames()
    threading.Timer(0.1, buffer.put, args=("frame",)).start()
    started = time.monotonic()
    assert buffer.get(timeout=2) == "frame" and time.monotonic() - started < 1.5
    buffer.put("last")
    buffer.close()
    assert not buffer.closed  # still holds a frame
    assert buffer.get(0.01) == "last" and buffer.closed and buffer.get(5) is None
