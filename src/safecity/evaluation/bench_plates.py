"""Plate finding and reading cost per frame: ``safecity bench plates``.

Each image (a folder of scenes, or frames of a clip) is fitted into a 1280x720 frame
(scaled to fit, padded with black, so no plate is cut off or distorted) and run through
:meth:`~safecity.plates.read.PlateRecognizer.recognise`'s two steps, timed apart: the
detector over the whole frame (with its second look at doubtful candidates), then reading
every plate it found. A first, untimed pass
over the frames warms up (OpenVINO compiles each new input shape once, as a live
camera does in its first minutes). Nothing is skipped: this is the
cost of a frame where the whole frame must be searched, the case the issue measures; a
live camera with the ``objects`` analyser searches only moving vehicles and costs less.

``workers`` frames may be in flight at once, as several cameras' frames are on a live
system (see :func:`bench_plates`).

The reader is told the camera's country, as a live camera learns it from its own
readings after a few dozen plates (:class:`~safecity.plates.grammar.RegionPrior`): its
formats are preferred, and a camera far from China skips the Chinese-plate model.
``country`` sets it; without it, the country is learned in the untimed first pass, from
the readings alone, as a live camera does (``region`` in the result says what was
learned; none if the readings did not settle on one).

This machine's speed drifts (a shared 2-core VM: ±15 % from minute to minute), so
``passes`` times the frames that many times; each pass's cost is reported too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

FRAME_SIZE = (1280, 720)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def fit_frame(image: np.ndarray, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """``image`` scaled to fit ``size`` (width, height) and padded with black."""
    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    nw, nh = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
    frame = np.zeros((h, w, 3), np.uint8)
    top, left = (h - nh) // 2, (w - nw) // 2
    frame[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA
                                                         if scale < 1 else cv2.INTER_LINEAR)
    return frame


def frames_from(source: Path, limit: int) -> Iterator[np.ndarray]:
    """Up to ``limit`` colour images: a folder's image files (sorted, recursively) or a
    clip's frames spread over its length. Unreadable files are skipped."""
    if source.is_dir():
        n = 0
        for path in sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                yield image
                n += 1
                if n >= limit:
                    return
        return
    capture = cv2.VideoCapture(str(source))
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if not capture.isOpened() or total <= 0:
            raise ValueError(f"cannot read frames from {source}")
        for index in np.linspace(0, total - 1, min(limit, total)).astype(int):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, image = capture.read()
            if ok:
                yield image
    finally:
        capture.release()


def bench_plates(source: Path, frames: int = 60, country: str | None = None, workers: int = 1,
                 recognizer=None, passes: int = 1, detector_size: int | None = None) -> dict:
    """Time ``frames`` frames in steady state, ``passes`` times: each is run once
    untimed first (OpenVINO compiles each new input shape once, and the country is
    learned unless given; that first pass is reported apart, as
    ``first_pass_ms_per_frame``). With ``workers`` > 1 that many frames are in flight at
    once (threads; the models release the GIL, and each is compiled with one inference
    stream per worker, as the local engine does for several cameras): ``ms_per_frame``
    is then wall time per frame, a throughput figure, and ``latency_ms`` each frame's
    own time. ``detector_size``: the detector's input size (default:
    ``PlateRecognizer``'s)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from safecity.plates.grammar import RegionPrior
    from safecity.plates.read import PlateRecognizer
    from safecity.vision.runtime import default_streams, set_default_streams

    workers = max(1, int(workers))
    passes = max(1, int(passes))
    region = RegionPrior(country=country)
    learning = threading.Lock()
    priors = region.priors()  # (None until learned, without a country)
    if recognizer is None:
        before = default_streams()
        set_default_streams(workers if workers > 1 else 0)
        try:
            recognizer = PlateRecognizer(size=detector_size)
        finally:
            set_default_streams(before)
    images = [fit_frame(image) for image in frames_from(source, frames)]
    if not images:
        raise ValueError(f"no readable images or frames in {source}")

    def one(frame: np.ndarray, learn: bool = False) -> tuple[float, float, int, int]:
        started = time.perf_counter()
        found = recognizer.find(frame)
        found_at = time.perf_counter()
        _, reads = recognizer.read_found(frame, found, region.priors() if learn else priors)
        done = time.perf_counter()
        if learn:
            with learning:
                for read in reads:
                    region.observe(read.grammar, read.text, read.char_confidences)
        return (found_at - started) * 1000, (done - found_at) * 1000, len(reads), sum(bool(r.text) for r in reads)

    with ThreadPoolExecutor(workers) as pool:
        started = time.perf_counter()
        list(pool.map(lambda frame: one(frame, learn=True), images))
        first_ms = (time.perf_counter() - started) * 1000
        priors = region.priors()
        timed, pass_ms = [], []
        for _ in range(passes):
            started = time.perf_counter()
            timed.append(np.array(list(pool.map(one, images))))
            pass_ms.append((time.perf_counter() - started) * 1000 / len(images))
    runs = np.concatenate(timed)
    latency = runs[:, 0] + runs[:, 1]
    return {
        "task": "bench-plates",
        "source": str(source),
        "frame": list(FRAME_SIZE),
        "frames": len(images),
        "workers": workers,
        "country": country,
        "region": region.region,
        "backend": recognizer.detector.model.backend,
        "detector_size": recognizer.detector.size,
        "passes": passes,
        "ms_per_frame": round(float(np.mean(pass_ms)), 2),  # every pass times all frames
        "pass_ms_per_frame": [round(ms, 2) for ms in pass_ms],
        "first_pass_ms_per_frame": round(first_ms / len(images), 2),
        "latency_ms": round(float(latency.mean()), 2),
        "latency_ms_median": round(float(np.median(latency)), 2),
        "latency_ms_p90": round(float(np.percentile(latency, 90)), 2),
        "detect_ms": round(float(runs[:, 0].mean()), 2),
        "read_ms": round(float(runs[:, 1].mean()), 2),
        "plates_per_frame": round(float(runs[:, 2].mean()), 2),
        "plates_read": int(timed[-1][:, 3].sum()),  # in one pass
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def summarise(result: dict) -> str:
    if result["country"]:
        country = f", country {result['country']}"
    else:
        country = f", country learned: {result['region'] or 'none'}"
    each = result["pass_ms_per_frame"]
    passes = f" (passes: {', '.join(str(ms) for ms in each)})" if len(each) > 1 else ""
    return (
        f"plates: {result['frames']} frames of {result['frame'][0]}x{result['frame'][1]} ({result['backend']}, "
        f"detector at {result['detector_size']} px{country}, {result['workers']} at a time): "
        f"{result['ms_per_frame']} ms per frame{passes} (first pass {result['first_pass_ms_per_frame']}); "
        f"each frame {result['latency_ms']} ms (median {result['latency_ms_median']}, "
        f"p90 {result['latency_ms_p90']}) = find {result['detect_ms']} "
        f"+ read {result['read_ms']} ms; {result['plates_per_frame']} plates per frame"
    )
