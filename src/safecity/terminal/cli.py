"""``safecity terminal``: run an access terminal on a camera, and manage sites and enrolments.

    safecity terminal --camera /dev/video0 --site hq --badge 1234            # one attempt
    safecity terminal --camera rtsp://… --site hq --server https://… --user door-1 < badges
    safecity terminal site create hq --reason "…"
    safecity terminal enrol --site hq --badge 1234 --label "A. Person" --image a.jpg \\
        --consent-by "A. Person" --consent-at 2026-11-29T09:00 --consent-method "signed form" --reason "…"

Running a terminal: claimed identities come from ``--badge`` or, one per line, from
standard input (a badge reader or a keypad that types). For each, the terminal shows
a random challenge, reads frames from the camera for the challenge's time limit,
decides on its local copy of the site, queues the decision and syncs it. With
``--server`` it talks to a central safecity over HTTP as a ``terminal`` user
(password from ``SAFECITY_TERMINAL_PASSWORD``); without it, to the configured store.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

import typer

terminal_app = typer.Typer(
    help="Access terminals: 1:1 face verification with a liveness challenge (consent-based, per site).",
    invoke_without_command=True,
    no_args_is_help=False,
)
site_app = typer.Typer(help="Terminal sites and their settings (every change audited).", no_args_is_help=True)
terminal_app.add_typer(site_app, name="site")

ReasonOption = typer.Option(..., "--reason", help="Why: recorded in the audit log.")
ConfigOption = typer.Option(None, "--config", "-c", envvar="SAFECITY_CONFIG", help="YAML config file.")
StoreOption = typer.Option(None, "--store", help="Store URL, overriding the config's store.url.")


def _cli():
    from safecity import cli

    return cli


def _service(config_path: Optional[Path], store_url: Optional[str]):
    from safecity.governance.audit import local_actor
    from safecity.terminal.service import TerminalService

    cli = _cli()
    store = cli.open_store(cli.load(config_path, store_url))
    return store, TerminalService(store.engine, local_actor())


def _ruled(action):
    from safecity.terminal.service import TerminalError

    try:
        return action()
    except (TerminalError, ValueError) as error:
        raise _cli().fail(str(error)) from None


@terminal_app.callback()
def terminal(
    ctx: typer.Context,
    camera: Optional[str] = typer.Option(None, "--camera", help="Camera source: a file, rtsp://… or http(s)://…"),
    site: Optional[str] = typer.Option(None, "--site", help="The site this terminal belongs to."),
    name: str = typer.Option("terminal-1", "--terminal", help="This terminal's name (unique within the site)."),
    badge: Optional[str] = typer.Option(None, "--badge", help="Claimed identity (badge id or PIN); default: one per line on stdin."),
    server: Optional[str] = typer.Option(None, "--server", help="Central safecity URL; default: the configured store."),
    user: Optional[str] = typer.Option(None, "--user", help="The terminal's account on the server (role terminal)."),
    state: Optional[Path] = typer.Option(None, "--state", help="The terminal's local SQLite file (default var/terminal-SITE-NAME.db)."),
    fps: float = typer.Option(5.0, help="Frames a second read from the camera during a challenge."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Run a terminal (with --camera and --site), or manage sites and enrolments (sub-commands)."""
    if ctx.invoked_subcommand is not None:
        return
    cli = _cli()
    if not camera or not site:
        typer.echo(ctx.get_help())
        raise typer.Exit(0 if not (camera or site) else 2)
    from safecity.terminal.device import HttpCentral, StoreCentral, TerminalDevice

    store = None
    if server:
        password = os.environ.get("SAFECITY_TERMINAL_PASSWORD", "")
        if not user or not password:
            raise cli.fail("--server needs --user and the password in SAFECITY_TERMINAL_PASSWORD")
        central = HttpCentral(server, user, password)
    else:
        from safecity.governance.audit import local_actor

        store = cli.open_store(cli.load(config_path, store_url))
        central = StoreCentral(store, f"{local_actor()}@{site}/{name}")
    path = state or Path("var") / f"terminal-{site}-{name}.db"
    try:
        device = TerminalDevice(site, name, path, central)
    except ValueError as error:
        raise cli.fail(str(error)) from None
    try:
        run_terminal(device, camera, fps, [badge] if badge else _stdin_badges())
    finally:
        if store is not None:
            store.close()


