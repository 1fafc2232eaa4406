import numpy as np
import pytest

from safecity.sources.video import SourceError, VideoSource
from tests.support.clips import cut_clip, truncate


def test_file_is_sampled_at_the_analysis_fps(car_clip):
    source = VideoSource("parking", str(car_clip), fps=5)
    frames = list(source.frames())
    info = source.info
    assert (info.width, info.height) == (768, 432)
    assert info.fps == pytest.approx(12.5)
    assert len(frames) == pytest.approx(info.duration * 5, abs=2)
    gaps = np.diff([f.pts for f in frames])
    assert gaps.min() >= 0.15 and gaps.max() <= 0.25  # 12.5 fps cannot hit 0.2 s exactly
    assert [f.index for f in frames] == list(range(len(frames)))
    first = frames[0]
    assert first.image.shape == (432, 768, 3) and first.image.dtype == np.uint8
    assert first.ts == pytest.approx(info.start_ts) and frames[-1].ts > first.ts


def test_file_time_stamps_are_reproducible(short_clip):
    a = [f.ts for f in VideoSource("c", str(short_clip), fps=2).frames()]
    b = [f.ts for f in VideoSource("c", str(short_clip), fps=2).frames()]
    assert a == b


def test_fps_above_the_stream_rate_gives_every_frame(short_clip):
    frames = list(VideoSource("c", str(short_clip), fps=60).frames())
    assert len(frames) == pytest.approx(4 * 12.5, abs=1)


def test_realtime_playback_is_paced(short_clip):
    slept = []
    list(VideoSource("c", str(short_clip), fps=5, realtime=True, sleep=slept.append).frames())
    assert sum(slept) > 2.0  # a 4 s clip decodes in well under a second; pacing waits the rest


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        list(VideoSource("c", str(tmp_path / "nope.mp4"), 5).frames())


def test_garbage_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError, match="cannot open"):
        list(VideoSource("c", str(bad), 5).frames())


def test_truncated_file_without_index(car_clip, tmp_path):
    with pytest.raises(SourceError) as caught:
        list(VideoSource("c", str(truncate(car_clip, tmp_path / "t.mp4", 0.5)), 5).frames())
    assert "c:" in str(caught.value)


def test_truncated_file_with_index_first_is_reported(car_clip, tmp_path):
    whole = cut_clip(car_clip, tmp_path / "fast.mp4", 30.0, faststart=True)
    cut = truncate(whole, tmp_path / "cut.mp4", 0.5)
    frames = []
    with pytest.raises(SourceError, match="truncated or damaged"):
        for frame in VideoSource("c", str(cut), 5).frames():
            frames.append(frame)
    assert len(frames) > 20  # what could be decoded was delivered before the error
