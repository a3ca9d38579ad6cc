"""SOQL text for the extract: field lists, cursor windows and id filters.

SOQL has no identifier quoting, so names are never taken from user input: objects and fields come
from describe (through the plan) and are checked against Salesforce's name shape anyway; ids are
checked against the id shape before they go into an IN list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from replicator.salesforce.catalog import ObjectPlan
from replicator.salesforce.client import soql_datetime

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def name(text: str) -> str:
    """An API name, refused unless it has Salesforce's shape (letters, digits, underscores)."""
    if not _NAME.match(text):
        raise ValueError(f"not a Salesforce API name: {text!r}")
    return text


def selected_fields(plan: ObjectPlan) -> list[str]:
    """Fields the query reads: the included ones, minus the file body (fetched separately as a blob)."""
    return [name(f.name) for f in plan.included_fields if f.name != plan.blob_field]


def id_list(ids: Iterable[str]) -> str:
    """`('id1','id2')` for an IN filter, each value checked to be a Salesforce id."""
    checked = []
    for value in ids:
        if not _ID.match(value):
            raise ValueError(f"not a Salesforce id: {value!r}")
        checked.append(f"'{value}'")
    return "(" + ",".join(checked) + ")"


def window_query(plan: ObjectPlan, start: datetime | None, end: datetime | None, *,
                 where: str | None = None, order: bool = True) -> str:
    """SELECT the plan's fields with cursor >= start AND cursor < end (either bound optional).

    The lower bound is closed so records that share the previous maximum stamp are read again;
    the store's (Id, SystemModstamp) dedup makes that re-read free.
    """
    clauses = [where] if where else []
    cursor = name(plan.cursor) if plan.cursor else None
    if cursor and start is not None:
        clauses.append(f"{cursor} >= {soql_datetime(start)}")
    if cursor and end is not None:
        clauses.append(f"{cursor} < {soql_datetime(end)}")
    text = f"SELECT {', '.join(selected_fields(plan))} FROM {name(plan.name)}"
    if clauses:
        text += " WHERE " + " AND ".join(clauses)
    if order and cursor:
        text += f" ORDER BY {cursor}"
    return text
