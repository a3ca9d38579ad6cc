"""What the target org holds today of the records a restore touches: live, in the recycle bin, or gone.

Why one query per 200 Ids with ALL ROWS: records in the recycle bin are undeleted (Ids kept), live
ones compared by SystemModstamp and field by field, the rest inserted; three answers from one read.
Objects Salesforce only queries through a parent filter (ContentDocumentLink) are read by it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from replicator.restore.model import ObjectModel
from replicator.salesforce import soql
from replicator.salesforce.catalog import FILTERED_OBJECTS
from replicator.salesforce.client import OrgClient
from replicator.sinks.salesforce.values import wire

PAGE_IDS = 200


@dataclass(frozen=True)
class Found:
    """One record as the target holds it."""

    id: str
    deleted: bool
    modstamp: str | None
    values: dict[str, Any]


def find(client: OrgClient, model: ObjectModel, ids: Iterable[str], fields: Sequence[str] = (),
         by: tuple[str, Iterable[str]] | None = None) -> dict[str, Found]:
    """The records among `ids` the org holds (recycle bin included), with `fields`' current values.

    `by` reads through another filter column (an object that needs a parent filter)."""
    ids = list(ids)
    if by is None:
        if model.name in FILTERED_OBJECTS:
            return {}  # cannot be read by Id: the caller passes the parent filter
        by = ("Id", ids)
    column, values = by
    wanted = sorted({v for v in values if v})
    meta = [f for f in ("IsDeleted", "SystemModstamp") if f in model.types]
    select = ", ".join(dict.fromkeys(["Id", *meta, *fields]))
    found: dict[str, Found] = {}
    keep = None if column == "Id" else set(ids)
    for at in range(0, len(wanted), PAGE_IDS):
        query = (f"SELECT {select} FROM {model.name} WHERE {column} IN "
                 f"{soql.id_list(wanted[at:at + PAGE_IDS])}")
        for page in client.query_pages(query, include_deleted="IsDeleted" in model.types):
            for rec in page:
                if keep is None or rec["Id"] in keep:
                    found[rec["Id"]] = Found(rec["Id"], bool(rec.get("IsDeleted")), rec.get("SystemModstamp"),
                                             {f: rec.get(f) for f in fields})
    return found


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("+0000", "+00:00"))
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def same(stored: Any, current: Any) -> bool:
    """Whether a backed-up value equals the org's current JSON value (types as each side has them)."""
    if stored is None or stored == "":
        return current is None or current == ""
    if current is None:
        return False
    if isinstance(stored, bool):
        return stored == current
    if isinstance(stored, int | float | Decimal):
        try:
            return math.isclose(float(stored), float(current), rel_tol=1e-12, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    if isinstance(stored, datetime):
        try:
            return wire(stored) == wire(_instant(str(current)))
        except ValueError:
            return False
    if isinstance(stored, date | time):
        return str(wire(stored)).rstrip("Z") == str(current).rstrip("Z")
    return str(stored) == str(current)


def stamp(value: Any) -> str | None:
    """A SystemModstamp (stored datetime or org text) in one comparable spelling."""
    if value is None:
        return None
    return wire(value if isinstance(value, datetime) else _instant(str(value)))
