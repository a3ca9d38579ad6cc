"""REST reads of single records: by id, by external id, blob bodies, and the replication helpers.

A record is rendered by the query engine from a `SELECT <fields> FROM X WHERE Id = '...'`, so a
record GET returns exactly what a query returns for it (attributes, compound values, formula
values, blob URLs). Replication helpers (`/updated`, `/deleted`) read SystemModstamp and the
recycle bin directly with bound parameters.
"""

from __future__ import annotations

import mimetypes
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
from starlette.responses import Response

from sfemu import ids
from sfemu.errors import SalesforceError, not_found
from sfemu.query import query_engine
from sfemu.routing import DATA, Ctx, json_response, route
from sfemu.schema import NUMBER_TYPES, TEXT_TYPES
from sfemu.store import DELETE_LOG, DELETED_AT, RECYCLE_BIN_DAYS, quote

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg
    from sfemu.schema import Field, SObject

REPLICATION_DAYS = 30
NO_SUCH_COLUMN = ("No such column '{field}' on entity '{obj}'. If you are attempting to use a custom field, "
                  "be sure to append the '__c' after the custom field name. Please reference your WSDL or "
                  "the describe call for the appropriate names.")
_ID = r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?"


def sobject(ctx: Ctx) -> SObject:
    obj = ctx.org.schema.get(ctx.params["sobject"])
    if obj is None:
        raise not_found()
    return obj


def record_id(obj: SObject, text: str) -> str | None:
    """The 18-char id if `text` is an id of this object, else None."""
    rid = ids.normalize(text)
    return rid if rid and obj.key_prefix and rid.startswith(obj.key_prefix) else None


def selectable_fields(obj: SObject) -> list[str]:
    """Every field a record GET returns, in describe order."""
    return [f.name for f in obj.fields.values()]


def render_record(ctx: Ctx, obj: SObject, rid: str, fields: list[str] | None = None) -> dict[str, Any]:
    """One live record as REST JSON, or 404 when missing or in the recycle bin."""
    names = fields or selectable_fields(obj)
    if not any(n.lower() == "id" for n in names):
        names = [*names, "Id"]  # Salesforce adds Id to a ?fields= selection
    engine = query_engine(ctx.org)
    # `rid` is a validated id, so it is safe inside the SOQL text; names come from the schema or
    # are checked by the SOQL compiler (INVALID_FIELD for unknown ones).
    soql = f"SELECT {', '.join(names)} FROM {obj.name} WHERE Id = '{rid}'"
    result = engine.run(soql, include_deleted=False)
    try:
        records = result.json_records(0, 1, ctx.version)
    finally:
        engine.drop(result.id)
    if not records:
        raise not_found()
    return records[0]


def get_record(ctx: Ctx) -> Response:
    obj = sobject(ctx)
    rid = record_id(obj, ctx.params["record_id"])
    if rid is None:
        raise not_found()
    wanted = ctx.arg("fields")
    fields = [f.strip() for f in wanted.split(",") if f.strip()] if wanted else None
    if fields:
        unknown = [f for f in fields if obj.field(f) is None]
        if unknown:
            raise SalesforceError(400, "INVALID_FIELD", NO_SUCH_COLUMN.format(field=unknown[0], obj=obj.name))
    return json_response(render_record(ctx, obj, rid, fields))


# --- external ids and blobs (both are /sobjects/X/{a}/{b}) --------------------------------------

def _ext_field(obj: SObject, name: str) -> Field:
    f = obj.field(name)
    if f is None or not (f.id_lookup or f.external_id):
        raise SalesforceError(404, "NOT_FOUND",
                              f"Provided external ID field does not exist or is not accessible: {name}")
    return f


