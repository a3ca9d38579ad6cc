"""The `replicator` command line: thin click shells over the modules below it (see docs/DESIGN)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import click

from replicator import __version__
from replicator.config import CONFIG_ENV, DEFAULT_CONFIG, Config, ConfigError, load_config

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# --- Emulator commands --------------------------------------------------------------------------
# The emulator (sfemu/cli.py) owns these commands. They are imported only when used,
# so ordinary commands never load the emulator and the emulator stays a separate world.
LAZY_COMMANDS = {
    "emulator": "sfemu.cli:emulator",
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


# --- Catalog (thin shell over replicator.catalog.plan_org) -------------------------------------


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--org", "org_name", required=True, help="Org to describe (a name under [orgs]).")
@click.option("--job", "job_name", help="Use this job's object selection (default: the recommended set).")
@json_option
@click.pass_context
def catalog(ctx: click.Context, org_name: str, job_name: str | None, as_json: bool) -> None:
    """Print the backup plan: every object and field, included or skipped, and why."""
    from replicator.config import ObjectSelection
    from replicator.salesforce.catalog import plan_org
    from replicator.salesforce.client import OrgClient, OrgError

    cfg = _load(ctx, as_json)
    if org_name not in cfg.orgs:
        known = ", ".join(cfg.orgs) or "none"
        raise click.ClickException(f"no org {org_name!r} in {cfg.path} (orgs: {known})")
    selection = ObjectSelection()
    if job_name is not None:
        if job_name not in cfg.jobs:
            raise click.ClickException(f"no job {job_name!r} in {cfg.path}")
        selection = cfg.jobs[job_name].objects
    try:
        plans = plan_org(OrgClient(cfg.orgs[org_name]), selection)
    except (OrgError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _emit({"org": org_name, "objects": [p.to_json() for p in plans]})
        return
    for plan in plans:
        if not plan.included:
            click.echo(f"- {plan.name}: skipped ({plan.reason})")
            continue
        how = f"{plan.method}, cursor {plan.cursor or 'none (full copy)'}"
        if plan.filter_by:
            how += f", queried per {plan.filter_by[1]} id ({plan.filter_by[0]} IN ...)"
        click.echo(f"+ {plan.name}: {plan.records} records ({how})")
        for f in plan.fields:
            mark = "+" if f.included else "-"
            note = f" ({f.reason})" if f.reason else ""
            click.echo(f"    {mark} {f.name} {f.type}{note}")
    included = sum(p.included for p in plans)
    click.echo(f"{included} objects backed up, {len(plans) - included} skipped")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="replicator")


# --- Backups, runs and time travel (thin shells over replicator.backup.run and the snapshot store) ----


def _store(cfg: Config) -> Any:
    """The snapshot store, read-only; a clear error before the first backup."""
    from replicator.errors import NotFound
    from replicator.store.repository import Repository

    try:
        return Repository(cfg.storage.path).open_read()
    except NotFound as exc:
        raise click.ClickException(exc.message) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@cli.group(context_settings=CONTEXT_SETTINGS)
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
    from replicator.backup.run import BackupError, RichReporter, run_backup

    cfg = _load(ctx, as_json)
    names = [o.strip() for o in objects.split(",") if o.strip()] if objects else None
    try:
        with RichReporter(enabled=not as_json) as reporter:
            result = run_backup(cfg, job_name, objects=names, full=full, reporter=reporter)
    except (BackupError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _emit({"run_id": result.run_id, "status": result.status, "message": result.message,
               "api_calls": result.api_calls, "seconds": round(result.seconds, 2),
               "objects": len(result.sections)})
    else:
        click.echo(f"run {result.run_id}: {result.status} ({result.message}); "
                   f"{result.api_calls} API calls, {result.seconds:.1f} s")
    ctx.exit({"completed": 0, "partial": 2}.get(result.status, 1))


@cli.group(context_settings=CONTEXT_SETTINGS, invoke_without_command=True)
@json_option
@click.pass_context
def runs(ctx: click.Context, as_json: bool) -> None:
    """List backup runs (newest first); `runs show N` for one run's objects."""
    if ctx.invoked_subcommand is not None:
        return
    rows = [_jsonable(r) for r in _store(_load(ctx, as_json)).ledger.runs()]
    rows.sort(key=lambda r: r["run_id"], reverse=True)
    if as_json:
        _emit(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("Run", "Job", "Kind", "Started", "Status", "Message")
    for r in rows:
        table.add_row(str(r["run_id"]), str(r.get("job")), str(r.get("kind")), str(r.get("started_at")),
                      str(r["status"]), str(r.get("message") or ""))
    Console().print(table)


@runs.command("show", context_settings=CONTEXT_SETTINGS)
@click.argument("run_id", type=int)
@json_option
@click.pass_context
def runs_show(ctx: click.Context, run_id: int, as_json: bool) -> None:
    """One run: its status and, per object, what was backed up and what failed."""
    store = _store(_load(ctx, as_json))
    run = store.ledger.run(run_id)
    if run is None:
        raise click.ClickException(f"no run {run_id}")
    sections = [_jsonable(s) for s in store.ledger.sections(run_id)]
    if as_json:
        _emit({"run": _jsonable(run), "sections": sections})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"run {run_id} ({run.get('job')}): [bold]{run['status']}[/] {run.get('message') or ''}")
    table = Table("Object", "Status", "Items", "Ins", "Upd", "Del", "API", "Method", "Org", "Store",
                  "Message")
    for s in sections:
        table.add_row(*(str(s.get(k) if s.get(k) is not None else "") for k in (
            "object", "status", "items", "inserted", "updated", "deleted", "api_calls", "method",
            "org_count", "store_count", "message")))
    console.print(table)


