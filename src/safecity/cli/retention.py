"""``safecity retention``: delete what is past its keeping period."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from safecity.cli.common import ConfigOption, StoreOption, console, load, local_actor_name, store_session

retention_app = typer.Typer(help="Retention limits: delete what is past its keeping period.", no_args_is_help=True)


@retention_app.command("run")
def retention_run(
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be deleted; delete nothing."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Delete events and media past the configured retention limits (audited)."""
    from safecity.governance.retention import RetentionJob

    config = load(config_path, store_url)
    with store_session(config) as store:
        report = RetentionJob(store, config.retention, actor=local_actor_name()).run(dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    table = Table(title=f"retention: {verb}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("older than")
    for event_type, count in sorted(report.events_by_type.items()):
        table.add_row(f"{event_type} events", str(count), report.cutoffs[event_type])
    table.add_row("media of events without an alert", str(report.media_files), report.cutoffs["media"])
    console.print(table)
