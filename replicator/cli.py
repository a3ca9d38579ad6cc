"""The `replicator` command line: thin click shells over the modules below it (see docs/DESIGN)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import CONFIG_ENV, DEFAULT_CONFIG, Config, ConfigError, load_config

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# --- Emulator commands --------------------------------------------------------------------------
# The emulator (replicator/emulator/cli.py) owns these commands. They are imported only when used,
# so ordinary commands never load the emulator and the emulator stays a separate world.
LAZY_COMMANDS = {
    "emulator": "replicator.emulator.cli:emulator",
    "demo": "replicator.emulator.cli:demo",
}


class LazyGroup(click.Group):
    """A group whose emulator commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="replicator")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), envvar=CONFIG_ENV,
    default=DEFAULT_CONFIG, show_default=True, show_envvar=True, help="Settings file.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """Replicator: self-hosted Salesforce backup, replication, restore and sandbox seeding."""
    ctx.obj = config_path


def _load(ctx: click.Context, as_json: bool) -> Config:
    """Load the config or exit 1 with the file, key and reason (as JSON on stdout under --json)."""
    try:
        return load_config(ctx.obj)
    except ConfigError as exc:
        if as_json:
            _emit({"ok": False, "error": {"path": str(exc.path), "key": exc.key, "message": exc.message}})
            ctx.exit(1)
        raise click.ClickException(str(exc)) from None


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@cli.group(context_settings=CONTEXT_SETTINGS)
def config() -> None:
    """Validate and inspect the settings file."""


@config.command(context_settings=CONTEXT_SETTINGS)
@json_option
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Validate the settings file and summarise it; unset secret variables are reported, not fatal."""
    cfg = _load(ctx, as_json)
    unset = [secret.env for _, secret in cfg.secrets() if not secret.is_set]
    if as_json:
        _emit({
            "ok": True,
            "path": str(cfg.path),
            "storage": str(cfg.storage.path),
            "orgs": {name: {"login_url": org.login_url, "auth": org.auth.method, "sandbox": org.sandbox}
                     for name, org in cfg.orgs.items()},
            "jobs": {name: {"org": job.org, "kind": job.kind, "schedule": job.schedule}
                     for name, job in cfg.jobs.items()},
            "unset_env": unset,
        })
        return
    click.echo(f"{cfg.path}: OK")
    click.echo(f"  storage: {cfg.storage.path}")
    for name, org in cfg.orgs.items():
        kind = "sandbox" if org.sandbox else "production"
        click.echo(f"  org {name}: {org.login_url} ({kind}, auth {org.auth.method}, API v{org.api_version})")
    for name, job in cfg.jobs.items():
        click.echo(f"  job {name}: {job.kind} at {job.schedule} on org {job.org}, "
                   f"API cap {job.api_cap_percent}%, retention {job.retention}")
    for env in unset:
        click.echo(f"  warning: environment variable {env} is not set", err=True)


@config.command(context_settings=CONTEXT_SETTINGS)
@json_option
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective settings with defaults filled in; secrets are always masked."""
    data = _load(ctx, as_json).as_dict()
    if as_json:
        _emit(data)
        return
    _print_tree(data, 0)


def _print_tree(data: dict[str, Any], depth: int) -> None:
    pad = "  " * depth
    for key, value in data.items():
        if isinstance(value, dict) and set(value) == {"env", "value", "set"}:
            state = "set" if value["set"] else "NOT SET"
            click.echo(f"{pad}{key}: {value['value']} (from ${value['env']}, {state})")
        elif isinstance(value, dict):
            click.echo(f"{pad}{key}:")
            _print_tree(value, depth + 1)
        else:
            click.echo(f"{pad}{key}: {json.dumps(value)}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="replicator")
