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
