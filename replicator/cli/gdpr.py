"""`replicator gdpr search|forget|rectify|requests`: thin shells over replicator.gdpr."""

from __future__ import annotations

import click

from replicator.cli.output import CONTEXT_SETTINGS, emit, json_option, load, print_rows

comment_option = click.option("--comment", help="Why (kept in the request ledger; keep personal data out).")


@click.group("gdpr", context_settings=CONTEXT_SETTINGS)
def gdpr() -> None:
    """GDPR requests: find a person, forget or rectify a record in every version and export."""


@gdpr.command("search", context_settings=CONTEXT_SETTINGS)
@click.option("--email", help="An email address (email fields, case-insensitive).")
@click.option("--phone", help="A phone number (phone fields, compared by digits).")
@click.option("--name", help="A name or 'First Last' (name fields, case-insensitive).")
@click.option("--address", help="A street, city, state, postal code or country (address fields).")
@click.option("--text", help="Free text: every text field containing it.")
@json_option
@click.pass_context
def search_cmd(ctx: click.Context, email: str | None, phone: str | None, name: str | None,
               address: str | None, text: str | None, as_json: bool) -> None:
    """Every object, record and version holding the value, and every export that copied it."""
    from replicator.gdpr.search import SearchRequest, run_search

    emit(run_search(load(ctx), SearchRequest(email, phone, name, address, text)), as_json)


@gdpr.command("forget", context_settings=CONTEXT_SETTINGS)
@click.option("--object", "obj", required=True, help="The record's object (API name).")
@click.option("--id", "record_id", required=True, help="The record's Id (15 or 18 characters).")
@click.option("--with-related", is_flag=True, help="Also forget every record whose lookup names it.")
@comment_option
@json_option
@click.pass_context
def forget_cmd(ctx: click.Context, obj: str, record_id: str, with_related: bool, comment: str | None,
               as_json: bool) -> None:
    """Remove a record (and its files) from every version, the blob store and every export; later
    backups, restores and seeds skip it. Exit 2 when an export database is out of reach (the
    statement to run there is printed)."""
    from replicator.gdpr.erase import ForgetRequest, run_forget

    emit(run_forget(load(ctx), ForgetRequest(obj, record_id, with_related, comment)), as_json)


@gdpr.command("rectify", context_settings=CONTEXT_SETTINGS)
@click.option("--object", "obj", required=True, help="The record's object (API name).")
@click.option("--id", "record_id", required=True, help="The record's Id (15 or 18 characters).")
@click.option("--field", "field_name", required=True, help="The field to set.")
@click.option("--value", required=True, help="The new value ('' empties the field).")
@comment_option
@json_option
@click.pass_context
def rectify_cmd(ctx: click.Context, obj: str, record_id: str, field_name: str, value: str,
                comment: str | None, as_json: bool) -> None:
    """Set one field of one record in every version and export; nothing else changes."""
    from replicator.gdpr.erase import RectifyRequest, run_rectify

    emit(run_rectify(load(ctx), RectifyRequest(obj, record_id, field_name, value, comment)), as_json)


@gdpr.command("lift", context_settings=CONTEXT_SETTINGS)
@click.option("--request", "request_id", required=True, type=int,
              help="The forget request's id (gdpr requests).")
@comment_option
@json_option
@click.pass_context
def lift_cmd(ctx: click.Context, request_id: int, comment: str | None, as_json: bool) -> None:
    """Lift a forget request: its records are no longer kept out of backups, restores and seeds (the
    next full backup reads them from the org again)."""
    from replicator.gdpr.lift import LiftRequest, run_lift

    emit(run_lift(load(ctx), LiftRequest(request_id, comment)), as_json)


@gdpr.command("requests", context_settings=CONTEXT_SETTINGS)
@json_option
@click.pass_context
def requests_cmd(ctx: click.Context, as_json: bool) -> None:
    """Every GDPR request: who, when, what, and how it ended."""
    from replicator.gdpr.ledger import list_requests

    emit(list_requests(load(ctx)), as_json, print_rows)
