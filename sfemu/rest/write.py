"""REST writes of single records: create, update, delete, and upsert/delete by external id.

Every write goes through the DML engine as a one-row batch, so REST, collections, composite and
Bulk share one set of rules and error texts. JSON records become Arrow string columns here:
an absent key leaves the field alone, `null` (or "") sets it null.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from starlette.responses import Response

from sfemu.dml.engine import dml_engine
from sfemu.dml.results import DmlError, RowResult
from sfemu.errors import SalesforceError, method_not_allowed, not_found
from sfemu.rest.records import _ID, _ext_field, _ids_by_value, record_id, sobject
from sfemu.routing import DATA, Ctx, json_response, no_content, route

if TYPE_CHECKING:
    from sfemu.schema import SObject

JSON_NULL = "\x00null\x00"  # the null marker of JSON-sourced tables (CSV uses "#N/A")
NOT_FOUND_STATUS = frozenset({"NOT_FOUND", "ENTITY_IS_DELETED"})


def json_table(records: list[dict[str, Any]]) -> pa.Table:
    """JSON records -> string columns: absent keys are null (unchanged), null and "" become JSON_NULL."""
    names: list[str] = []
    for rec in records:
        for key in rec:
            if key != "attributes" and key not in names:
                names.append(key)
    columns = {}
    for name in names:
        values = []
        for rec in records:
            if name not in rec:
                values.append(None)
            else:
                values.append(json_text(name, rec[name]))
        columns[name] = pa.array(values, pa.string())
    if not columns:  # a table without columns still needs its row count
        return pa.table({"_": pa.nulls(len(records), pa.string())}).drop_columns(["_"])
    return pa.table(columns)


def json_text(name: str, value: Any) -> str:
    """One JSON scalar as the text the DML engine converts (booleans lower-case, numbers as JSON)."""
    if value is None or value == "":
        return JSON_NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    kind = "START_OBJECT" if isinstance(value, dict) else "START_ARRAY"
    raise SalesforceError(
        400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of string from {kind} value for field {name}"
    )


def dml_options(ctx: Ctx) -> dict[str, Any]:
    return {
        "empty_means_unchanged": True,
        "null_marker": JSON_NULL,
        "user_id": ctx.session.user_id if ctx.session else None,
    }


def record_body(ctx: Ctx) -> dict[str, Any]:
    body = ctx.json()
    if not isinstance(body, dict):
        raise SalesforceError(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of sObject from "
            f"{'START_ARRAY' if isinstance(body, list) else 'VALUE'} token",
        )
    return {k: v for k, v in body.items() if k != "attributes"}


def failure(result: RowResult, status: int = 400) -> Response:
    """A failed row as REST's error array; ENTITY_IS_DELETED and NOT_FOUND answer 404."""
    errors = result.errors or [DmlError("UNKNOWN_EXCEPTION", "An unexpected error occurred.")]
    if errors[0].status_code in NOT_FOUND_STATUS:
        status = 404
    return json_response([e.to_rest() for e in errors], status)


def saved(result: RowResult) -> dict[str, Any]:
    return {"id": result.id, "success": True, "errors": []}


def live_id(ctx: Ctx, obj: SObject, text: str) -> str:
    """The canonical id of a live record of `obj`, else 404 NOT_FOUND / ENTITY_IS_DELETED."""
    rid = record_id(obj, text)
    if rid is None:
        raise not_found()
    resolved = dml_engine(ctx.org).resolve(obj, pa.array([rid]), "live")
    code = resolved.column("code")[0].as_py()
    if code == "ENTITY_IS_DELETED":
        raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
    if code is not None:
        raise not_found()
    return resolved.column("id")[0].as_py()


# --- handlers -----------------------------------------------------------------------------------


def create(ctx: Ctx) -> Response:
    obj = sobject(ctx)
    body = record_body(ctx)
    result = dml_engine(ctx.org).insert(obj, json_table([body]), **dml_options(ctx))[0]
    if not result.success:
        return failure(result)
    return json_response(saved(result), 201, {"Location": f"{ctx.base}/sobjects/{obj.name}/{result.id}"})


def update(ctx: Ctx) -> Response:
    obj = sobject(ctx)
    rid = live_id(ctx, obj, ctx.params["record_id"])
    body = {k: v for k, v in record_body(ctx).items() if k.lower() != "id"}
    rows = json_table([body]).append_column("Id", pa.array([rid]))
    result = dml_engine(ctx.org).update(obj, rows, **dml_options(ctx))[0]
    return no_content() if result.success else failure(result)


