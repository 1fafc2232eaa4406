"""``safecity db``: the database schema."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from safecity.cli.common import ConfigOption, StoreOption, console, opened_store

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(config_path: Optional[Path] = ConfigOption, store_url: Optional[str] = StoreOption) -> None:
    """Apply the schema migrations to the configured store."""
    from safecity.db import current_revision

    with opened_store(config_path, store_url) as store:  # opening migrates
        console.print(f"schema at revision {current_revision(store.engine)}")