def _ids_by_value(ctx: Ctx, obj: SObject, f: Field, value: str) -> list[str]:
    col = ctx.org.store.column(f)
    if f.type == "id":
        rid = record_id(obj, value)
        return [rid] if rid else []
    if f.type in TEXT_TYPES and not f.case_sensitive:
        cond, param = f"lower({col}) = lower(?)", value  # external ids match case-insensitively
    elif f.type in NUMBER_TYPES:
        try:
            cond, param = f"{col} = ?", float(value)
        except ValueError:
            return []
    else:
        cond, param = f"CAST({col} AS VARCHAR) = ?", value
    sql = (f"SELECT {quote('Id')} FROM {ctx.org.store.table(obj)} "
           f"WHERE {cond} AND {quote(DELETED_AT)} IS NULL ORDER BY 1 LIMIT 1000")
    try:
        return [r[0] for r in ctx.org.store.cursor().execute(sql, [param]).fetchall()]
    except duckdb.Error:
        return []


def _blob(ctx: Ctx, obj: SObject, rid: str, name: str) -> Response:
    f = obj.field(name)
    if f is None or f.type != "base64":
        raise not_found()
    facts_fields = (obj.field(c) for c in ("ContentType", "PathOnClient", "Name"))
    extra = [x.name for x in facts_fields if x is not None and x.stored]
    store = ctx.org.store
    cols = ", ".join(store.column(c) for c in [f.name, *extra])
    row = store.cursor().execute(
        f"SELECT {cols} FROM {store.table(obj)} WHERE {quote('Id')} = ? AND {quote(DELETED_AT)} IS NULL",
        [rid]).fetchone()
    if row is None or row[0] is None:
        raise not_found()
    facts = dict(zip(extra, row[1:], strict=True))
    media = facts.get("ContentType")
    if not media:
        file_name = facts.get("PathOnClient") or facts.get("Name") or ""
        media = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
    return Response(bytes(row[0]), media_type=media)


def get_pair(ctx: Ctx) -> Response:
    """`/sobjects/X/{id}/{blobField}` or `/sobjects/X/{externalIdField}/{value}`."""
    obj = sobject(ctx)
    # simple-salesforce quote_plus()es the value, so '+' in the path stands for a space.
    first, second = ctx.params["first"], ctx.params["second"].replace("+", " ")
    rid = record_id(obj, first)
    if rid is not None and obj.field(first) is None:
        return _blob(ctx, obj, rid, second)
    f = _ext_field(obj, first)
    found = _ids_by_value(ctx, obj, f, second)
    if not found:
        raise not_found()
    if len(found) > 1:
        return json_response([f"{ctx.base}/sobjects/{obj.name}/{i}" for i in found], 300)
    return json_response(render_record(ctx, obj, found[0]))


# --- replication: /updated and /deleted -------------------------------------------------------

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?\s*"
                    r"(Z|[+\- ]\d{2}:?\d{2})?:?$")


def parse_stamp(text: str | None, name: str) -> datetime:
    """A lenient ISO 8601 datetime in UTC, seconds dropped as Salesforce does.

    Accepts what clients send: `+00:00` whose '+' arrived as a space, `+0000`, `Z`, no zone
    (UTC), and simple-salesforce's stray trailing ':' on naive datetimes.
    """
    m = _STAMP.match((text or "").strip())
    if m is None:
        raise SalesforceError(400, "INVALID_REPLICATION_DATE" if text else "MISSING_ARGUMENT",
                              f"{name} is not a valid date and time: {text}" if text
                              else f"{name} is required")
    day, clock, zone = m.groups()
    zone = (zone or "+00:00").replace(" ", "+")
    if zone != "Z" and ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    try:  # 9999-12-31T23:59-14:00 is past the last datetime Python holds once in UTC: OverflowError
        moment = datetime.fromisoformat(f"{day}T{clock or '00:00'}{zone}").astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise SalesforceError(400, "INVALID_REPLICATION_DATE", f"{name} is not a valid date and time: {text}",
                              ) from exc
    return moment.replace(second=0, microsecond=0, tzinfo=None)


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _minute_now(org: EmulatedOrg) -> datetime:
    return org.clock.now().astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None)


def _window(org: EmulatedOrg, start_text: str | None, end_text: str | None,
            days: int) -> tuple[datetime, datetime, datetime]:
    """(earliest allowed start, start, latestDateCovered), naive UTC, checked like Salesforce."""
    start, end = parse_stamp(start_text, "start"), parse_stamp(end_text, "end")
    now = _minute_now(org)
    earliest = now - timedelta(days=days)
    if start >= end:
        raise SalesforceError(400, "INVALID_REPLICATION_DATE", "startDate must precede endDate")
    if start < earliest:
        raise SalesforceError(400, "INVALID_REPLICATION_DATE", f"startDate cannot be before {_fmt(earliest)}")
    return earliest, start, min(end, now)


