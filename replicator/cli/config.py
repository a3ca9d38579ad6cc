"""`replicator config check|show`: thin shells over replicator.settings."""

from __future__ import annotations

import click

from replicator.cli.output import CONTEXT_SETTINGS, emit, json_option, load


@click.group(context_settings=CONTEXT_SETTINGS)
def config() -> None:
    """Validate and inspect the settings file."""


@config.command(context_settings=CONTEXT_SETTINGS)
@json_option
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Validate the settings file and summarise it; unset secret variables are reported, not fatal."""
    from replicator.settings import ConfigCheckRequest, check_config

    result = check_config(load(ctx), ConfigCheckRequest())
    emit(result, as_json)
    if not as_json:
        for warning in result.warnings():
            click.echo(f"  {warning}", err=True)


@config.command(context_settings=CONTEXT_SETTINGS)
@json_option
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective settings with defaults filled in; secrets are always masked."""
    from replicator.settings import ConfigShowRequest, show_config

    emit(show_config(load(ctx), ConfigShowRequest()), as_json)