def _print_table(table: Any, as_json: bool, as_csv: bool) -> None:
    """An Arrow table as JSON rows, CSV or a terminal table."""
    if as_json:
        _emit(_jsonable(table.to_pylist()))
    elif as_csv:
        import sys

        import pyarrow.csv as pacsv

        pacsv.write_csv(table, sys.stdout.buffer)
    else:
        from rich.console import Console
        from rich.table import Table

        out = Table(*table.column_names)
        for row in table.to_pylist():
            out.add_row(*("" if v is None else str(v) for v in row.values()))
        Console().print(out)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("query")
@click.option("--as-of", help="Run number or timestamp: object views show the state at that moment.")
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.pass_context
def sql(ctx: click.Context, query: str, as_of: str | None, as_json: bool, as_csv: bool) -> None:
    """Query the snapshot store read-only, e.g. sql "SELECT Name FROM Account" --as-of 3."""
    from datetime import datetime

    store = _store(_load(ctx, as_json))
    moment: int | datetime | None = None
    if as_of is not None:
        try:
            moment = int(as_of) if as_of.isdigit() else datetime.fromisoformat(as_of)
        except ValueError:
            raise click.BadParameter("a run number or an ISO timestamp", param_hint="--as-of") from None
    try:
        table = store.reads.sql(query, moment)
    except Exception as exc:  # the analyst's SQL: show DuckDB's message, not a traceback
        raise click.ClickException(str(exc)) from None
    _print_table(table, as_json, as_csv)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("object_name", metavar="OBJECT")
