"""`replicator restore plan|run|retry`, `restores` and `replicate`: thin shells over replicator.restore."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from replicator.cli.output import CONTEXT_SETTINGS, emit, json_option, load, names


def _selectors(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that choose what a restore brings back (shared by plan and run)."""
    for option in reversed((
        click.option("--run", "run", default="last", show_default=True,
                     help="Run number, 'last', or a timestamp (the newest run at or before it)."),
        click.option("--object", "obj", help="The object of the records to restore (API name)."),
        click.option("--ids", help="Comma-separated record Ids."),
        click.option("--where", help="FIELD = value (the value is bound, never pasted into a query)."),
        click.option("--with-related", type=click.Choice(["none", "children", "all"]), default="none",
                     show_default=True,
                     help="children: child records recursively; all: also missing parents."),
        click.option("--to-org", help="Target org (default: the org the run was taken from)."),
    )):
        command = option(command)
    return command


def _automation_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--disable-automations [--only Type:Name,...] (restore plan/run/retry and replicate)."""
    command = click.option("--only", help="With --disable-automations: only these (Type:Name,...).")(command)
    return click.option("--disable-automations", is_flag=True,
                        help="Switch the target's automations (triggers, validation and workflow rules, "
                             "flows) of the loaded objects off for the load, and exactly those back on "
                             "after (also after a crash).")(command)


def _automations(disable: bool, only: str | None) -> Any:
    from replicator.restore.switch import Automations

    if only is not None and not disable:
        raise click.UsageError("--only needs --disable-automations")
    chosen = names(only)
    return Automations(disable, tuple(chosen) if chosen is not None else None)


def _request(run: str, obj: str | None, ids: str | None, where: str | None, with_related: str,
             to_org: str | None, automations: Any, plan_file: Path | None = None,
             out: Path | None = None) -> Any:
    from replicator.restore.job import RestoreRequest

    chosen = names(ids)
    return RestoreRequest(run=run, object=obj, ids=tuple(chosen) if chosen is not None else None, where=where,
                          with_related=with_related, to_org=to_org, plan_file=plan_file, out=out,
                          automations=automations)


@click.group("restore", context_settings=CONTEXT_SETTINGS)
def restore() -> None:
    """Put backed-up records back into an org: plan first, then run (see README "Restore")."""


@restore.command("plan", context_settings=CONTEXT_SETTINGS)
@_selectors
@_automation_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan to this file.")
@json_option
@click.pass_context
def plan_cmd(ctx: click.Context, run: str, obj: str | None, ids: str | None, where: str | None,
             with_related: str, to_org: str | None, disable_automations: bool, only: str | None,
             out: Path | None, as_json: bool) -> None:
    """Show what a restore would do and cost (nothing is written to the org)."""
    from replicator.restore.job import plan_restore

    request = _request(run, obj, ids, where, with_related, to_org, _automations(disable_automations, only),
                       out=out)
    emit(plan_restore(load(ctx), request), as_json)


@restore.command("run", context_settings=CONTEXT_SETTINGS)
@_selectors
@_automation_options
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Run a plan saved by 'restore plan --out' (its records, the org's state of now).")
@json_option
@click.pass_context
def run_cmd(ctx: click.Context, run: str, obj: str | None, ids: str | None, where: str | None,
            with_related: str, to_org: str | None, disable_automations: bool, only: str | None,
            plan_file: Path | None, as_json: bool) -> None:
    """Restore: per object inserted, updated, undeleted, skipped, failed, and the API calls used."""
    from replicator.cli.progress import RichProgress
    from replicator.restore.job import run_restore

    request = _request(run, obj, ids, where, with_related, to_org, _automations(disable_automations, only),
                       plan_file=plan_file)
    with RichProgress(enabled=not as_json) as progress:
        result = run_restore(load(ctx), request, progress)
    emit(result, as_json)


@restore.command("retry", context_settings=CONTEXT_SETTINGS)
@click.argument("restore_id", type=int)
@_automation_options
@json_option
@click.pass_context
def retry_cmd(ctx: click.Context, restore_id: int, disable_automations: bool, only: str | None,
              as_json: bool) -> None:
    """Restore again only the records restore RESTORE_ID failed."""
    from replicator.cli.progress import RichProgress
    from replicator.restore.job import retry_restore

    with RichProgress(enabled=not as_json) as progress:
        result = retry_restore(load(ctx), restore_id, progress, _automations(disable_automations, only))
    emit(result, as_json)


@click.command("restores", context_settings=CONTEXT_SETTINGS)
@click.argument("action", required=False, type=click.Choice(["show"]))
@click.argument("restore_id", required=False, type=int)
@json_option
@click.pass_context
def restores_cmd(ctx: click.Context, action: str | None, restore_id: int | None, as_json: bool) -> None:
    """The restores ledger; 'restores show N': every record of restore N (old Id, new Id, action, error)."""
    from replicator.restore.ledger import RestoresRequest, restores_ledger

    if action == "show" and restore_id is None:
        raise click.UsageError("restores show needs a restore number")
    emit(restores_ledger(load(ctx), RestoresRequest(restore_id)), as_json)


@click.command("replicate", context_settings=CONTEXT_SETTINGS)
@click.option("--run", "run", default="last", show_default=True,
              help="Run number, 'last', or a timestamp (the newest run at or before it).")
@click.option("--to-org", required=True, help="The org to copy into (typically a sandbox).")
@click.option("--objects", help="Only these objects (comma-separated API names; default all).")
@click.option("--plan", "plan_only", is_flag=True, help="Only show what it would do and cost.")
@_automation_options
@json_option
@click.pass_context
def replicate_cmd(ctx: click.Context, run: str, to_org: str, objects: str | None, plan_only: bool,
                  disable_automations: bool, only: str | None, as_json: bool) -> None:
    """Copy a whole snapshot (or chosen objects) into another org, parents first, Ids remapped."""
    from replicator.cli.progress import RichProgress
    from replicator.restore.replicate import ReplicateRequest, replicate

    request = ReplicateRequest(to_org=to_org, run=run, objects=names(objects), plan_only=plan_only,
                               automations=_automations(disable_automations, only))
    with RichProgress(enabled=not as_json and not plan_only) as progress:
        result = replicate(load(ctx), request, progress)
    emit(result, as_json)
