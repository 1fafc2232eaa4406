"""``safecity config``: check a configuration file (imports no model runtime)."""

from __future__ import annotations

from pathlib import Path

import typer

from safecity.cli.common import console, load

config_app = typer.Typer(help="Configuration files.", no_args_is_help=True)


@config_app.command("check")
def config_check(path: Path = typer.Argument(..., help="YAML config file.")) -> None:
    """Validate a config file and list its cameras."""
    config = load(path)
    for camera in config.cameras:
        state = "enabled" if camera.enabled else "disabled"
        console.print(f"{camera.name}: {camera.source} @ {camera.fps} fps, {', '.join(camera.analysers)} ({state})")
    console.print(f"config OK: {len(config.cameras)} cameras, store {config.store.url}")
