"""``safecity run`` (cameras and the API, until stopped) and ``safecity analyze`` (one video file)."""

from __future__ import annotations

import logging
import re
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from safecity.cli.common import ConfigOption, StoreOption, console, err, fail, load, setup_logging, store_session
from safecity.config import Camera, Config
from safecity.pipeline.registry import ANALYSERS


def run(
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
    host: Optional[str] = typer.Option(None, help="API address (default: config api.host)."),
    port: Optional[int] = typer.Option(None, help="API port (default: config api.port)."),
    engine_name: str = typer.Option(
        "local", "--engine", help="local (threads), pool (a process per core) or ray (a Ray cluster)."
    ),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes for --engine pool (default: cores)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (host:port) for --engine ray."),
    cameras_per_group: int = typer.Option(4, help="Cameras per Ray actor (--engine ray)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run every enabled camera and serve the API until stopped (Ctrl-C)."""
    import uvicorn

    from safecity.api.app import create_app
    from safecity.api.bus import EventBus
    from safecity.api.server import GracefulServer
    from safecity.engines.periodic import PeriodicTask
    from safecity.governance.checkpoints import create_checkpoint, default_keys_dir, load_or_create_key
    from safecity.governance.retention import RetentionJob

    setup_logging(verbose)
    config = load(config_path, store_url)
    with store_session(config) as store:
        _audit_config_load(store, config, config_path)
        if not config.cameras:
            logging.getLogger("safecity").warning("no cameras configured: serving the API only")
        bus = EventBus()  # a sink: wakes the console's live streams when events are stored
        engine = _engine(engine_name, config, store, bus, address, workers, cameras_per_group)
        engine.start()
        retention_job = RetentionJob(store, config.retention)

        def report_retention() -> None:
            report = retention_job.run()
            if report.total:
                logging.getLogger("safecity").info("retention: deleted %s", report)

        signing_key = load_or_create_key(default_keys_dir(config.store.url))
        housekeeping = [
            PeriodicTask("retention", report_retention, 3600),
            PeriodicTask("audit-checkpoint", lambda: create_checkpoint(store.engine, signing_key), 600, run_at_stop=True),
        ]
        for task in housekeeping:
            task.start()
        api = create_app(store, health=engine.health, cameras=engine.cameras, bus=bus, latest_frame=engine.latest_frame)
        server = GracefulServer(
            uvicorn.Config(api, host=host or config.api.host, port=port or config.api.port, log_level="warning")
        )
        enabled = sum(c.enabled for c in config.cameras)
        console.print(
            f"safecity: {enabled} cameras ({engine_name} engine), API on http://{server.config.host}:{server.config.port}"
        )
        try:
            server.run()
        finally:
            engine.stop()
            for task in housekeeping:
                task.stop()
            console.print("safecity: stopped")


def _audit_config_load(store, config: Config, config_path: Optional[Path]) -> None:
    """Record the start-up config (its digest, and whether it changed since the last start)."""
    from safecity.governance.audit import AuditLog, local_actor

    audit = AuditLog(store.engine)
    previous = next((r for r in reversed(audit.tail(200)) if r.action == "config.load"), None)
    digest = config.digest()
    changed = previous is not None and previous.as_dict()["details"].get("digest") != digest
    audit.append(
        local_actor(),
        "config.load",
        "config",
        str(config_path or "<defaults>"),
        "start-up",
        {"digest": digest, "changed": changed, "cameras": [c.name for c in config.cameras if c.enabled]},
    )


def _engine(name: str, config: Config, store, bus, address: Optional[str], workers: Optional[int], cameras_per_group: int):
    """The engine ``--engine`` names (not yet started)."""
    if name == "ray":
        if not address:
            raise fail("--engine ray needs --address of a running Ray cluster (ray start --head …)")
        from safecity.engines.ray_engine import RayEngine

        return RayEngine(config, address, cameras_per_group)
    if name == "pool":
        from safecity.engines.pool import ProcessPoolEngine

        return ProcessPoolEngine(config, workers)  # workers publish through the store; the console polls it
    if name == "local":
        from safecity.engines.local import LocalEngine
        from safecity.outputs import sinks_from_config

        return LocalEngine(config, store, [*sinks_from_config(config.outputs), bus])
    raise fail(f"unknown engine {name!r}: use local, pool or ray")


def _camera_name(video: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", video.stem).strip("-") or "video"


def analyze(
    video: Path = typer.Argument(..., help="Video file to analyse."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
    camera: Optional[str] = typer.Option(None, help="Camera name for the events (default: from the file name)."),
    fps: Optional[float] = typer.Option(None, help="Analysis frames per second (default: the camera's or 5)."),
    analyser: Optional[list[str]] = typer.Option(
        None, "--analyser", "-a", help=f"Analysers to run (repeatable; known: {', '.join(ANALYSERS)})."
    ),
    no_store: bool = typer.Option(False, "--no-store", help="Print the events but store nothing."),
) -> None:
    """Run the pipeline over a video file and print a summary of its events."""
    from safecity.engines.offline import analyze_file
    from safecity.governance.audit import AuditLog, local_actor
    from safecity.sources.video import SourceError

    config = load(config_path, store_url)
    name = camera or _camera_name(video)
    base = next((c for c in config.cameras if c.name == name), None)
    settings = base.model_dump() if base else {"name": name}
    settings.update(source=str(video), loop=False)
    if fps:
        settings["fps"] = fps
    if analyser:
        settings["analysers"] = analyser
    try:
        cam = Camera.model_validate(settings)
    except Exception as error:
        raise fail(f"invalid options: {error}") from None
    if not video.is_file():
        raise fail(f"video file not found: {video}")

    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%")]
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    failure: str | None = None
    with (nullcontext() if no_store else store_session(config)) as store:
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task(f"analysing {video.name}", total=None)

            def on_frame(pts: float, info) -> None:
                if info and info.duration and progress.tasks[task].total is None:
                    progress.update(task, total=info.duration)
                progress.update(task, completed=pts)

            try:
                result = analyze_file(cam, config, store, on_frame)
            except SourceError as error:
                failure = str(error)
                result = None

        if store is not None:
            details = {"video": str(video), "camera": name, "error": failure}
            if result is not None:
                details |= {"frames": result.stats.frames, "events": len(result.events), "stored": result.stored}
            AuditLog(store.engine).append(local_actor(), "video.analyze", "video", str(video), "", details)
    if failure is not None:
        raise fail(failure)
    assert result is not None
    _print_summary(result, video)


def _print_summary(result, video: Path) -> None:
    table = Table(title=f"{len(result.events)} events in {video.name}")
    for column in ("#", "type", "label", "start", "duration s", "score", "zones"):
        table.add_column(column)
    start = result.info.start_ts if result.info else 0.0
    for i, event in enumerate(result.events, 1):
        offset = event.start_ts - start
        duration = (event.end_ts - event.start_ts) if event.end_ts is not None else 0.0
        table.add_row(
            str(i),
            event.type,
            event.label or "",
            f"{datetime.fromtimestamp(event.start_ts, timezone.utc):%H:%M:%S} (+{offset:.1f}s)",
            f"{duration:.1f}",
            "" if event.score is None else f"{event.score:.3f}",
            ", ".join(event.attributes.get("zones", [])),
        )
    console.print(table)
    stats = result.stats
    console.print(
        f"frames analysed: {stats.frames}, with motion: {stats.frames_with_motion}, "
        f"events: {len(result.events)}, newly stored: {result.stored}"
    )
