"""``safecity export``: events with redacted snapshots and a manifest of hashes (audited)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from safecity.cli.common import ConfigOption, StoreOption, console, governed, local_actor_name, opened_store


def _utc(moment: Optional[datetime]) -> Optional[datetime]:
    """A time given without a zone is UTC."""
    return moment.replace(tzinfo=timezone.utc) if moment and moment.tzinfo is None else moment


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

    with opened_store(config_path, store_url) as store:
        query = EventQuery(camera=camera, type=event_type, after=_utc(after), before=_utc(before))
        manifest = governed(lambda: export_events(store, query, target, local_actor_name(), reason, max_events))
    console.print(f"exported {manifest['events']} events, {len(manifest['files'])} files, to {target} (redacted)")
