"""`replicator sql` and `replicator history`: thin shells over replicator.query."""

from __future__ import annotations

import click

from replicator.cli.output import CONTEXT_SETTINGS, emit, json_option, load, print_table


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("query")
@click.option("--as-of", help="Run number or timestamp: object views show the state at that moment.")
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.pass_context
def sql(ctx: click.Context, query: str, as_of: str | None, as_json: bool, as_csv: bool) -> None:
    """Query the snapshot store read-only, e.g. sql "SELECT Name FROM Account" --as-of 3."""
    from replicator.query import SqlRequest, SqlResult
    from replicator.query import sql as run_sql

    def render(result: SqlResult) -> None:
        if as_csv:
            import sys

            import pyarrow.csv as pacsv

            pacsv.write_csv(result.table, sys.stdout.buffer)
        else:
            print_table(result.table.column_names, result.cells())

    emit(run_sql(load(ctx), SqlRequest(query, as_of)), as_json, render)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("object_name", metavar="OBJECT")
@click.argument("record_id", metavar="ID")
@json_option
@click.pass_context
def history(ctx: click.Context, object_name: str, record_id: str, as_json: bool) -> None:
    """Every backed-up version of one record, oldest first."""
    from replicator.query import HistoryRequest
    from replicator.query import history as record_history

    emit(record_history(load(ctx), HistoryRequest(object_name, record_id)), as_json)
