"""`replicator backup run` and `replicator catalog`: thin shells over replicator.backup."""

from __future__ import annotations

import click

from replicator.cli.output import CONTEXT_SETTINGS, emit, json_option, load, names
from replicator.cli.progress import RichProgress


@click.group(context_settings=CONTEXT_SETTINGS)
def backup() -> None:
    """Back up an org into the snapshot store."""


@backup.command("run", context_settings=CONTEXT_SETTINGS)
@click.option("--job", "job_name", help="Job to run (default: the only job in the config).")
@click.option("--objects", help="Back up only these objects (comma-separated API names).")
@click.option("--full", is_flag=True,
              help="Also reconcile every record id with the org (finds purged deletes).")
@json_option
@click.pass_context
def backup_run(ctx: click.Context, job_name: str | None, objects: str | None, full: bool,
               as_json: bool) -> None:
    """Run one backup now. Exit code: 0 completed, 2 partial, 1 failed/disabled/refused."""
    from replicator.backup.run import BackupRequest, run_backup

    config = load(ctx)
    request = BackupRequest(job_name, names(objects), full)
    with RichProgress(enabled=not as_json) as progress:
        result = run_backup(config, request, progress)
    emit(result, as_json)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--org", "org_name", required=True, help="Org to describe (a name under [orgs]).")
@click.option("--job", "job_name", help="Use this job's object selection (default: the recommended set).")
@json_option
@click.pass_context
def catalog(ctx: click.Context, org_name: str, job_name: str | None, as_json: bool) -> None:
    """Print the backup plan: every object and field, included or skipped, and why."""
    from replicator.backup.catalog import CatalogRequest
    from replicator.backup.catalog import catalog as plan

    emit(plan(load(ctx), CatalogRequest(org_name, job_name)), as_json)