def delete(ctx: Ctx) -> Response:
    obj = sobject(ctx)
    rid = live_id(ctx, obj, ctx.params["record_id"])
    return _delete(ctx, rid)


def _delete(ctx: Ctx, rid: str) -> Response:
    result = dml_engine(ctx.org).delete([rid], user_id=ctx.session.user_id if ctx.session else None)[0]
    return no_content() if result.success else failure(result)


def _matches(ctx: Ctx, obj: SObject) -> tuple[Any, str, list[str]]:
    """(ext field, value, live ids holding it) for `/sobjects/X/{field}/{value}`."""
    f = _ext_field(obj, ctx.params["first"])
    value = ctx.params["second"].replace("+", " ")  # simple-salesforce quote_plus()es values
    return f, value, _ids_by_value(ctx, obj, f, value)


def _choices(ctx: Ctx, obj: SObject, ids: list[str]) -> Response:
    return json_response([f"{ctx.base}/sobjects/{obj.name}/{i}" for i in ids], 300)


def _same_key(field: str, value: str, body: dict[str, Any]) -> None:
    """Salesforce: "Do not specify Id or an external ID field in the request body". Clients that
    repeat the URL's value (matched without case, as the lookup is) are common and harmless; a
    different value would silently upsert a
    record other than the one the body describes, so it is refused (the message is our wording:
    the documentation gives none)."""
    for key, given in body.items():
        if key.lower() == field.lower() and given is not None and str(given).casefold() != value.casefold():
            raise SalesforceError(400, "INVALID_FIELD",
                                  f"The value of {field} in the request body ({given}) does not match "
                                  f"the value in the URL ({value})", [field])


def upsert(ctx: Ctx) -> Response:
    """PATCH /sobjects/X/{extField}/{value}: 201 created / 200 updated (v46+), 204 updated before."""
    obj = sobject(ctx)
    f, value, found = _matches(ctx, obj)
    if len(found) > 1:
        return _choices(ctx, obj, found)
    given = record_body(ctx)
    _same_key(f.name, value, given)
    body = {k: v for k, v in given.items() if k.lower() not in (f.name.lower(), "id")}
    table = json_table([body]).append_column(f.name, pa.array([value]))
    dml = dml_engine(ctx.org)
    if f.name == "Id":
        table = table.set_column(table.num_columns - 1, "Id", pa.array([live_id(ctx, obj, value)]))
        result = dml.update(obj, table, **dml_options(ctx))[0]
    else:
        result = dml.upsert(obj, f.name, table, **dml_options(ctx))[0]
    if not result.success:
        return failure(result)
    modern = float(ctx.version) >= 46.0
    if result.created:
        body_out = {**saved(result), "created": True} if modern else saved(result)
        return json_response(body_out, 201, {"Location": f"{ctx.base}/sobjects/{obj.name}/{result.id}"})
    return json_response({**saved(result), "created": False}, 200) if modern else no_content()


def delete_by_external_id(ctx: Ctx) -> Response:
    obj = sobject(ctx)
    _, _, found = _matches(ctx, obj)
    if not found:
        raise not_found()
    if len(found) > 1:
        return _choices(ctx, obj, found)
    return _delete(ctx, found[0])


def _override(handlers: dict[str, Any]):
    """POST with `?_HttpMethod=PATCH` (or DELETE) stands for that method, as on Salesforce."""

    def handler(ctx: Ctx) -> Response:
        method = (ctx.arg("_HttpMethod") or "").upper()
        if method not in handlers:
            raise method_not_allowed("POST", ["GET", "HEAD", *sorted(handlers)])
        return handlers[method](ctx)

    return handler


_SOBJECT = DATA + r"/sobjects/(?P<sobject>\w+)"
_RECORD = _SOBJECT + rf"/(?P<record_id>{_ID})"
_PAIR = _SOBJECT + r"/(?P<first>(?!describe/)\w+)/(?P<second>[^/]+)"
ROUTES = [
    route("POST", _SOBJECT, create),
    route("PATCH", _RECORD, update),
    route("DELETE", _RECORD, delete),
    route("POST", _RECORD, _override({"PATCH": update, "DELETE": delete})),
    route("PATCH", _PAIR, upsert),
    route("DELETE", _PAIR, delete_by_external_id),
    route("POST", _PAIR, _override({"PATCH": upsert, "DELETE": delete_by_external_id})),
]
