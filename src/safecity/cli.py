"""The ``safecity`` command line. Every command has ``--help``.

Errors meant for the operator (a bad config, a broken video, a tampered log) are
printed as one clear message with a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from safecity.config import Camera, Config, ConfigError, load_config, parse_config
from safecity.pipeline.registry import ANALYSERS

app = typer.Typer(help="safecity: accountable video analytics.", no_args_is_help=True, add_completion=False)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration files.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
watchlist_app = typer.Typer(
    help="Governed watchlists (faces) and plate lists. Every change is audited.", no_args_is_help=True
)
incident_app = typer.Typer(
    help="Incidents: the only scope in which cross-camera search runs (audited, expiring).", no_args_is_help=True
)
retention_app = typer.Typer(help="Retention limits: delete what is past its keeping period.", no_args_is_help=True)
bench_app = typer.Typer(help="Throughput and latency benchmarks (print a summary, write JSON).", no_args_is_help=True)
eval_app = typer.Typer(help="Accuracy on a labelled data set (formats: docs/evaluation.md).", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
app.add_typer(watchlist_app, name="watchlist")
app.add_typer(retention_app, name="retention")
app.add_typer(incident_app, name="incident")
user_app = typer.Typer(help="Console and API users, their roles and passwords. Every change is audited.", no_args_is_help=True)
app.add_typer(user_app, name="user")
from safecity.terminal.cli import terminal_app  # noqa: E402  (typer commands; heavy imports stay lazy)

app.add_typer(terminal_app, name="terminal")

# piped output (logs, scripts, grep) gets wide lines instead of cells cut to 80 columns
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

ConfigOption = typer.Option(
    None, "--config", "-c", envvar="SAFECITY_CONFIG", help="YAML config file (default: ./safecity.yaml if present)."
)
StoreOption = typer.Option(None, "--store", help="Store URL, overriding the config's store.url.")


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def load(config_path: Optional[Path], store_url: Optional[str] = None) -> Config:
    try:
        if config_path is None and Path("safecity.yaml").is_file():
            config_path = Path("safecity.yaml")
        config = load_config(config_path) if config_path else parse_config({})
        if store_url:
            config = config.model_copy(update={"store": config.store.model_copy(update={"url": store_url})})
        return config
    except ConfigError as error:
        raise fail(str(error)) from None


def open_store(config: Config):
    from safecity.events.store import EventStore

    try:
        return EventStore.from_config(config.store)
    except Exception as error:
        raise fail(f"cannot open the store {config.store.url}: {error}") from None


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=False)],
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


@app.command()
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
    from safecity.api.server import GracefulServer
    from safecity.engines.local import LocalEngine
    from safecity.outputs import sinks_from_config
    from safecity.engines.periodic import PeriodicTask
    from safecity.governance.checkpoints import create_checkpoint, default_keys_dir, load_or_create_key
    from safecity.governance.retention import RetentionJob
    from safecity.governance.audit import AuditLog, local_actor

    setup_logging(verbose)
    config = load(config_path, store_url)
    store = open_store(config)
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
    if not config.cameras:
        logging.getLogger("safecity").warning("no cameras configured: serving the API only")
    from safecity.api.bus import EventBus

    bus = EventBus()  # a sink: wakes the console's live streams when events are stored
    if engine_name == "ray":
        if not address:
            raise fail("--engine ray needs --address of a running Ray cluster (ray start --head …)")
        from safecity.engines.ray_engine import RayEngine

        engine = RayEngine(config, address, cameras_per_group)
    elif engine_name == "pool":
        from safecity.engines.pool import ProcessPoolEngine

        engine = ProcessPoolEngine(config, workers)  # workers publish through the store; the console polls it
    elif engine_name == "local":
        engine = LocalEngine(config, store, [*sinks_from_config(config.outputs), bus])
    else:
        raise fail(f"unknown engine {engine_name!r}: use local, pool or ray")
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
    console.print(f"safecity: {enabled} cameras ({engine_name} engine), API on http://{server.config.host}:{server.config.port}")
    try:
        server.run()
    finally:
        engine.stop()
        for task in housekeeping:
            task.stop()
        store.close()
        console.print("safecity: stopped")


def _camera_name(video: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", video.stem).strip("-") or "video"


@app.command()
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

    store = None if no_store else open_store(config)
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%")]
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    failure: str | None = None
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
        store.close()
    if failure is not None:
        raise fail(failure)
    assert result is not None
    _print_summary(result, video)


def _print_summary(result, video: Path) -> None:
    from datetime import datetime, timezone

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


@audit_app.command("verify")
def audit_verify(
    export: Optional[Path] = typer.Option(None, "--export", help="Verify an exported JSONL file instead."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Check the whole hash chain and the signed checkpoints; name the first bad record."""
    from safecity.governance.checkpoints import (
        checkpoints,
        default_keys_dir,
        trusted_keys,
        verify_export,
        verify_with_checkpoints,
    )
    from safecity.governance.audit import AuditLog

    config = load(config_path, store_url)
    trusted = trusted_keys(default_keys_dir(config.store.url))
    if export is not None:
        if not export.is_file():
            raise fail(f"export not found: {export}")
        result = verify_export(export, trusted)
        marks = "its manifest's"
    else:
        store = open_store(config)
        marks_list = [c.as_dict() for c in checkpoints(store.engine)]
        result = verify_with_checkpoints((r.stored() for r in AuditLog(store.engine).records()), marks_list, trusted)
        store.close()
        marks = str(len(marks_list))
    if not result.ok:
        raise fail(f"audit log FAILED verification at record {result.first_bad_seq}: {result.problem}", code=1)
    console.print(f"audit log OK: {result.records} records, chain intact, {marks} signed checkpoints valid")


