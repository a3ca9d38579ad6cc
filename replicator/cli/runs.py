"""`replicator runs` and `runs show N`: thin shells over replicator.query, drawn as rich tables."""

from __future__ import annotations

import click

from replicator.cli.output import CONTEXT_SETTINGS, emit, json_option, load, print_rows, print_table


@click.group(context_settings=CONTEXT_SETTINGS, invoke_without_command=True)
@json_option
@click.pass_context
def runs(ctx: click.Context, as_json: bool) -> None:
    """List backup runs (newest first); `runs show N` for one run's objects."""
    if ctx.invoked_subcommand is not None:
        return
    from replicator.query import RunsRequest
    from replicator.query import runs as list_runs

    emit(list_runs(load(ctx), RunsRequest()), as_json, print_rows)


@runs.command("show", context_settings=CONTEXT_SETTINGS)
@click.argument("run_id", type=int)
@json_option
@click.pass_context
def runs_show(ctx: click.Context, run_id: int, as_json: bool) -> None:
    """One run: its status and, per object, what was backed up and what failed."""
    from replicator.query import SECTION_COLUMNS, RunDetail, RunRequest, run_show

    def render(result: RunDetail) -> None:
        from rich.console import Console
        from rich.markup import escape

        run = result.run
        Console().print(f"run {run['run_id']} ({escape(str(run.get('job')))}): [bold]{run['status']}[/] "
                        f"{escape(run.get('message') or '')}")
        print_table(list(SECTION_COLUMNS), result.cells())

    emit(run_show(load(ctx), RunRequest(run_id)), as_json, render)