def _replicated(org: EmulatedOrg, name: str) -> SObject:
    obj = org.schema.get(name)
    if obj is None or not obj.replicateable:
        raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
    return obj


def updated(org: EmulatedOrg, name: str, start_text: str | None,
            end_text: str | None) -> tuple[list[str], datetime]:
    """(ids changed in [start, end), latestDateCovered): REST /updated and SOAP getUpdated()."""
    obj = _replicated(org, name)
    stamp_field = obj.field("SystemModstamp") or obj.field("LastModifiedDate")
    if stamp_field is None:
        raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{obj.name}' is not supported.")
    _, start, covered = _window(org, start_text, end_text, REPLICATION_DAYS)
    col = org.store.column(stamp_field)
    rows = org.store.cursor().execute(
        f"SELECT {quote('Id')} FROM {org.store.table(obj)} WHERE {col} >= ? AND {col} < ? "
        f"AND {quote(DELETED_AT)} IS NULL ORDER BY {col}, 1", [start, covered]).fetchall()
    return [r[0] for r in rows], covered


def deleted(org: EmulatedOrg, name: str, start_text: str | None,
            end_text: str | None) -> tuple[list[tuple[str, datetime]], datetime, datetime]:
    """((id, deletedDate) in [start, end), earliestDateAvailable, latestDateCovered) per the org's
    delete log (recycle bin, hard deletes, cascades, purges): REST /deleted and SOAP getDeleted().

    earliestDateAvailable is documented as "the timestamp of the last physically deleted object" of the
    type (GetDeletedResult, SOAP API guide), and results go back "no more than 15 days": so it is the
    last time records of this object were removed for good (hard delete, bin purge), or the log's
    15-day horizon when that is older. The guide's "if this value is less than endDate, the call fails"
    would fail every call after any purge; the rule enforced is the documented one that startDate may
    not be older than the log keeps (INVALID_REPLICATION_DATE).
    """
    obj = _replicated(org, name)
    horizon, start, covered = _window(org, start_text, end_text, RECYCLE_BIN_DAYS)
    physical = org.store.last_physical_delete(obj)
    earliest = max(horizon, physical.replace(second=0, microsecond=0)) if physical else horizon
    rows = org.store.cursor().execute(
        f'SELECT "Id", max("DeletedDate") AS d FROM {quote(DELETE_LOG)} WHERE "Object" = ? '
        f'AND "DeletedDate" >= ? AND "DeletedDate" < ? GROUP BY "Id" ORDER BY d, 1',
        [obj.name, start, covered]).fetchall()
    return [(r[0], r[1]) for r in rows], earliest, covered


def get_updated(ctx: Ctx) -> Response:
    ids, covered = updated(ctx.org, sobject(ctx).name, ctx.arg("start"), ctx.arg("end"))
    return json_response({"ids": ids, "latestDateCovered": _fmt(covered)})


def get_deleted(ctx: Ctx) -> Response:
    rows, earliest, covered = deleted(ctx.org, sobject(ctx).name, ctx.arg("start"), ctx.arg("end"))
    return json_response({
        "deletedRecords": [{"id": rid, "deletedDate": _fmt(when)} for rid, when in rows],
        "earliestDateAvailable": _fmt(earliest),
        "latestDateCovered": _fmt(covered),
    })


_SOBJECT = DATA + r"/sobjects/(?P<sobject>\w+)"
ROUTES = [
    route("GET", _SOBJECT + r"/updated", get_updated),
    route("GET", _SOBJECT + r"/deleted", get_deleted),
    route("GET", _SOBJECT + rf"/(?P<record_id>{_ID})", get_record),
    route("GET", _SOBJECT + r"/(?P<first>(?!describe/)\w+)/(?P<second>[^/]+)", get_pair),
]
