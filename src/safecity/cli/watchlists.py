"""``safecity watchlist``: governed watchlists (faces) and plate lists. Every change is audited."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from safecity.cli.common import ConfigOption, ReasonOption, StoreOption, console, fail, governed, opened_store

watchlist_app = typer.Typer(
    help="Governed watchlists (faces) and plate lists. Every change is audited.", no_args_is_help=True
)


@contextmanager
def _watchlists(config_path: Optional[Path], store_url: Optional[str]):
    """The watchlist service over the configured store, closed on the way out."""
    from safecity.governance.audit import local_actor
    from safecity.governance.watchlists import WatchlistService

    with opened_store(config_path, store_url) as store:
        yield WatchlistService(store.engine, local_actor())


def _governed_change(config_path: Optional[Path], store_url: Optional[str], change):
    """Apply ``change(service)``; a refused rule becomes a clear error."""
    with _watchlists(config_path, store_url) as service:
        return governed(lambda: change(service))


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
    list_id = _governed_change(
        config_path, store_url, lambda service: service.create_list(name, kind, reason, threshold, description)
    )
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
    with _watchlists(config_path, store_url) as service:
        if plate:
            entry = governed(lambda: service.add_plate_entry(name, label, plate, rules, reason))
        else:
            from safecity.faces.enrol import FaceEnroller

            for path in image:
                if not path.is_file():
                    raise fail(f"image not found: {path}")
            images = [(path.name, path.read_bytes()) for path in image]
            entry = governed(lambda: service.add_face_entry(name, label, images, rules, reason, FaceEnroller()))
    console.print(f"added entry {entry} to {name!r}, expires {rules.expires_at:%Y-%m-%d %H:%M} UTC")


@watchlist_app.command("list")
def watchlist_list(
    name: Optional[str] = typer.Argument(None, help="Only this list."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Show entries with their governance fields."""
    table = Table()
    for column in ("id", "list", "label", "plate/templates", "legal basis", "purpose", "authoriser", "expires", "state"):
        table.add_column(column)
    with _watchlists(config_path, store_url) as service:
        for e in service.entries(name):
            table.add_row(
                str(e.id), e.watchlist, e.label, e.plate or f"{e.templates} templates", e.legal_basis, e.purpose,
                e.authoriser, f"{e.expires_at:%Y-%m-%d %H:%M}", e.state,
            )
    console.print(table)


EntryArgument = typer.Argument(..., help="Entry id.")


def _entry_command(verb: str, doc: str, done: str) -> None:
    """``safecity watchlist VERB ENTRY --reason …``: call ``service.VERB(entry, reason)``, then print ``done``."""

    def command(
        entry: int = EntryArgument,
        reason: str = ReasonOption,
        config_path: Optional[Path] = ConfigOption,
        store_url: Optional[str] = StoreOption,
    ) -> None:
        _governed_change(config_path, store_url, lambda service: getattr(service, verb)(entry, reason))
        console.print(done.format(entry=entry))

    command.__doc__ = doc
    watchlist_app.command(verb)(command)


_entry_command(
    "approve",
    "Approve an entry (four eyes: not by its author); only approved entries match.",
    "entry {entry} approved: it matches from now until it expires",
)
_entry_command("expire", "End an entry now: it stops matching at once.", "entry {entry} expired")
_entry_command("remove", "Delete an entry and its templates (the audit record remains).", "entry {entry} removed")
