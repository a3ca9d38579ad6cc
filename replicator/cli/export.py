"""`replicator export`, `diff` and `exports`: thin shells over replicator.export and the exports ledger."""

from __future__ import annotations

from pathlib import Path

import click

from replicator.cli.output import CONTEXT_SETTINGS, LazyChoice, emit, json_option, load, names, print_rows

force_option = click.option("--force", is_flag=True,
                            help="Write into a folder that already holds files (same names are overwritten).")
formulas_option = click.option(
    "--keep-formulas", is_flag=True,
    help="CSV for machines: keep values starting with = + - @ as they are (by default they get a "
         "leading apostrophe so spreadsheets do not run them).")


@click.command("export", context_settings=CONTEXT_SETTINGS)
@click.option("--run", "run", default="last", show_default=True, help="Run number or 'last'.")
@click.option("--format", "fmt", type=LazyChoice("replicator.export:FORMATS"), default="csv",
              show_default=True)
@click.option("--dialect", type=LazyChoice("replicator.sinks.sql.registry:DIALECTS"),
              help="SQL dialect (required with --format sql).")
@click.option("--objects", help="Only these objects (comma-separated API names; default all).")
@click.option("--include-attachments", is_flag=True,
              help="File bodies: CSV copies them to DIR/files/<Object>/<Id>.<ext>; "
                   "SQL inlines them as BLOBs.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created).")
@click.option("--endpoint", help="Load into this [endpoints.NAME] database instead of writing files.")
@force_option
@formulas_option
@json_option
@click.pass_context
def export_cmd(ctx: click.Context, run: str, fmt: str, dialect: str | None, objects: str | None,
               include_attachments: bool, out: Path | None, endpoint: str | None, force: bool,
               keep_formulas: bool, as_json: bool) -> None:
    """Export the backup as of a run to CSV or SQL files, one file per object, or into an endpoint
    database (see README "Exports")."""
    from replicator.export import ExportRequest, run_export

    request = ExportRequest(run=run, format=fmt, dialect=dialect, objects=names(objects),
                            include_attachments=include_attachments, out=out, endpoint=endpoint,
                            force=force, keep_formulas=keep_formulas)
    emit(run_export(load(ctx), request), as_json)


@click.command("diff", context_settings=CONTEXT_SETTINGS)
@click.option("--from", "from_run", required=True, help="Earlier run number (or 'last').")
@click.option("--to", "to_run", default="last", show_default=True, help="Later run number or 'last'.")
@click.option("--object", "objects", help="Only this object (or a comma-separated list).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created).")
@force_option
@formulas_option
@json_option
@click.pass_context
def diff_cmd(ctx: click.Context, from_run: str, to_run: str, objects: str | None, out: Path,
             force: bool, keep_formulas: bool, as_json: bool) -> None:
    """Change files between two runs: <Object>_added.csv, _changed.csv and _removed.csv."""
    from replicator.export import DiffRequest, run_diff

    request = DiffRequest(from_run, out, to_run, names(objects), force=force, keep_formulas=keep_formulas)
    emit(run_diff(load(ctx), request), as_json)


@click.command("exports", context_settings=CONTEXT_SETTINGS)
@click.option("--object", "obj", help="Only exports that contain this object.")
@json_option
@click.pass_context
def exports_cmd(ctx: click.Context, obj: str | None, as_json: bool) -> None:
    """The exports ledger: every export and change-file download, what, when and where."""
    from replicator.query import ExportsRequest, exports_ledger

    emit(exports_ledger(load(ctx), ExportsRequest(obj)), as_json, print_rows)
