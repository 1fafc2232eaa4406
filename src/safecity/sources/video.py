"""Video in: files, RTSP and HTTP streams decoded with PyAV, sampled to the analysis fps.

Only the sampled frames are converted to arrays (the costly step), so a 25 fps camera
analysed at 5 fps pays for one conversion in five. A file can be played as a camera:
paced in real time and looped, which is how the demo and the tests simulate CCTV.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import av

from safecity.records import Frame


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message is meant for the operator."""


def is_stream(url: str) -> bool:
    return url.split("://", 1)[0].lower() in {"rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt"}


def _file_path(url: str) -> Path:
    return Path(url.removeprefix("file://"))


def open_options(url: str, timeout_seconds: float) -> dict[str, str]:
    """FFmpeg options that make network sources fail fast instead of hanging."""
    scheme = url.split("://", 1)[0].lower()
    microseconds = str(int(timeout_seconds * 1_000_000))
    if scheme in {"rtsp", "rtsps"}:
        # the SDP already describes the stream: probing one second (not five) is plenty
        return {"rtsp_transport": "tcp", "timeout": microseconds, "analyzeduration": "1000000"}
    if scheme in {"http", "https"}:
        return {"rw_timeout": microseconds, "reconnect": "0"}
    return {}


@dataclass(slots=True)
class StreamInfo:
    width: int
    height: int
    fps: float | None
    duration: float | None  # seconds; None for live streams
    start_ts: float  # epoch seconds of pts 0


def _creation_time(container: av.container.InputContainer, path: Path | None) -> float:
    """When a file was recorded: its metadata if present, else its modification time.

    Deterministic, so analysing the same file twice yields the same event keys.
    """
    stamp = (container.metadata or {}).get("creation_time")
    if stamp:
        try:
            parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            if parsed.year > 1970:
                return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
        except ValueError:
            pass
    if path is not None:
        return os.stat(path).st_mtime
    return time.time()


class VideoSource:
    """One pass over a video source, yielding frames at ``fps``.

    ``realtime`` paces a file to its own clock (for files played as cameras);
    live streams are paced by the sender. Time stamps are wall-clock for live streams
    and when ``wall_clock`` is set (a looping demo camera shows "now"); a recording
    is dated ``recorded start + pts``, so processing it again, after a crash say,
    yields the same times and so the same event keys.
    """

    def __init__(
        self,
        camera: str,
        url: str,
        fps: float,
        *,
        realtime: bool = False,
        wall_clock: bool = False,
        open_timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.camera = camera
        self.url = url
        self.fps = fps
        self.realtime = realtime
        self.wall_clock = wall_clock
        self.open_timeout = open_timeout
        self.live = is_stream(url)
        self._sleep = sleep
        self.info: StreamInfo | None = None

    def _open(self) -> av.container.InputContainer:
        path = None if self.live else _file_path(self.url)
        if path is not None and not path.is_file():
            raise SourceError(f"{self.camera}: video file not found: {path}")
        try:
            return av.open(
                str(path) if path is not None else self.url,
                options=open_options(self.url, self.open_timeout),
                timeout=(self.open_timeout, self.open_timeout) if self.live else None,
            )
        except av.error.FFmpegError as error:
            raise SourceError(f"{self.camera}: cannot open {self.url}: {_describe(error)}") from None

    def frames(self, start_index: int = 0) -> Iterator[Frame]:
        container = self._open()
        try:
            yield from self._decode(container, start_index)
        finally:
            container.close()

    def _decode(self, container: av.container.InputContainer, index: int) -> Iterator[Frame]:
        if not container.streams.video:
            raise SourceError(f"{self.camera}: {self.url} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate) if stream.average_rate else None
        duration = None
        if not self.live:
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
        opened_at = time.time()
        start_ts = opened_at if (self.live or self.wall_clock) else _creation_time(container, _file_path(self.url))
        self.info = StreamInfo(stream.codec_context.width, stream.codec_context.height, rate, duration, start_ts)

        period = 1.0 / self.fps
        next_pts = 0.0
        first_pts: float | None = None
        last_pts = 0.0
        decoded = 0
        try:
            for picture in container.decode(stream):
                decoded += 1
                if picture.time is not None:
                    raw = float(picture.time)
                else:
                    raw = decoded / (rate or self.fps)
                if first_pts is None:
                    first_pts = raw
                pts = raw - first_pts
                last_pts = pts
                if pts + 1e-6 < next_pts:
                    continue
                next_pts = max(next_pts + period, pts + period / 2)
                if self.realtime and not self.live:
                    delay = opened_at + pts - time.time()
                    if delay > 0:
                        self._sleep(delay)
                ts = time.time() if self.live else start_ts + pts
                image = picture.to_ndarray(format="bgr24")
                yield Frame(camera=self.camera, image=image, ts=ts, pts=pts, index=index)
                index += 1
        except av.error.FFmpegError as error:
            raise SourceError(f"{self.camera}: {self.url} broke at {last_pts:.1f} s: {_describe(error)}") from None
        if decoded == 0:
            raise SourceError(f"{self.camera}: {self.url} holds no decodable video frame")
        if duration and last_pts < duration - max(1.0, 0.02 * duration):
            raise SourceError(
                f"{self.camera}: {self.url} ends at {last_pts:.1f} s of its declared {duration:.1f} s: "
                "the file is truncated or damaged"
            )
        if self.live:
            raise SourceError(f"{self.camera}: stream {self.url} ended")


def _describe(error: av.error.FFmpegError) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return text.strip().rstrip(".")
