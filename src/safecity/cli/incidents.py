"""``safecity incident``: the only scope in which cross-camera search runs (audited, expiring)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, TypeVar

import typer
from rich.table import Table

from safecity.cli.common import ConfigOption, ReasonOption, StoreOption, console, governed, local_actor_name, opened_store

T = TypeVar("T")

incident_app = typer.Typer(
    help="Incidents: the only scope in which cross-camera search runs (audited, expiring).", no_args_is_help=True
)


def _incidents(config_path: Optional[Path], store_url: Optional[str], action: Callable[..., T]) -> T:
    """Run ``action(service)`` on the configured store; a refused rule becomes a clear error."""
    from safecity.governance.incidents import IncidentService

    with opened_store(config_path, store_url) as store:
        return governed(lambda: action(IncidentService(store, local_actor_name())))


@incident_app.command("open")
def incident_open(
    title: str = typer.Argument(..., help="What happened."),
    reason: str = typer.Option(..., "--reason", help="Why a search is needed: recorded in the audit log."),
    days: float = typer.Option(7, help="The incident and its results expire after this many days (max 30)."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Open an incident."""
    incident = _incidents(config_path, store_url, lambda service: service.open(title, reason, days))
    console.print(f"incident {incident} open for {days:g} days")


@incident_app.command("search")
def incident_search(
    incident: int = typer.Argument(..., help="Open incident id."),
    event: int = typer.Option(..., "--event", help="Object event (a tracked person or vehicle) to follow."),
    reason: str = ReasonOption,
    window: float = typer.Option(30, help="Minutes before and after the event to look in."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Find likely reappearances of a tracked person or vehicle on other cameras (by clothing/colour)."""
    found = _incidents(config_path, store_url, lambda service: service.search(incident, event, reason, window))
    table = Table(title=f"incident {incident}: {len(found)} likely reappearances of event {event}")
    for column in ("event", "camera", "label", "time", "similarity"):
        table.add_column(column)
    for r in found:
        table.add_row(str(r.event_id), r.camera, r.label or "", f"{r.start_time:%Y-%m-%d %H:%M:%S}", f"{r.score:.3f}")
    console.print(table)


@incident_app.command("close")
def incident_close(
    incident: int = typer.Argument(..., help="Incident id."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Close an incident; its search results are deleted."""
    deleted = _incidents(config_path, store_url, lambda service: service.close(incident, reason))
    console.print(f"incident {incident} closed, {deleted} search results deleted")
