"""Make small test videos from the real shared clips (cut, damaged, re-muxed)."""

from __future__ import annotations

from pathlib import Path

import av


def cut_clip(source: Path, target: Path, seconds: float, faststart: bool = False) -> Path:
    """Copy the first ``seconds`` of ``source`` without re-encoding."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(source)) as src, av.open(str(target), "w", options=options) as dst:
        in_stream = src.streams.video[0]
        out_stream = dst.add_stream_from_template(in_stream)
        for packet in src.demux(in_stream):
            if packet.dts is None:
                continue
            if packet.pts is not None and float(packet.pts * in_stream.time_base) >= seconds:
                break
            packet.stream = out_stream
            dst.mux(packet)
    return target


def truncate(source: Path, target: Path, keep: float) -> Path:
    """Keep only the first ``keep`` share of the file's bytes, as a failed copy would."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def restyle_clip(source: Path, target: Path, seconds: float, gain: float = 0.8, gamma: float = 1.3,
                 mirror: bool = True) -> Path:
    """Re-encode the first ``seconds`` as if seen by another camera: exposure, gamma, mirrored."""
    import numpy as np

    table = (np.clip(((np.arange(256) / 255.0) ** gamma) * 255 * gain, 0, 255)).astype(np.uint8)
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        in_stream = src.streams.video[0]
        out = dst.add_stream("libx264", rate=in_stream.average_rate)
        out.width, out.height, out.pix_fmt = in_stream.width, in_stream.height, "yuv420p"
        for frame in src.decode(in_stream):
            if frame.time is not None and frame.time >= seconds:
                break
            image = table[frame.to_ndarray(format="bgr24")]
            if mirror:
                image = image[:, ::-1]
            new = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            for packet in out.encode(new):
                dst.mux(packet)
        for packet in out.encode():
            dst.mux(packet)
    return target


def slideshow(images: list[Path], target: Path, size: tuple[int, int] = (768, 432), fill: float = 0.7,
              seconds_each: float = 1.5, fps: int = 10) -> Path:
    """A clip of still photos, each drifting slowly over a grey background (so there is motion).

    Each photo is scaled to ``fill`` of the frame height (or width, whichever binds).
    """
    import cv2
    import numpy as np

    width, height = size
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        steps = int(seconds_each * fps)
        for path in images:
            photo = cv2.imread(str(path))
            scale = min(fill * height / photo.shape[0], (width - 3 * steps - 20) / photo.shape[1])
            photo = cv2.resize(photo, (int(photo.shape[1] * scale), int(photo.shape[0] * scale)))
            y = (height - photo.shape[0]) // 2
            for step in range(steps):
                frame = np.full((height, width, 3), 90, np.uint8)
                x = 10 + 3 * step
                frame[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return target
