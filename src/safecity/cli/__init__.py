"""The ``safecity`` command line. Every command has ``--help``.

Errors meant for the operator (a bad config, a broken video, a tampered log) are
printed as one clear message with a non-zero exit code, never as a traceback.

The commands live in modules named for what they do (``run``, ``audit``,
``watchlists``, ``users``, …); this module only assembles them into ``app``.
Each module imports its heavy dependencies inside the commands, so the command
line starts fast and ``safecity config check`` imports no model runtime.
"""

from __future__ import annotations

import os
import sys

import typer

from safecity.cli import audit, config, db, evaluate, export, incidents, retention, run, users, watchlists
from safecity.cli.common import (  # the helpers safecity.terminal.cli and scripts use
    ConfigOption,
    ReasonOption,
    StoreOption,
    console,
    err,
    fail,
    governed,
    load,
    local_actor_name,
    open_store,
    opened_store,
    setup_logging,
    store_session,
)
from safecity.terminal.cli import terminal_app  # typer commands; heavy imports stay lazy

__all__ = [
    "app", "main", "console", "err", "fail", "load", "open_store", "store_session", "opened_store", "governed",
    "local_actor_name", "setup_logging", "ConfigOption", "StoreOption", "ReasonOption",
]

app = typer.Typer(help="safecity: accountable video analytics.", no_args_is_help=True, add_completion=False)

# the order here is the order ``safecity --help`` lists them in
app.command()(run.run)
app.command()(run.analyze)
app.command("export")(export.export_command)
app.command()(evaluate.report)

audit_app = audit.audit_app
config_app = config.config_app
db_app = db.db_app
eval_app = evaluate.eval_app
bench_app = evaluate.bench_app
watchlist_app = watchlists.watchlist_app
retention_app = retention.retention_app
incident_app = incidents.incident_app
user_app = users.user_app

app.add_typer(audit_app, name="audit")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
app.add_typer(watchlist_app, name="watchlist")
app.add_typer(retention_app, name="retention")
app.add_typer(incident_app, name="incident")
app.add_typer(user_app, name="user")
app.add_typer(terminal_app, name="terminal")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
