"""``safecity eval``, ``safecity bench`` and ``safecity report``: accuracy, throughput and their HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from safecity.cli.common import ConfigOption, console, fail, load, write_json
from safecity.pipeline.registry import ANALYSERS

bench_app = typer.Typer(help="Throughput and latency benchmarks (print a summary, write JSON).", no_args_is_help=True)
eval_app = typer.Typer(help="Accuracy on a labelled data set (formats: docs/evaluation.md).", no_args_is_help=True)

DatasetArgument = typer.Argument(..., help="Folder in the format described in docs/evaluation.md.")
JsonOption = typer.Option(..., "--json", help="Where to write the results as JSON.")
LimitOption = typer.Option(None, "--limit", help="Use only the first N items (quick checks).")


def _evaluate(task: str, dataset: Path, json_out: Path, limit: Optional[int], **options) -> None:
    """Run ``safecity.evaluation.<task>.evaluate`` and write its JSON; print its summary.
    ``options``: the task's own keyword arguments."""
    import importlib

    if not dataset.is_dir():
        raise fail(f"data set folder not found: {dataset}")
    module = importlib.import_module(f"safecity.evaluation.{task}")
    try:
        result = module.evaluate(dataset, limit=limit, **options)
    except (ValueError, FileNotFoundError) as error:
        raise fail(f"cannot evaluate {dataset}: {error}") from None
    console.print(module.summarise(result))
    write_json(result, json_out)


def _eval_command(task: str, doc: str) -> None:
    def command(dataset: Path = DatasetArgument, json_out: Path = JsonOption, limit: Optional[int] = LimitOption):
        _evaluate(task, dataset, json_out, limit)

    command.__doc__ = doc
    eval_app.command(task)(command)


_eval_command("faces", "Face verification and open-set identification (TAR@FAR, FNIR@FPIR).")
_eval_command("fairness", "False-match and detection rates per group at the operating threshold.")
_eval_command("counting", "People counting in still frames (MAE, RMSE).")


DetectorSizeOption = typer.Option(
    None, "--detector-size",
    help="The plate detector's input size in px, its longer side (default 800; a multiple of 32). "
         "Smaller is cheaper and finds fewer small plates; running a set at a few sizes shows how "
         "much its read rate depends on the exact boxes.",
)


@eval_app.command("plates")
def eval_plates_command(
    dataset: Path = DatasetArgument,
    json_out: Path = JsonOption,
    limit: Optional[int] = LimitOption,
    detector_size: Optional[int] = DetectorSizeOption,
) -> None:
    """Licence-plate finding and reading (exact read rate, per condition)."""
    _evaluate("plates", dataset, json_out, limit, detector_size=detector_size)


@bench_app.command("search")
def bench_search_command(
    gallery: int = typer.Option(1_000_000, "--gallery", help="Templates in the gallery."),
    queries: int = typer.Option(2000, help="Probes to time, one at a time."),
    json_out: Path = JsonOption,
) -> None:
    """Watchlist search latency (p50, p99 ms) and recall of the index against exact search."""
    from safecity.evaluation.bench_search import bench_search, summarise

    if gallery < 1 or queries < 1:
        raise fail("--gallery and --queries must be positive")
    result = bench_search(gallery, queries)
    console.print(summarise(result))
    write_json(result, json_out)


@bench_app.command("pipeline")
def bench_pipeline_command(
    video: Path = typer.Option(..., "--video", help="Clip to play on every stream."),
    streams: int = typer.Option(4, "--streams", help="Streams side by side."),
    fps: float = typer.Option(5.0, "--fps", help="Analysis fps each stream must sustain."),
    analyser: Optional[list[str]] = typer.Option(None, "--analyser", "-a", help="Analysers (default: all)."),
    seconds: float = typer.Option(30.0, help="How long to run."),
    workers: int = typer.Option(1, "--workers", help="Processes to spread the streams over (as --engine pool)."),
    json_out: Path = JsonOption,
    config_path: Optional[Path] = ConfigOption,
) -> None:
    """Frames per second per stream and streams sustained per core, every analyser on."""
    from safecity.evaluation.bench_pipeline import bench_pipeline, summarise

    if not video.is_file():
        raise fail(f"video not found: {video}")
    if streams < 1 or fps <= 0 or seconds <= 0:
        raise fail("--streams, --fps and --seconds must be positive")
    config = load(config_path)
    names = analyser or list(ANALYSERS)
    unknown = [n for n in names if n not in ANALYSERS]
    if unknown:
        raise fail(f"unknown analyser {unknown[0]!r}; known: {', '.join(ANALYSERS)}")
    result = bench_pipeline(video, streams, config, names, fps, seconds, workers=max(1, workers))
    console.print(summarise(result))
    write_json(result, json_out)


@bench_app.command("plates")
def bench_plates_command(
    source: Path = typer.Argument(..., help="Folder of scene images, or a video clip."),
    frames: int = typer.Option(60, "--frames", help="Frames to time (after an untimed first pass over them)."),
    country: Optional[str] = typer.Option(
        None, "--country", help="The camera's country (us, es, ...), as a camera learns it from its readings."
    ),
    workers: int = typer.Option(
        1, "--workers", help="Frames in flight at once (several cameras' frames); 1: one frame at a time."
    ),
    passes: int = typer.Option(1, "--passes", help="Timed passes over the frames (a machine's speed drifts)."),
    detector_size: Optional[int] = DetectorSizeOption,
    json_out: Path = JsonOption,
) -> None:
    """Plate finding + reading cost per 1280x720 frame, the whole frame searched."""
    from safecity.evaluation.bench_plates import bench_plates, summarise

    if not source.exists():
        raise fail(f"not found: {source}")
    if frames < 1 or passes < 1 or workers < 1:
        raise fail("--frames, --passes and --workers must be positive")
    try:
        result = bench_plates(source, frames, country=country, workers=workers, passes=passes,
                              detector_size=detector_size)
    except ValueError as error:
        raise fail(str(error)) from None
    console.print(summarise(result))
    write_json(result, json_out)


def report(
    results: Path = typer.Argument(..., help="Folder of eval/bench JSON files (the newest per task is used)."),
    out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write."),
) -> None:
    """Render the latest eval results as one HTML page with ROC/DET curves and per-group rates."""
    from safecity.evaluation.report import latest_results, render

    if not results.is_dir():
        raise fail(f"results folder not found: {results}")
    if not latest_results(results):
        raise fail(f"no eval or bench JSON files in {results}")
    out.write_text(render(results), encoding="utf-8")
    console.print(f"written: {out}")
