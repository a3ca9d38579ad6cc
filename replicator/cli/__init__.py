"""The `replicator` command line: one module per command group, each command a thin shell.

A command parses its options, builds the job's request, calls the job and `emit`s the result
(replicator/cli/output.py); every `ReplicatorError` a job raises is mapped once, in `Root.invoke`,
to exit code and message (or a JSON error under --json). The emulator's commands (`sfemu.cli`) are
imported only when used, so ordinary commands never load the emulator.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from replicator import __version__
from replicator.cli.audit import audit, audit_tree
from replicator.cli.automations import automations, recover_before
from replicator.cli.backup import backup, catalog
from replicator.cli.check import check_cmd
from replicator.cli.config import config
from replicator.cli.demo import demo
from replicator.cli.export import diff_cmd, export_cmd, exports_cmd
from replicator.cli.gdpr import gdpr
from replicator.cli.output import CONTEXT_SETTINGS, JSON_KEY, fail
from replicator.cli.query import history, sql
from replicator.cli.restore import replicate_cmd, restore, restores_cmd
from replicator.cli.runs import runs
from replicator.cli.seed import seed, seeds
from replicator.cli.store import store
from replicator.config import CONFIG_ENV, DEFAULT_CONFIG
from replicator.errors import ReplicatorError

__all__ = ["cli", "main"]

LAZY_COMMANDS = {
    "emulator": "sfemu.cli:emulator",
}


class Root(click.Group):
    """The root group: emulator commands imported on first use, and the one error mapping."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Our commands and the lazy ones, sorted."""
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A lazy command is imported here, when it is used."""
        if cmd_name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        command = super().get_command(ctx, cmd_name)
        return None if command is None else audit_tree(command)  # every command's outcome is audited

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; a ReplicatorError becomes its exit code and message, never a traceback.

        First, automations a killed run left switched off in the org the command names come back on.
        """
        try:
            recover_before(ctx.params["config_path"], [*ctx._protected_args, *ctx.args])
            return super().invoke(ctx)
        except ReplicatorError as exc:
            fail(exc, bool(ctx.meta.get(JSON_KEY)))


@click.group(cls=Root, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="replicator")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), envvar=CONFIG_ENV,
    default=DEFAULT_CONFIG, show_default=True, show_envvar=True, help="Settings file.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """Replicator: self-hosted Salesforce backup, replication, restore and sandbox seeding."""
    ctx.obj = config_path


for command in (config, catalog, backup, runs, sql, history, demo, check_cmd, export_cmd, diff_cmd,
                exports_cmd, automations):
    cli.add_command(command)
cli.add_command(audit)
cli.add_command(store)
cli.add_command(seed)
cli.add_command(seeds)
cli.add_command(gdpr)
for command in (restore, restores_cmd, replicate_cmd):  # restore and replicate (issue 10)
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="replicator")