def _stdin_badges() -> Iterator[str]:
    for line in sys.stdin:
        line = line.strip()
        if line:
            yield line


def run_terminal(device, camera: str, fps: float, badges, out=None) -> list:
    """The terminal loop: for each badge, challenge, capture, decide, queue, sync. Returns the decisions."""
    from safecity.sources.video import SourceError, VideoSource
    from safecity.terminal.liveness import ACTIONS

    cli = _cli()
    say = out or (lambda text: cli.console.print(text, highlight=False))
    try:
        device.refresh(force=True)
        device.settings()
    except (RuntimeError, PermissionError, ValueError) as error:
        raise cli.fail(str(error)) from None
    sent, queued = device.sync()
    say(f"terminal {device.site}/{device.terminal}: {device.state.people()} enrolled, "
        f"{'online' if device.online else 'OFFLINE (local copy)'}, {queued} decisions queued")
    source = VideoSource(f"{device.site}/{device.terminal}", camera, fps, realtime=False)
    frames_iter = None
    decisions = []
    try:
        for badge in badges:
            if frames_iter is None or source.live:  # a live camera: fresh frames, not ones buffered while waiting
                if frames_iter is not None:
                    frames_iter.close()
                frames_iter = source.frames()
            device.refresh()
            rules = device.settings().rules()
            required = device.challenge()
            say("challenge: " + " -> ".join(f"{ACTIONS[a]}, then look straight" for a in required))
            captured, first = [], None
            for frame in frames_iter:
                first = frame.pts if first is None else first
                captured.append((frame.pts - first, frame.image))
                if frame.pts - first >= rules.time_limit or len(captured) >= 60:
                    break
            if not captured:
                raise cli.fail(f"the camera {camera} gave no frames")
            try:
                decision = device.attempt(badge, captured, required)
            except ValueError as error:
                say(f"[red]refused:[/] {error}")
                continue
            decisions.append(decision)
            verdict = "[green]GRANTED[/]" if decision.granted else "[red]DENIED[/]"
            say(f"{verdict} {decision.label or ''} — {decision.reason}")
            sent, queued = device.sync()
            if queued:
                say(f"server unreachable: {queued} decisions queued locally ({device.last_error})")
    except SourceError as error:
        raise cli.fail(str(error)) from None
    finally:
        if frames_iter is not None:
            frames_iter.close()
    return decisions


