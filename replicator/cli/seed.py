"""`replicator seed templates|plan|run` and `replicator seeds [show N]`: thin shells over
replicator.seed.jobs."""

from __future__ import annotations

import click

from replicator.cli.output import CONTEXT_SETTINGS, LazyChoice, emit, json_option, load, print_rows
from replicator.cli.progress import RichProgress


def _common(command: click.Command) -> click.Command:
    """The options `seed plan` and `seed run` share."""
    for option in reversed((
        click.argument("template"),
        click.option("--to-org", required=True, help="Target org (a name under [orgs])."),
        click.option("--method", type=LazyChoice("replicator.seed.plan:METHODS"), default="incremental",
                     show_default=True,
                     help="clean_and_insert deletes the target's records of the seeded objects first."),
        click.option("--run", default="last", show_default=True, help="Seed from the store as of this run."),
        click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
                     help="A value the template's {{ param.KEY }} expressions use (repeatable)."),
        click.option("--allow-production", is_flag=True,
                     help="Allow a production target (then at most 10,000 records)."),
        click.option("--disable-automations", is_flag=True,
                     help="Switch the target's automations on the seeded objects off for the seed "
                          "(journaled: back on afterwards, also after a crash)."),
        click.option("--only", help="With --disable-automations: only these (Type:Name, comma-separated)."),
        json_option,
    )):
        command = option(command)
    return command


def _request(template: str, to_org: str, method: str, run: str, params: tuple[str, ...],
             allow_production: bool, disable_automations: bool, only: str | None) -> object:
    from replicator.seed.jobs import SeedRequest, parse_params

    chosen = tuple(p.strip() for p in (only or "").split(",") if p.strip())
    return SeedRequest(template, to_org, method, parse_params(params), run, allow_production,
                       disable_automations, chosen)


@click.group(context_settings=CONTEXT_SETTINGS)
def seed() -> None:
    """Seed a sandbox with a masked, consistent slice of a backup (see README "Seeding sandboxes")."""


@seed.command("templates", context_settings=CONTEXT_SETTINGS)
@json_option
@click.pass_context
def seed_templates(ctx: click.Context, as_json: bool) -> None:
    """List the seed templates (yours in seed-templates/ beside the config, then the shipped ones)."""
    from replicator.seed.jobs import TemplatesRequest, seed_templates

    emit(seed_templates(load(ctx), TemplatesRequest()), as_json, print_rows)


@seed.command("plan", context_settings=CONTEXT_SETTINGS)
@_common
@click.pass_context
def seed_plan(ctx: click.Context, template: str, to_org: str, method: str, run: str, params: tuple[str, ...],
              allow_production: bool, disable_automations: bool, only: str | None, as_json: bool) -> None:
    """What a seed would copy, mask, delete, switch off and cost, before anything is written."""
    from replicator.seed.jobs import seed_plan

    request = _request(template, to_org, method, run, params, allow_production, disable_automations, only)
    emit(seed_plan(load(ctx), request), as_json)


@seed.command("run", context_settings=CONTEXT_SETTINGS)
@_common
@click.pass_context
def seed_run(ctx: click.Context, template: str, to_org: str, method: str, run: str, params: tuple[str, ...],
             allow_production: bool, disable_automations: bool, only: str | None, as_json: bool) -> None:
    """Seed the target org from the template (every record's outcome goes to the seeds ledger)."""
    from replicator.seed.jobs import seed_run

    request = _request(template, to_org, method, run, params, allow_production, disable_automations, only)
    with RichProgress(enabled=not as_json) as progress:
        result = seed_run(load(ctx), request, progress)
    emit(result, as_json)


@click.group(context_settings=CONTEXT_SETTINGS, invoke_without_command=True)
@json_option
@click.pass_context
def seeds(ctx: click.Context, as_json: bool) -> None:
    """The seeds ledger; `seeds show N` for one seed's status and failed records."""
    if ctx.invoked_subcommand is not None:
        return
    from replicator.seed.jobs import SeedsRequest
    from replicator.seed.jobs import seeds as list_seeds

    emit(list_seeds(load(ctx), SeedsRequest()), as_json, print_rows)


@seeds.command("show", context_settings=CONTEXT_SETTINGS)
@click.argument("seed_id", type=int)
@json_option
@click.pass_context
def seeds_show(ctx: click.Context, seed_id: int, as_json: bool) -> None:
    """One seed in OwnBackup's seed status shape (progress, counters, status), with failures."""
    from replicator.seed.jobs import SeedsRequest
    from replicator.seed.jobs import seeds as list_seeds

    emit(list_seeds(load(ctx), SeedsRequest(seed_id)), as_json)
