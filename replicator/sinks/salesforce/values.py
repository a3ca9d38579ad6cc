"""Arrow rows to the JSON records Salesforce's REST writes accept.

Why one place: dates, datetimes and times have one wire format each (UTC, milliseconds, `Z`), and
file bodies travel base64 in the record; every transport of the loader sends what this builds.
"""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from typing import Any

from replicator.sinks.salesforce.model import BodyReader

# The field of each file object whose stored value is a blob sha and whose wire value is base64.
BODY_FIELDS = {"ContentVersion": "VersionData", "Attachment": "Body", "Document": "Body"}


def wire(value: Any) -> Any:
    """One stored value as Salesforce's JSON expects it."""
    if isinstance(value, dt.datetime):
        moment = value.astimezone(dt.UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, Decimal):
        return float(value)
    return value


def body(bodies: BodyReader | None, sobject: str, sha: str) -> str:
    """The base64 body of a file record whose store value is `sha`."""
    if bodies is None:
        raise ValueError(f"{sobject} records need file bodies, and the plan has no blob store")
    return base64.b64encode(bodies.get(sha)).decode("ascii")


def record(sobject: str, row: dict[str, Any], fields: tuple[str, ...], bodies: BodyReader | None, *,
           keep_nulls: bool) -> dict[str, Any]:
    """A REST record of `sobject` with the named fields of `row` (nulls sent only when asked)."""
    out: dict[str, Any] = {"attributes": {"type": sobject}}
    body_field = BODY_FIELDS.get(sobject)
    for name in fields:
        value = row.get(name)
        if value is None:
            if keep_nulls:
                out[name] = None
            continue
        out[name] = body(bodies, sobject, value) if name == body_field else wire(value)
    return out