@terminal_app.command("sync")
def sync(
    site: str = typer.Option(..., "--site"),
    name: str = typer.Option("terminal-1", "--terminal"),
    server: Optional[str] = typer.Option(None, "--server"),
    user: Optional[str] = typer.Option(None, "--user"),
    state: Optional[Path] = typer.Option(None, "--state"),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Refresh the terminal's copy and upload its queued decisions now."""
    from safecity.terminal.device import HttpCentral, StoreCentral, TerminalDevice

    cli = _cli()
    store = None
    if server:
        central = HttpCentral(server, user or "", os.environ.get("SAFECITY_TERMINAL_PASSWORD", ""))
    else:
        from safecity.governance.audit import local_actor

        store = cli.open_store(cli.load(config_path, store_url))
        central = StoreCentral(store, f"{local_actor()}@{site}/{name}")
    try:
        device = TerminalDevice(site, name, state or Path("var") / f"terminal-{site}-{name}.db", central)
        fresh = device.refresh(force=True)
        sent, queued = device.sync()
    except (RuntimeError, PermissionError, ValueError) as error:
        raise cli.fail(str(error)) from None
    if store is not None:
        store.close()
    cli.console.print(f"copy {'refreshed' if fresh else 'NOT refreshed (server unreachable)'}; {sent} decisions uploaded, {queued} still queued")
    if queued:
        raise typer.Exit(1)


@site_app.command("create")
def site_create(
    name: str = typer.Argument(..., help="Site name (letters, digits, _ . -)."),
    description: str = typer.Option("", help="What and where the site is."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Create a terminal site with the default (measured) settings."""
    store, service = _service(config_path, store_url)
    site_id = _ruled(lambda: service.create_site(name, reason, description))
    store.close()
    _cli().console.print(f"created terminal site {name!r} (id {site_id})")


@site_app.command("set")
def site_set(
    name: str = typer.Argument(..., help="Site name."),
    setting: list[str] = typer.Option(..., "--set", help="key=value (repeatable), e.g. threshold=0.6, steps=4."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Change site settings (audited with the values before and after)."""
    import json

    changes = {}
    for item in setting:
        key, sep, value = item.partition("=")
        if not sep:
            raise _cli().fail(f"--set {item!r}: use key=value")
        try:
            changes[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            changes[key.strip()] = value.split(",") if key.strip() == "actions" else value
    store, service = _service(config_path, store_url)
    settings = _ruled(lambda: service.update_settings(name, changes, reason))
    store.close()
    _cli().console.print(f"{name}: " + ", ".join(f"{k}={getattr(settings, k)}" for k in changes))


@site_app.command("show")
def site_show(config_path: Optional[Path] = ConfigOption, store_url: Optional[str] = StoreOption) -> None:
    """List sites with their settings."""
    store, service = _service(config_path, store_url)
    for view in service.sites():
        _cli().console.print(f"[bold]{view.name}[/] ({view.enrolments} enrolled) {view.settings.model_dump()}")
    store.close()


@terminal_app.command("enrol")
def enrol(
    site: str = typer.Option(..., "--site"),
    badge: str = typer.Option(..., "--badge", help="The badge id (or PIN) the person will present."),
    label: str = typer.Option(..., "--label", help="The person's name, as door events show it."),
    image: list[Path] = typer.Option(..., "--image", help="Enrolment photo (repeatable, up to 5)."),
    consent_by: str = typer.Option(..., "--consent-by", help="Who consented (the person or their representative)."),
    consent_at: datetime = typer.Option(..., "--consent-at", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], help="When (UTC)."),
    consent_method: str = typer.Option(..., "--consent-method", help="How, e.g. 'signed paper form'."),
    consent_ref: str = typer.Option("", "--consent-ref", help="The consent form's reference."),
    expires: Optional[datetime] = typer.Option(None, "--expires", formats=["%Y-%m-%d"], help="End of access (UTC)."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Enrol a consenting person at a site (templates stay in the site's own tables)."""
    from safecity.terminal.service import Consent, FaceEnroller

    for path in image:
        if not path.is_file():
            raise _cli().fail(f"image not found: {path}")
    consent = Consent(consent_by, consent_at.replace(tzinfo=timezone.utc), consent_method, consent_ref)
    images = [(p.name, p.read_bytes()) for p in image]
    store, service = _service(config_path, store_url)
    entry = _ruled(lambda: service.enrol(
        site, badge, label, consent, images, reason, FaceEnroller(),
        expires.replace(tzinfo=timezone.utc) if expires else None,
    ))
    store.close()
    _cli().console.print(f"enrolled {label!r} at {site!r} (enrolment {entry})")


@terminal_app.command("withdraw")
def withdraw(
    site: str = typer.Option(..., "--site"),
    enrolment: int = typer.Argument(..., help="Enrolment id."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Consent withdrawn: delete the enrolment and its templates now (terminals drop it at their next refresh)."""
    store, service = _service(config_path, store_url)
    _ruled(lambda: service.withdraw(site, enrolment, reason))
    store.close()
    _cli().console.print(f"enrolment {enrolment} withdrawn and its templates deleted")


@terminal_app.command("list")
def list_enrolments(
    site: str = typer.Option(..., "--site"),
    reason: str = typer.Option("", "--reason", help="Why (recorded: reading who is enrolled is audited)."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Who is enrolled at a site, with each consent record."""
    from rich.table import Table

    store, service = _service(config_path, store_url)
    views = _ruled(lambda: service.enrolments(site, reason))
    store.close()
    table = Table()
    for column in ("id", "label", "badge", "consent by", "consent at", "how", "ref", "recorded by", "templates"):
        table.add_column(column)
    for v in views:
        table.add_row(str(v.id), v.label, v.badge, v.consent_subject, f"{v.consent_at:%Y-%m-%d %H:%M}", v.consent_method,
                      v.consent_reference, v.consent_recorded_by, str(v.templates))
    _cli().console.print(table)


@terminal_app.command("unlock")
def unlock(
    site: str = typer.Option(..., "--site"),
    name: Optional[str] = typer.Option(None, "--terminal", help="Unlock this terminal."),
    badge: Optional[str] = typer.Option(None, "--badge", help="Unlock this badge."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Lift a lockout (of a badge, a terminal, or the whole site) on the central server."""
    store, service = _service(config_path, store_url)
    _ruled(lambda: service.unlock(site, reason, name, badge))
    store.close()
    _cli().console.print("unlocked")

