"""Pipeline throughput: how many camera streams one machine sustains at the analysis fps.

N streams of the same clip run side by side, each in its own thread exactly as the
local engine runs a camera (decode every frame, sample to the analysis fps, motion
gate, every enabled analyser), but unpaced: as fast as the machine allows, for a
fixed time. A stream analysed at X frames per second keeps up with a live camera
analysed at F fps while X >= F, so the machine sustains (sum of X) / F streams.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from safecity.config import Camera, Config
from safecity.pipeline.camera import CameraPipeline
from safecity.engines.local import inference_streams
from safecity.sources.video import VideoSource
from safecity.vision.runtime import set_default_streams


def bench_pipeline(video: Path, streams: int, config: Config, analysers: list[str], fps: float, seconds: float,
                   workers: int = 1) -> dict:
    """``workers`` > 1 spreads the streams over that many processes, as ``--engine pool`` does."""
    if workers > 1:
        return _bench_processes(video, streams, config, analysers, fps, seconds, workers)
    return _bench_threads(video, streams, config, analysers, fps, seconds)


def _bench_processes(video, streams, config, analysers, fps, seconds, workers) -> dict:
    import multiprocessing as mp

    shares = [streams // workers + (1 if i < streams % workers else 0) for i in range(workers)]
    shares = [n for n in shares if n]
    cores_each = max(1, (os.cpu_count() or 1) // len(shares))
    with mp.get_context("spawn").Pool(len(shares)) as pool:
        parts = pool.starmap(_bench_threads, [(video, n, config, analysers, fps, seconds, cores_each) for n in shares])
    per_stream = [x for part in parts for x in part["fps_per_stream"]]
    total = sum(per_stream)
    stages = sorted({k for part in parts for k in part["stage_ms"]})
    cores = os.cpu_count() or 1
    return {
        **parts[0],
        "streams": streams,
        "workers": len(shares),
        "fps_per_stream": per_stream,
        "min_fps_per_stream": round(min(per_stream), 2),
        "total_fps": round(total, 2),
        "streams_sustained": round(total / fps, 2),
        "streams_sustained_per_core": round(total / fps / cores, 2),
        "keeps_up": min(per_stream) >= fps,
        "stage_ms": {k: round(sum(p["stage_ms"].get(k, 0.0) for p in parts) / len(parts), 2) for k in stages},
    }


def _bench_threads(video: Path, streams: int, config: Config, analysers: list[str], fps: float, seconds: float,
                   cores: int | None = None) -> dict:
    inference = inference_streams(streams, cores or os.cpu_count() or 1)
    set_default_streams(inference)  # as the local engine does
    cameras = [
        Camera(name=f"bench-{i}", source=str(video), fps=fps, analysers=analysers, loop=True, realtime=False)
        for i in range(streams)
    ]
    frames = [0] * streams
    stage_ms: list[dict[str, float]] = [{} for _ in range(streams)]
    errors: list[str] = []
    stop = threading.Event()

    def run(i: int) -> None:
        seconds: dict[str, float] = {}
        calls: dict[str, int] = {}
        try:
            while not stop.is_set():
                # each pass over the clip is a new stream (its times start again): a fresh
                # pipeline, so trackers don't see time run backwards; models stay shared
                pipeline = CameraPipeline(cameras[i], config)
                for frame in VideoSource(cameras[i].name, cameras[i].source, fps).frames():
                    pipeline.process(frame)
                    frames[i] += 1
                    if stop.is_set():
                        break
                pipeline.flush()
                for stage, value in pipeline.stats.seconds.items():
                    seconds[stage] = seconds.get(stage, 0.0) + value
                    calls[stage] = calls.get(stage, 0) + pipeline.stats.calls[stage]
        except Exception as error:  # report, don't hide
            errors.append(f"{cameras[i].name}: {error!r}")
        stage_ms[i] = {k: round(1000 * v / max(calls[k], 1), 2) for k, v in seconds.items()}

    # load the models once before timing (they are shared by every stream)
    CameraPipeline(cameras[0], config)
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(streams)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(60)
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError("; ".join(errors))
    per_stream = [n / elapsed for n in frames]
    total = sum(per_stream)
    cores = os.cpu_count() or 1
    stages = sorted({k for ms in stage_ms for k in ms})
    return {
        "task": "bench-pipeline",
        "video": str(video),
        "streams": streams,
        "workers": 1,
        "analysers": analysers,
        "analysis_fps": fps,
        "inference_streams": inference,
        "seconds": round(elapsed, 1),
        "cores": cores,
        "fps_per_stream": [round(x, 2) for x in per_stream],
        "min_fps_per_stream": round(min(per_stream), 2),
        "total_fps": round(total, 2),
        "streams_sustained": round(total / fps, 2),
        "streams_sustained_per_core": round(total / fps / cores, 2),
        "keeps_up": min(per_stream) >= fps,
        "stage_ms": {k: round(sum(ms.get(k, 0.0) for ms in stage_ms) / streams, 2) for k in stages},
    }


def summarise(result: dict) -> str:
    stages = ", ".join(f"{k} {v} ms" for k, v in result["stage_ms"].items())
    return (
        f"{result['streams']} streams of {Path(result['video']).name} with {', '.join(result['analysers'])}: "
        f"{result['min_fps_per_stream']}-{max(result['fps_per_stream'])} fps per stream, "
        f"{result['total_fps']} fps in all -> {result['streams_sustained']} streams at {result['analysis_fps']} fps "
        f"({result['streams_sustained_per_core']} per core of {result['cores']}); per frame: {stages}"
    )
