"""`replicator check`: a thin shell over replicator.check (restic's `check` for the store)."""

from __future__ import annotations

import click

from replicator.cli.output import CONTEXT_SETTINGS, emit, json_option, load


@click.command("check", context_settings=CONTEXT_SETTINGS)
@click.option("--read-blobs", is_flag=True, help="Also decrypt every referenced file body and verify it.")
@json_option
@click.pass_context
def check_cmd(ctx: click.Context, read_blobs: bool, as_json: bool) -> None:
    """Verify the store: versions, runs, file bodies, ledgers, run folders. Exit code 1 on problems."""
    from replicator.check import CheckRequest, check

    emit(check(load(ctx), CheckRequest(read_blobs=read_blobs)), as_json)
