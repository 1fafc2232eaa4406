"""Offline analysis of one video file: the engine behind ``safecity analyze``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from safecity.config import Camera, Config
from safecity.events.store import EventStore
from safecity.pipeline.camera import CameraPipeline, PipelineStats
from safecity.records import Event
from safecity.sources.video import StreamInfo, VideoSource


@dataclass
class AnalysisResult:
    camera: str
    stats: PipelineStats
    stored: int
    events: list[Event] = field(default_factory=list)
    info: StreamInfo | None = None


def analyze_file(
    camera: Camera,
    config: Config,
    store: EventStore | None,
    on_frame: Callable[[float, StreamInfo | None], None] = lambda pts, info: None,
) -> AnalysisResult:
    """Run one camera's pipeline over its file as fast as it decodes.

    Events are stored as they complete, so a file that breaks half-way keeps the
    events found before the break; the :class:`SourceError` still propagates.
    """
    pipeline = CameraPipeline(camera, config)
    source = VideoSource(camera.name, camera.source, camera.fps, realtime=False)
    result = AnalysisResult(camera=camera.name, stats=pipeline.stats, stored=0)

    def keep(events: list[Event]) -> None:
        if not events:
            return
        result.events.extend(events)
        if store is not None:
            result.stored += store.add_events(events)

    try:
        for frame in source.frames():
            keep(pipeline.process(frame))
            on_frame(frame.pts, source.info)
    finally:
        result.info = source.info
        keep(pipeline.flush())
        result.events = list({event.key: event for event in result.events}.values())  # latest version of each
    return result
