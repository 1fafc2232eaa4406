"""What every command shares: the consoles, the shared options, loading the config,
opening the store (and always closing it), and turning refused rules into errors.

Heavy imports (the store, the governance services) stay inside the functions so
that ``safecity --help`` and ``safecity config check`` start fast.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler

from safecity.config import Config, ConfigError, load_config, parse_config

if TYPE_CHECKING:
    from safecity.events.store import EventStore

T = TypeVar("T")

# piped output (logs, scripts, grep) gets wide lines instead of cells cut to 80 columns
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

ConfigOption = typer.Option(
    None, "--config", "-c", envvar="SAFECITY_CONFIG", help="YAML config file (default: ./safecity.yaml if present)."
)
StoreOption = typer.Option(None, "--store", help="Store URL, overriding the config's store.url.")
ReasonOption = typer.Option(..., "--reason", help="Why: recorded in the audit log.")


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


def open_store(config: Config) -> "EventStore":
    """The configured store, opened (and migrated); the caller closes it. Prefer :func:`store_session`."""
    from safecity.events.store import EventStore

    try:
        return EventStore.from_config(config.store)
    except Exception as error:
        raise fail(f"cannot open the store {config.store.url}: {error}") from None


@contextmanager
def store_session(config: Config) -> Iterator["EventStore"]:
    """Open the configured store and close it on the way out, however the command leaves."""
    store = open_store(config)
    try:
        yield store
    finally:
        store.close()


def opened_store(config_path: Optional[Path], store_url: Optional[str] = None):
    """:func:`store_session` over the config at ``config_path`` (with ``--store`` applied)."""
    return store_session(load(config_path, store_url))


def local_actor_name() -> str:
    from safecity.governance.audit import local_actor

    return local_actor()


def refused_as_error(action: Callable[[], T], errors: type[Exception] | tuple[type[Exception], ...]) -> T:
    """Run ``action``; one of ``errors`` (a refused rule) becomes a clear message and exit code 2."""
    try:
        return action()
    except errors as error:
        raise fail(str(error)) from None


def governed(action: Callable[[], T]) -> T:
    """Run a governed action (watchlists, incidents, exports), turning a refused rule into a clear error."""
    from safecity.governance.watchlists import GovernanceError

    return refused_as_error(action, GovernanceError)


def write_json(result: dict, json_out: Path) -> None:
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"written: {json_out}")


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=False)],
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
