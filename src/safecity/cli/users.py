"""``safecity user``: console and API users, their roles and passwords. Every change is audited."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from safecity.cli.common import ConfigOption, ReasonOption, StoreOption, console, opened_store, refused_as_error

user_app = typer.Typer(help="Console and API users, their roles and passwords. Every change is audited.", no_args_is_help=True)

PasswordStdinOption = typer.Option(False, "--password-stdin", help="Read the password from standard input.")
OptionalReasonOption = typer.Option("", "--reason", help="Why: recorded in the audit log.")
NameArgument = typer.Argument(..., help="User name.")


@contextmanager
def _users(config_path: Optional[Path], store_url: Optional[str]):
    """The user service over the configured store, closed on the way out."""
    from safecity.governance.audit import local_actor
    from safecity.governance.users import UserService

    with opened_store(config_path, store_url) as store:
        yield UserService(store.engine, local_actor())


def _change(config_path: Optional[Path], store_url: Optional[str], change) -> None:
    """Apply ``change(users)``; a refused change becomes a clear error."""
    from safecity.governance.users import UserError

    with _users(config_path, store_url) as users:
        refused_as_error(lambda: change(users), UserError)


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="User name (letters, digits, _ . @ -)."),
    role: str = typer.Option(..., help="viewer, operator, supervisor, auditor or admin."),
    password_stdin: bool = PasswordStdinOption,
    reason: str = OptionalReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Create a user (the first admin is created this way)."""
    password = _new_password(password_stdin)
    _change(config_path, store_url, lambda users: users.add(name, role, password, reason))
    console.print(f"created {role} {name!r}")


@user_app.command("list")
def user_list(config_path: Optional[Path] = ConfigOption, store_url: Optional[str] = StoreOption) -> None:
    """Show users, roles and whether they may sign in."""
    table = Table()
    for column in ("name", "role", "state", "created by", "created"):
        table.add_column(column)
    with _users(config_path, store_url) as users:
        for u in users.users():
            state = "active" if u.active else "disabled"
            table.add_row(u.name, u.role, state, u.created_by, f"{u.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@user_app.command("set-role")
def user_set_role(
    name: str = NameArgument,
    role: str = typer.Argument(..., help="New role."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Change a user's role; their open sessions end."""
    _change(config_path, store_url, lambda users: users.set_role(name, role, reason))
    console.print(f"{name!r} is now {role}")


def _activation_command(verb: str, active: bool, doc: str) -> None:
    """``safecity user disable|enable NAME --reason …``."""

    def command(
        name: str = NameArgument,
        reason: str = ReasonOption,
        config_path: Optional[Path] = ConfigOption,
        store_url: Optional[str] = StoreOption,
    ) -> None:
        _change(config_path, store_url, lambda users: users.set_active(name, active, reason))
        console.print(f"{name!r} {'enabled' if active else 'disabled'}")

    command.__doc__ = doc
    user_app.command(verb)(command)


_activation_command("disable", False, "Stop a user from signing in; their open sessions end.")
_activation_command("enable", True, "Let a disabled user sign in again.")


@user_app.command("password")
def user_password(
    name: str = NameArgument,
    password_stdin: bool = PasswordStdinOption,
    reason: str = OptionalReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Set a new password; the user's open sessions end."""
    password = _new_password(password_stdin)
    _change(config_path, store_url, lambda users: users.set_password(name, password, reason))
    console.print(f"password of {name!r} changed")


@user_app.command("permissions")
def user_permissions() -> None:
    """Print the role and permission table (the text of docs/permissions.md)."""
    from safecity.governance.users import permissions_markdown

    sys.stdout.write(permissions_markdown())