@audit_app.command("checkpoint")
def audit_checkpoint(config_path: Optional[Path] = ConfigOption, store_url: Optional[str] = StoreOption) -> None:
    """Sign the chain's current head with this installation's Ed25519 key."""
    from safecity.governance.checkpoints import create_checkpoint, default_keys_dir, load_or_create_key

    config = load(config_path, store_url)
    store = open_store(config)
    mark = create_checkpoint(store.engine, load_or_create_key(default_keys_dir(config.store.url)))
    store.close()
    console.print(f"checkpoint at record {mark.seq}" if mark else "nothing new to checkpoint")


@audit_app.command("export")
def audit_export(
    target: Path = typer.Argument(..., help="JSONL file to write (a .manifest.json is written beside it)."),
    reason: str = typer.Option(..., "--reason", help="Why: recorded in the audit log."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Export the audit log as JSONL for a regulator, with a manifest of hashes and checkpoints."""
    from safecity.governance.audit import local_actor
    from safecity.governance.checkpoints import export_jsonl

    store = open_store(load(config_path, store_url))
    manifest = export_jsonl(store.engine, target, local_actor(), reason)
    store.close()
    console.print(f"exported {manifest['records']} records to {target} (sha256 {manifest['sha256'][:16]}…)")


@audit_app.command("tail")
def audit_tail(
    n: int = typer.Option(20, "-n", help="How many of the newest records."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Show the newest audit records."""
    from safecity.governance.audit import AuditLog

    store = open_store(load(config_path, store_url))
    table = Table()
    for column in ("seq", "time", "actor", "action", "object", "reason"):
        table.add_column(column)
    for r in AuditLog(store.engine).tail(n):
        table.add_row(str(r.seq), r.ts, r.actor, r.action, f"{r.object_type}:{r.object_id}", r.reason)
    store.close()
    console.print(table)


@config_app.command("check")
def config_check(path: Path = typer.Argument(..., help="YAML config file.")) -> None:
    """Validate a config file and list its cameras."""
    config = load(path)
    for camera in config.cameras:
        state = "enabled" if camera.enabled else "disabled"
        console.print(f"{camera.name}: {camera.source} @ {camera.fps} fps, {', '.join(camera.analysers)} ({state})")
    console.print(f"config OK: {len(config.cameras)} cameras, store {config.store.url}")


@db_app.command("upgrade")
def db_upgrade(config_path: Optional[Path] = ConfigOption, store_url: Optional[str] = StoreOption) -> None:
    """Apply the schema migrations to the configured store."""
    from safecity.db import current_revision

    store = open_store(load(config_path, store_url))  # opening migrates
    console.print(f"schema at revision {current_revision(store.engine)}")
    store.close()


@retention_app.command("run")
def retention_run(
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be deleted; delete nothing."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Delete events and media past the configured retention limits (audited)."""
    from safecity.governance.retention import RetentionJob

    config = load(config_path, store_url)
    store = open_store(config)
    report = RetentionJob(store, config.retention, actor=local_actor_name()).run(dry_run=dry_run)
    store.close()
    verb = "would delete" if dry_run else "deleted"
    table = Table(title=f"retention: {verb}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("older than")
    for event_type, count in sorted(report.events_by_type.items()):
        table.add_row(f"{event_type} events", str(count), report.cutoffs[event_type])
    table.add_row("media of events without an alert", str(report.media_files), report.cutoffs["media"])
    console.print(table)


@incident_app.command("open")
def incident_open(
    title: str = typer.Argument(..., help="What happened."),
    reason: str = typer.Option(..., "--reason", help="Why a search is needed: recorded in the audit log."),
    days: float = typer.Option(7, help="The incident and its results expire after this many days (max 30)."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Open an incident."""
    from safecity.governance.incidents import IncidentService

    store = open_store(load(config_path, store_url))
    incident = _governed(lambda: IncidentService(store, local_actor_name()).open(title, reason, days))
    store.close()
    console.print(f"incident {incident} open for {days:g} days")


@incident_app.command("search")
def incident_search(
    incident: int = typer.Argument(..., help="Open incident id."),
    event: int = typer.Option(..., "--event", help="Object event (a tracked person or vehicle) to follow."),
    reason: str = typer.Option(..., "--reason", help="Why: recorded in the audit log."),
    window: float = typer.Option(30, help="Minutes before and after the event to look in."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Find likely reappearances of a tracked person or vehicle on other cameras (by clothing/colour)."""
    from safecity.governance.incidents import IncidentService

    store = open_store(load(config_path, store_url))
    found = _governed(lambda: IncidentService(store, local_actor_name()).search(incident, event, reason, window))
    store.close()
    table = Table(title=f"incident {incident}: {len(found)} likely reappearances of event {event}")
    for column in ("event", "camera", "label", "time", "similarity"):
        table.add_column(column)
    for r in found:
        table.add_row(str(r.event_id), r.camera, r.label or "", f"{r.start_time:%Y-%m-%d %H:%M:%S}", f"{r.score:.3f}")
    console.print(table)


@incident_app.command("close")
def incident_close(
    incident: int = typer.Argument(..., help="Incident id."),
    reason: str = typer.Option(..., "--reason", help="Why: recorded in the audit log."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Close an incident; its search results are deleted."""
    from safecity.governance.incidents import IncidentService

    store = open_store(load(config_path, store_url))
    deleted = _governed(lambda: IncidentService(store, local_actor_name()).close(incident, reason))
    store.close()
    console.print(f"incident {incident} closed, {deleted} search results deleted")


def local_actor_name() -> str:
    from safecity.governance.audit import local_actor

    return local_actor()


ReasonOption = typer.Option(..., "--reason", help="Why: recorded in the audit log.")


def _watchlists(config_path: Optional[Path], store_url: Optional[str]):
    from safecity.governance.audit import local_actor
    from safecity.governance.watchlists import WatchlistService

    store = open_store(load(config_path, store_url))
    return store, WatchlistService(store.engine, local_actor())


def _governed(action):
    """Run a watchlist action, turning a refused rule into a clear error."""
    from safecity.governance.watchlists import GovernanceError

    try:
        return action()
    except GovernanceError as error:
        raise fail(str(error)) from None


@watchlist_app.command("create")
def watchlist_create(
    name: str = typer.Argument(..., help="List name (letters, digits, _ . -)."),
    kind: str = typer.Option("face", help="face or plate."),
    threshold: Optional[float] = typer.Option(None, help="Match threshold (cosine); default: the calibrated one."),
    description: str = typer.Option("", help="What the list is for."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Create a watchlist or plate list."""
    store, service = _watchlists(config_path, store_url)
    list_id = _governed(lambda: service.create_list(name, kind, reason, threshold, description))
    store.close()
    console.print(f"created {kind} list {name!r} (id {list_id})")


@watchlist_app.command("add")
def watchlist_add(
    name: str = typer.Argument(..., help="List to add to."),
    label: str = typer.Option(..., help="Who or what this entry is."),
    image: Optional[list[Path]] = typer.Option(None, "--image", help="Reference image (face lists; repeatable)."),
    plate: Optional[str] = typer.Option(None, help="Plate number (plate lists)."),
    legal_basis: str = typer.Option(..., help="The law, warrant or order that allows this entry."),
    purpose: str = typer.Option(..., help="What the entry is for."),
    authoriser: str = typer.Option(..., help="Who authorised it."),
    expires: datetime = typer.Option(..., formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"], help="Expiry (UTC)."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Add an entry; every governance field is required, and so is the reason."""
    from safecity.governance.watchlists import Governance

    rules = Governance(legal_basis, purpose, authoriser, expires.replace(tzinfo=timezone.utc))
    if bool(image) == bool(plate):
        raise fail("give either --image (face lists) or --plate (plate lists)")
    store, service = _watchlists(config_path, store_url)
    if plate:
        entry = _governed(lambda: service.add_plate_entry(name, label, plate, rules, reason))
    else:
        from safecity.faces.enrol import FaceEnroller

        for path in image:
            if not path.is_file():
                raise fail(f"image not found: {path}")
        images = [(path.name, path.read_bytes()) for path in image]
        entry = _governed(lambda: service.add_face_entry(name, label, images, rules, reason, FaceEnroller()))
    store.close()
    console.print(f"added entry {entry} to {name!r}, expires {rules.expires_at:%Y-%m-%d %H:%M} UTC")


@watchlist_app.command("list")
def watchlist_list(
    name: Optional[str] = typer.Argument(None, help="Only this list."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Show entries with their governance fields."""
    store, service = _watchlists(config_path, store_url)
    table = Table()
    for column in ("id", "list", "label", "plate/templates", "legal basis", "purpose", "authoriser", "expires", "state"):
        table.add_column(column)
    for e in service.entries(name):
        table.add_row(
            str(e.id), e.watchlist, e.label, e.plate or f"{e.templates} templates", e.legal_basis, e.purpose,
            e.authoriser, f"{e.expires_at:%Y-%m-%d %H:%M}", e.state,
        )
    store.close()
    console.print(table)


@watchlist_app.command("approve")
def watchlist_approve(
    entry: int = typer.Argument(..., help="Entry id."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Approve an entry (four eyes: not by its author); only approved entries match."""
    store, service = _watchlists(config_path, store_url)
    _governed(lambda: service.approve(entry, reason))
    store.close()
    console.print(f"entry {entry} approved: it matches from now until it expires")


@watchlist_app.command("expire")
def watchlist_expire(
    entry: int = typer.Argument(..., help="Entry id."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """End an entry now: it stops matching at once."""
    store, service = _watchlists(config_path, store_url)
    _governed(lambda: service.expire(entry, reason))
    store.close()
    console.print(f"entry {entry} expired")


@watchlist_app.command("remove")
def watchlist_remove(
    entry: int = typer.Argument(..., help="Entry id."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Delete an entry and its templates (the audit record remains)."""
    store, service = _watchlists(config_path, store_url)
    _governed(lambda: service.remove(entry, reason))
    store.close()
    console.print(f"entry {entry} removed")


def _users(config_path: Optional[Path], store_url: Optional[str]):
    from safecity.governance.audit import local_actor
    from safecity.governance.users import UserService

    store = open_store(load(config_path, store_url))
    return store, UserService(store.engine, local_actor())


def _user_change(action) -> None:
    from safecity.governance.users import UserError

    try:
        action()
    except UserError as error:
        raise fail(str(error)) from None


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


PasswordStdinOption = typer.Option(False, "--password-stdin", help="Read the password from standard input.")


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="User name (letters, digits, _ . @ -)."),
    role: str = typer.Option(..., help="viewer, operator, supervisor, auditor or admin."),
    password_stdin: bool = PasswordStdinOption,
    reason: str = typer.Option("", "--reason", help="Why: recorded in the audit log."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Create a user (the first admin is created this way)."""
    password = _new_password(password_stdin)
    store, users = _users(config_path, store_url)
    _user_change(lambda: users.add(name, role, password, reason))
    store.close()
    console.print(f"created {role} {name!r}")


@user_app.command("list")
def user_list(config_path: Optional[Path] = ConfigOption, store_url: Optional[str] = StoreOption) -> None:
    """Show users, roles and whether they may sign in."""
    store, users = _users(config_path, store_url)
    table = Table()
    for column in ("name", "role", "state", "created by", "created"):
        table.add_column(column)
    for u in users.users():
        table.add_row(u.name, u.role, "active" if u.active else "disabled", u.created_by, f"{u.created_at:%Y-%m-%d %H:%M}")
    store.close()
    console.print(table)


@user_app.command("set-role")
def user_set_role(
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Argument(..., help="New role."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Change a user's role; their open sessions end."""
    store, users = _users(config_path, store_url)
    _user_change(lambda: users.set_role(name, role, reason))
    store.close()
    console.print(f"{name!r} is now {role}")


@user_app.command("disable")
def user_disable(
    name: str = typer.Argument(..., help="User name."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Stop a user from signing in; their open sessions end."""
    store, users = _users(config_path, store_url)
    _user_change(lambda: users.set_active(name, False, reason))
    store.close()
    console.print(f"{name!r} disabled")


@user_app.command("enable")
def user_enable(
    name: str = typer.Argument(..., help="User name."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Let a disabled user sign in again."""
    store, users = _users(config_path, store_url)
    _user_change(lambda: users.set_active(name, True, reason))
    store.close()
    console.print(f"{name!r} enabled")


@user_app.command("password")
def user_password(
    name: str = typer.Argument(..., help="User name."),
    password_stdin: bool = PasswordStdinOption,
    reason: str = typer.Option("", "--reason", help="Why: recorded in the audit log."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Set a new password; the user's open sessions end."""
    password = _new_password(password_stdin)
    store, users = _users(config_path, store_url)
    _user_change(lambda: users.set_password(name, password, reason))
    store.close()
    console.print(f"password of {name!r} changed")


@user_app.command("permissions")
def user_permissions() -> None:
    """Print the role and permission table (the text of docs/permissions.md)."""
    from safecity.governance.users import permissions_markdown

    sys.stdout.write(permissions_markdown())


def _evaluate(task: str, dataset: Path, json_out: Path, limit: Optional[int]) -> None:
    """Run ``safecity.evaluation.<task>.evaluate`` and write its JSON; print its summary."""
    import importlib

    if not dataset.is_dir():
        raise fail(f"data set folder not found: {dataset}")
    module = importlib.import_module(f"safecity.evaluation.{task}")
    try:
        result = module.evaluate(dataset, limit=limit)
    except (ValueError, FileNotFoundError) as error:
        raise fail(f"cannot evaluate {dataset}: {error}") from None
    console.print(module.summarise(result))
    _write_json(result, json_out)


DatasetArgument = typer.Argument(..., help="Folder in the format described in docs/evaluation.md.")
JsonOption = typer.Option(..., "--json", help="Where to write the results as JSON.")
LimitOption = typer.Option(None, "--limit", help="Use only the first N items (quick checks).")


def _eval_command(task: str, doc: str) -> None:
    def command(dataset: Path = DatasetArgument, json_out: Path = JsonOption, limit: Optional[int] = LimitOption):
        _evaluate(task, dataset, json_out, limit)

    command.__doc__ = doc
    eval_app.command(task)(command)


_eval_command("faces", "Face verification and open-set identification (TAR@FAR, FNIR@FPIR).")
_eval_command("fairness", "False-match and detection rates per group at the operating threshold.")
_eval_command("plates", "Licence-plate finding and reading (exact read rate, per condition).")
_eval_command("counting", "People counting in still frames (MAE, RMSE).")


def _write_json(result: dict, json_out: Path) -> None:
    import json

    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"written: {json_out}")


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
    _write_json(result, json_out)


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
    _write_json(result, json_out)


@app.command("export")
def export_command(
    target: Path = typer.Argument(..., help="Folder to write (must be new or empty)."),
    reason: str = typer.Option(..., "--reason", help="Why: recorded in the audit log and the manifest."),
    camera: Optional[str] = typer.Option(None, help="Only this camera."),
    event_type: Optional[str] = typer.Option(None, "--type", help="Only this event type."),
    after: Optional[datetime] = typer.Option(None, help="Events starting at or after this time (UTC)."),
    before: Optional[datetime] = typer.Option(None, help="Events starting before this time (UTC)."),
    max_events: int = typer.Option(10_000, help="At most this many events."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Export events with redacted snapshots and a manifest of SHA-256 hashes (audited)."""
    from safecity.events.store import EventQuery
    from safecity.governance.export import export_events

    utc = lambda moment: moment.replace(tzinfo=timezone.utc) if moment and moment.tzinfo is None else moment  # noqa: E731
    store = open_store(load(config_path, store_url))
    query = EventQuery(camera=camera, type=event_type, after=utc(after), before=utc(before))
    manifest = _governed(lambda: export_events(store, query, target, local_actor_name(), reason, max_events))
    store.close()
    console.print(f"exported {manifest['events']} events, {len(manifest['files'])} files, to {target} (redacted)")


@app.command()
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


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