@click.argument("record_id", metavar="ID")
@json_option
@click.pass_context
def history(ctx: click.Context, object_name: str, record_id: str, as_json: bool) -> None:
    """Every backed-up version of one record, oldest first."""
    from replicator.history import record_history

    store = _store(_load(ctx, as_json))
    if object_name not in store.reads.objects():
        known = ", ".join(store.reads.objects())
        raise click.ClickException(f"{object_name} is not in the backup (objects: {known})")
    versions = record_history(store, object_name, record_id)
    if not versions:
        raise click.ClickException(f"no versions of {object_name} {record_id} in the backup")
    if as_json:
        _emit([_jsonable({"run_id": v.run_id, "valid_from": v.valid_from, "valid_to": v.valid_to,
                          "deleted": v.deleted, "changed": v.changed, "values": v.values}) for v in versions])
        return
    for v in versions:
        state = "deleted" if v.deleted else "version"
        click.echo(f"run {v.run_id}: {state} valid {v.valid_from} .. {v.valid_to or 'now'}")
        for name in v.changed:
            click.echo(f"    {name}: {v.values.get(name)!r}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--state-dir", default=Path("var/demo"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
@click.option("--scale", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=42, show_default=True, type=int)
def demo(state_dir: Path, scale: int, seed: int) -> None:
    """Start the emulator's demo org, back it up, churn a day, back up again, then travel in time."""
    from replicator.demo import run_demo

    run_demo(state_dir=state_dir, scale=scale, seed=seed)


# --- Verifying the store (a thin shell over replicator.check) --------------------------------------


@cli.command("check", context_settings=CONTEXT_SETTINGS)
@click.option("--read-blobs", is_flag=True, help="Also decrypt every referenced file body and verify it.")
@json_option
@click.pass_context
def check_cmd(ctx: click.Context, read_blobs: bool, as_json: bool) -> None:
    """Verify the store: versions, runs, file bodies, ledgers, run folders. Exit code 1 on problems."""
    from replicator.check import CheckRequest, check
    from replicator.errors import ReplicatorError

    cfg = _load(ctx, as_json)
    try:
        result = check(cfg, CheckRequest(read_blobs=read_blobs))
    except ReplicatorError as exc:
        if as_json:
            _emit({"ok": False, "error": exc.to_json()})
            ctx.exit(exc.exit_code)
        raise click.ClickException(exc.message) from None
    if as_json:
        _emit(result.to_json())
    else:
        click.echo(result.text())
    ctx.exit(result.exit_code)


# --- Exports and change files (thin shells over replicator.export) ------------------------------


def _writable_store(cfg: Config, what: str) -> Any:
    """The snapshot store opened for writing (holding the writer lock): exports are recorded in its
    ledger (main.exports)."""
    from replicator.errors import Locked, NotFound
    from replicator.store.repository import Repository

    try:
        return Repository(cfg.storage.path).open_write(what)
    except (Locked, NotFound) as exc:
        raise click.ClickException(exc.message) from None


def _names(text: str | None) -> list[str] | None:
    return [o.strip() for o in text.split(",") if o.strip()] if text else None


class _DialectChoice(click.Choice):
    """The SQL dialects of the registry, read when first needed: the registry imports pyarrow and
    sqlglot, which every other command would otherwise pay for at startup."""

    def __init__(self) -> None:
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        from replicator.sinks.sql.registry import DIALECTS

        return tuple(DIALECTS)


@cli.command("export", context_settings=CONTEXT_SETTINGS)
@click.option("--run", "run", default="last", show_default=True, help="Run number or 'last'.")
@click.option("--format", "fmt", type=click.Choice(["csv", "sql"]), default="csv", show_default=True)
@click.option("--dialect", type=_DialectChoice(),
              help="SQL dialect (required with --format sql).")
@click.option("--objects", help="Only these objects (comma-separated API names; default all).")
@click.option("--include-attachments", is_flag=True,
              help="File bodies: CSV copies them to DIR/files/<Object>/<Id>.<ext>; "
                   "SQL inlines them as BLOBs.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created).")
@click.option("--endpoint", help="Load into this [endpoints.NAME] database instead of writing files.")
@json_option
@click.pass_context
def export_cmd(ctx: click.Context, run: str, fmt: str, dialect: str | None, objects: str | None,
               include_attachments: bool, out: Path | None, endpoint: str | None, as_json: bool) -> None:
    """Export the backup as of a run to CSV or SQL files, one file per object, or into an endpoint
    database (see README "Exports")."""
    from replicator.export import export
    from replicator.store.repository import Repository

    cfg = _load(ctx, as_json)
    if (out is None) == (endpoint is None):
        raise click.UsageError("give either --out DIR or --endpoint NAME")
    if fmt == "sql" and dialect is None and endpoint is None:
        raise click.BadParameter("--format sql needs a dialect", param_hint="--dialect")
    blobs = Repository(cfg.storage.path).blobs(cfg.storage.blob_key_env) if include_attachments else None
    if endpoint is not None:
        _export_endpoint(cfg, endpoint, run, _names(objects), blobs, as_json)
        return
    assert out is not None
    with _writable_store(cfg, "export") as store:
        try:
            result = export(store, out, run=run, fmt=fmt, dialect=dialect, objects=_names(objects),
                            blobs=blobs)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    _report_export(result, as_json)


@cli.command("diff", context_settings=CONTEXT_SETTINGS)
@click.option("--from", "from_run", required=True, help="Earlier run number (or 'last').")
@click.option("--to", "to_run", default="last", show_default=True, help="Later run number or 'last'.")
@click.option("--object", "objects", help="Only this object (or a comma-separated list).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created).")
@json_option
@click.pass_context
def diff_cmd(ctx: click.Context, from_run: str, to_run: str, objects: str | None, out: Path,
             as_json: bool) -> None:
    """Change files between two runs: <Object>_added.csv, _changed.csv and _removed.csv."""
    from replicator.export import diff_files

    cfg = _load(ctx, as_json)
    with _writable_store(cfg, "diff") as store:
        try:
            result = diff_files(store, out, from_run, to_run, objects=_names(objects))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    _report_export(result, as_json)


def _export_endpoint(cfg: Config, name: str, run: str, objects: list[str] | None, blobs: Any,
                     as_json: bool) -> None:
    """`export --endpoint`: a thin shell over export.export_to_endpoint."""
    from replicator.export import EndpointError, export_to_endpoint

    try:
        with _writable_store(cfg, "export") as store:
            report = export_to_endpoint(cfg, name, run, objects, blobs=blobs, store=store)
    except (EndpointError, ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _emit({"endpoint": report.endpoint, "target": report.target, "run_id": report.run_id,
               "rows": {t.object: t.rows for t in report.tables}, "seconds": round(report.seconds, 2)})
        return
    click.echo(f"endpoint {report.endpoint} ({report.target}): {report.rows} rows of {len(report.tables)} "
               f"objects as of run {report.run_id} in {report.seconds:.1f} s")


def _report_export(result: Any, as_json: bool) -> None:
    if as_json:
        _emit({"export_id": result.export_id, "run_id": result.run_id, "directory": str(result.directory),
               "rows": result.rows, "files": [str(f) for f in result.files]})
        return
    total = sum(result.rows.values())
    click.echo(f"export {result.export_id}: {total} rows of {len(result.rows)} objects as of run "
               f"{result.run_id} in {result.directory} ({len(result.files)} files)")


@cli.command("exports", context_settings=CONTEXT_SETTINGS)
@click.option("--object", "obj", help="Only exports that contain this object.")
@json_option
@click.pass_context
def exports_cmd(ctx: click.Context, obj: str | None, as_json: bool) -> None:
    """The exports ledger: every export and change-file download, what, when and where."""
    rows = [_jsonable(r) for r in _store(_load(ctx, as_json)).exports.entries(obj)]
    if as_json:
        _emit(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("Id", "At", "Kind", "Format", "Run", "Objects", "Rows", "Status", "Destination")
    for r in rows:
        fmt = r["format"] + (f"/{r['dialect']}" if r.get("dialect") else "")
        run = f"{r['from_run']}..{r['run_id']}" if r.get("from_run") else str(r["run_id"])
        table.add_row(str(r["export_id"]), str(r["exported_at"]), r["kind"], fmt, run,
                      ", ".join(r.get("objects") or []), str(r.get("rows") or 0), r["status"],
                      r["destination"])
    Console().print(table)
