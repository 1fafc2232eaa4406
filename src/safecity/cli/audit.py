"""``safecity audit``: verify, checkpoint, export and read the hash-chained audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from safecity.cli.common import ConfigOption, ReasonOption, StoreOption, console, fail, load, opened_store, store_session

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


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
        with store_session(config) as store:
            marks_list = [c.as_dict() for c in checkpoints(store.engine)]
            records = (r.stored() for r in AuditLog(store.engine).records())
            result = verify_with_checkpoints(records, marks_list, trusted)
        marks = str(len(marks_list))
    if not result.ok:
        raise fail(f"audit log FAILED verification at record {result.first_bad_seq}: {result.problem}", code=1)
    console.print(f"audit log OK: {result.records} records, chain intact, {marks} signed checkpoints valid")


@audit_app.command("checkpoint")
def audit_checkpoint(config_path: Optional[Path] = ConfigOption, store_url: Optional[str] = StoreOption) -> None:
    """Sign the chain's current head with this installation's Ed25519 key."""
    from safecity.governance.checkpoints import create_checkpoint, default_keys_dir, load_or_create_key

    config = load(config_path, store_url)
    with store_session(config) as store:
        mark = create_checkpoint(store.engine, load_or_create_key(default_keys_dir(config.store.url)))
    console.print(f"checkpoint at record {mark.seq}" if mark else "nothing new to checkpoint")


@audit_app.command("export")
def audit_export(
    target: Path = typer.Argument(..., help="JSONL file to write (a .manifest.json is written beside it)."),
    reason: str = ReasonOption,
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Export the audit log as JSONL for a regulator, with a manifest of hashes and checkpoints."""
    from safecity.governance.audit import local_actor
    from safecity.governance.checkpoints import export_jsonl

    with opened_store(config_path, store_url) as store:
        manifest = export_jsonl(store.engine, target, local_actor(), reason)
    console.print(f"exported {manifest['records']} records to {target} (sha256 {manifest['sha256'][:16]}…)")


@audit_app.command("tail")
def audit_tail(
    n: int = typer.Option(20, "-n", help="How many of the newest records."),
    config_path: Optional[Path] = ConfigOption,
    store_url: Optional[str] = StoreOption,
) -> None:
    """Show the newest audit records."""
    from safecity.governance.audit import AuditLog

    table = Table()
    for column in ("seq", "time", "actor", "action", "object", "reason"):
        table.add_column(column)
    with opened_store(config_path, store_url) as store:
        for r in AuditLog(store.engine).tail(n):
            table.add_row(str(r.seq), r.ts, r.actor, r.action, f"{r.object_type}:{r.object_id}", r.reason)
    console.print(table)
