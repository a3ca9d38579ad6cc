"""`replicator automations list|off|on|restore`: thin shells over replicator.automations, plus the
check every command runs first: a killed run's switched-off automations come back on before the next
command against that org does anything, and the user is told.
"""

from __future__ import annotations

from pathlib import Path

import click

from replicator.cli.output import CONTEXT_SETTINGS, emit, json_option, load, names
from replicator.config import Config, ConfigError, load_config
from replicator.errors import ReplicatorError

ORG_OPTIONS = frozenset({"--org", "--to-org", "--from-org", "--source-org", "--target-org"})


@click.group(context_settings=CONTEXT_SETTINGS)
def automations() -> None:
    """Active automations of an org: list, switch off, switch back on."""


org_option = click.option("--org", "org_name", required=True, help="Org (a name under [orgs]).")


@automations.command("list")
@org_option
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, org_name: str, as_json: bool) -> None:
    """Active ApexTrigger, ValidationRule, Flow and WorkflowRule names per type (managed ones apart)."""
    from replicator.automations import AutomationsRequest, active_automations

    emit(active_automations(load(ctx), AutomationsRequest(org_name)), as_json)


@automations.command("off")
@org_option
@click.option("--only", help="Switch off only these (Type:Name,... e.g. ValidationRule:Account.Credit).")
@json_option
@click.pass_context
def off_cmd(ctx: click.Context, org_name: str, only: str | None, as_json: bool) -> None:
    """Switch the org's automations off until `automations on` (journaled in the storage folder)."""
    from replicator.automations import AutomationsRequest, automations_off

    emit(automations_off(load(ctx), AutomationsRequest(org_name, names(only))), as_json)


@automations.command("on")
@org_option
@json_option
@click.pass_context
def on_cmd(ctx: click.Context, org_name: str, as_json: bool) -> None:
    """Switch back on everything Replicator switched off in the org."""
    from replicator.automations import AutomationsRequest, automations_on

    emit(automations_on(load(ctx), AutomationsRequest(org_name)), as_json)


automations.add_command(on_cmd, "restore")


def orgs_named(config: Config, args: list[str]) -> list[str]:
    """The orgs a command line is about: its org options, and the org of its job (or of the config's
    only job, or its only org, which commands default to)."""
    found: list[str] = []
    jobs: list[str] = []
    for i, arg in enumerate(args):
        option, sep, value = arg.partition("=")
        if not sep and i + 1 < len(args):
            value = args[i + 1]
        if option in ORG_OPTIONS:
            found.append(value)
        elif option == "--job":
            jobs.append(value)
    if not found and not jobs:  # commands default to the only job (or the only org)
        if len(config.jobs) == 1:
            jobs = list(config.jobs)
        elif len(config.orgs) == 1:
            found = list(config.orgs)
    found += [config.jobs[j].org for j in jobs if j in config.jobs]
    return found


def recover_before(config_path: Path, args: list[str]) -> None:
    """Before a command runs: switch back on what a killed run left off in the orgs it names (nothing
    when the config cannot be read: the command itself says why)."""
    if not args or args[0] == "emulator" or {"-h", "--help"} & set(args):
        return
    if args[0] == "automations" and set(args[1:2]) & {"on", "restore"}:
        return  # the command does exactly this, and reports it
    try:
        config = load_config(config_path)
    except ConfigError:
        return
    orgs = orgs_named(config, args)
    if not orgs:
        return
    from replicator.automations import recover_interrupted

    try:
        for recovery in recover_interrupted(config, orgs):
            click.echo(recovery.text(), err=True)
    except (ReplicatorError, OSError) as exc:  # the command may not need the org: it goes on, warned
        why = exc.message if isinstance(exc, ReplicatorError) else f"{exc.strerror}: {exc.filename}"
        click.echo(f"warning: automations a killed run left switched off stay off: {why}", err=True)
