"""Composite resources: sObject Collections, /composite, /composite/graph, /composite/tree, /composite/batch.

Subrequests are dispatched in-process through `ctx.dispatch` (never over HTTP), so the whole
composite call counts as one API call, as on Salesforce. All-or-nothing groups (allOrNone, each
graph, each tree) run in one DML transaction that an error rolls back.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from starlette.responses import Response

from sfemu.dml.engine import DmlAbort, dml_engine
from sfemu.dml.results import ROLLED_BACK, DmlError, RowResult
from sfemu.errors import SalesforceError
from sfemu.rest.records import render_record
from sfemu.rest.write import dml_options, json_table
from sfemu.routing import DATA, Ctx, json_response, normalise_path, parse_query_string, route

if TYPE_CHECKING:
    from sfemu.schema import SObject

MAX_COLLECTION = 200
MAX_CHUNKS = 10
MAX_SUBREQUESTS = 25
MAX_HEAVY_SUBREQUESTS = 5  # of the 25: query, queryAll and sObject Collections (sf_api.md 2.10)
MAX_GRAPH_NODES = 500
MAX_TREE_RECORDS = 200
MAX_TREE_DEPTH = 5
HALTED = {
    "errorCode": "PROCESSING_HALTED",
    "message": "The transaction was rolled back since another operation in the same transaction failed.",
}
_REF = re.compile(r"@\{([^}]+)\}")
_PASSED_HEADERS = ("location", "last-modified", "etag")


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _body(ctx: Ctx) -> dict[str, Any]:
    body = ctx.json()
    if not isinstance(body, dict):
        raise SalesforceError(
            400, "JSON_PARSER_ERROR", "Cannot deserialize the request body: expected an object"
        )
    return body


class _Rollback(Exception):
    """Raised inside a DML transaction to undo it after the responses are recorded."""


# --- sObject Collections ----------------------------------------------------------------------------


def _result_json(result: RowResult, upsert: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": result.id} if result.success else {}
    out.update({"success": result.success, "errors": [e.to_json() for e in result.errors]})
    if upsert:
        out["created"] = result.created
    return out


def _records(ctx: Ctx) -> tuple[list[dict[str, Any]], bool]:
    body = _body(ctx)
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SalesforceError(
            400, "JSON_PARSER_ERROR", "Json Deserialization failed: 'records' must be a list"
        )
    if not records:
        raise SalesforceError(400, "REQUIRED_FIELD_MISSING", "At least 1 record is required.", [])
    if len(records) > MAX_COLLECTION:
        raise SalesforceError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call",
        )
    return records, _bool(body.get("allOrNone", False))


def _type_of(ctx: Ctx, record: dict[str, Any]) -> SObject:
    name = (record.get("attributes") or {}).get("type")
    rid = record.get("Id") or record.get("id")
    obj = ctx.org.schema.get(name) if isinstance(name, str) else None
    if obj is None and name is None and isinstance(rid, str):
        obj = ctx.org.schema.object_of_id(rid)
    if obj is None:
        raise SalesforceError(
            400,
            "INVALID_TYPE",
            "Must send a concrete entity type."
            if name is None
            else f"sObject type '{name}' is not supported.",
        )
    return obj


def _chunks(ctx: Ctx, records: list[dict[str, Any]]) -> list[tuple[SObject, list[int]]]:
    """Consecutive runs of one type, as Salesforce chunks a collection (at most 10 chunks)."""
    chunks: list[tuple[SObject, list[int]]] = []
    for i, rec in enumerate(records):
        obj = _type_of(ctx, rec)
        if chunks and chunks[-1][0] is obj:
            chunks[-1][1].append(i)
        else:
            chunks.append((obj, [i]))
    if len(chunks) > MAX_CHUNKS:
        raise SalesforceError(
            400,
            "INVALID_BATCH_SIZE",
            "Cannot have more than 10 chunks in a single operation. "
            "Please rearrange the data to reduce chunking.",
        )
    return chunks


def _run_chunks(ctx: Ctx, n: int, all_or_none: bool, calls: list[tuple[list[int], Any]]) -> list[RowResult]:
    """Run per-chunk DML calls; with allOrNone they share one transaction that any failure undoes."""
    results: list[RowResult | None] = [None] * n
    dml = dml_engine(ctx.org)
    if not all_or_none:
        for positions, call in calls:
            for pos, res in zip(positions, call(False), strict=True):
                results[pos] = res
        return [r for r in results if r is not None]
    try:
        with dml.transaction():
            for positions, call in calls:
                for pos, res in zip(positions, call(True), strict=True):
                    results[pos] = res
            if any(r is None or not r.success for r in results):
                raise _Rollback()
    except DmlAbort as abort:
        error = DmlError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", abort.error.message, abort.error.fields)
        return [RowResult(None, False, False, [error]) for _ in range(n)]
    except _Rollback:
        return [
            RowResult(None, False, False, [ROLLED_BACK]) if r is None or r.success else r for r in results
        ]
    return [r for r in results if r is not None]


def collection_create(ctx: Ctx) -> Response:
    records, all_or_none = _records(ctx)
    opts, dml = dml_options(ctx), dml_engine(ctx.org)
    for rec in records:
        if rec.get("Id") or rec.get("id"):
            raise SalesforceError(
                400, "INVALID_FIELD", "Id field should not be specified in the sobject data."
            )
    calls = [
        (
            positions,
            lambda aon, obj=obj, positions=positions: dml.insert(
                obj, json_table([records[i] for i in positions]), all_or_none=aon, **opts
            ),
        )
        for obj, positions in _chunks(ctx, records)
    ]
    return json_response([_result_json(r) for r in _run_chunks(ctx, len(records), all_or_none, calls)])


def collection_update(ctx: Ctx) -> Response:
    records, all_or_none = _records(ctx)
    opts, dml = dml_options(ctx), dml_engine(ctx.org)
    calls = [
        (
            positions,
            lambda aon, obj=obj, positions=positions: dml.update(
                obj, json_table([records[i] for i in positions]), all_or_none=aon, **opts
            ),
        )
        for obj, positions in _chunks(ctx, records)
    ]
    return json_response([_result_json(r) for r in _run_chunks(ctx, len(records), all_or_none, calls)])


def collection_upsert(ctx: Ctx) -> Response:
    obj = _sobject(ctx)
    ext = obj.field(ctx.params["ext"])
    if ext is None or not (ext.external_id or ext.id_lookup):
        raise SalesforceError(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {ctx.params['ext']}",
        )
    records, all_or_none = _records(ctx)
    for rec in records:
        if _type_of(ctx, rec) is not obj:
            raise SalesforceError(400, "INVALID_TYPE", f"All records must be of type {obj.name}")
    opts, dml = dml_options(ctx), dml_engine(ctx.org)
    positions = list(range(len(records)))
    calls = [(positions, lambda aon: dml.upsert(obj, ext.name, json_table(records), all_or_none=aon, **opts))]
    results = _run_chunks(ctx, len(records), all_or_none, calls)
    return json_response([_result_json(r, upsert=True) for r in results])


def collection_delete(ctx: Ctx) -> Response:
    ids = [i for i in (ctx.arg("ids") or "").split(",") if i.strip()]
    if not ids:
        raise SalesforceError(400, "REQUIRED_FIELD_MISSING", "At least 1 Id is required.")
    if len(ids) > MAX_COLLECTION:
        raise SalesforceError(400, "EXCEEDED_ID_LIMIT", f"More than {MAX_COLLECTION} Ids are not allowed")
    user = ctx.session.user_id if ctx.session else None
    results = dml_engine(ctx.org).delete(
        [i.strip() for i in ids], all_or_none=_bool(ctx.arg("allOrNone")), user_id=user
    )
    return json_response([_result_json(r) for r in results])


def _sobject(ctx: Ctx) -> SObject:
    obj = ctx.org.schema.get(ctx.params["sobject"])
    if obj is None:
        raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
    return obj


def collection_retrieve(ctx: Ctx) -> Response:
    """GET ?ids=&fields= or POST {"ids", "fields"}: records in id order, null for ids not found."""
    obj = _sobject(ctx)
    if ctx.method == "POST":
        body = _body(ctx)
        ids, fields = body.get("ids") or [], body.get("fields") or []
    else:
        ids = [i for i in (ctx.arg("ids") or "").split(",") if i]
        fields = [f for f in (ctx.arg("fields") or "").split(",") if f]
    if not ids:
        raise SalesforceError(400, "REQUIRED_FIELD_MISSING", "At least 1 Id is required.")
    if len(ids) > 2000:
        raise SalesforceError(400, "EXCEEDED_ID_LIMIT", "More than 2000 Ids are not allowed")
    out: list[dict[str, Any] | None] = []
    for rid in ids:
        try:
            out.append(render_record(ctx, obj, str(rid).strip(), [str(f) for f in fields] or None))
        except SalesforceError as exc:
            if exc.error_code != "NOT_FOUND":
                raise
            out.append(None)
    return json_response(out)


# --- /composite and /composite/graph ------------------------------------------------------------


def _lookup(refs: dict[str, Any], expression: str) -> Any:
    """Value of `ref.path[0].field` in the recorded response bodies; KeyError when absent."""
    name, _, path = expression.partition(".")
    value = refs[name]
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            value = value[int(part[1:-1])]
        elif isinstance(value, dict):
            value = value[part]
        else:
            raise KeyError(part)
    return value


def _substitute(value: Any, refs: dict[str, Any]) -> Any:
    """Replace @{ref.path} in strings (a whole-string reference keeps the value's JSON type)."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            return _lookup(refs, whole.group(1))
        return _REF.sub(lambda m: str(_lookup(refs, m.group(1))), value)
    if isinstance(value, dict):
        return {k: _substitute(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, refs) for v in value]
    return value


def _dispatch(ctx: Ctx, method: str, url: str, body: Any, headers: dict[str, str], *,
              collections: bool = False) -> tuple[int, Any, dict]:
    """Run one subrequest in-process through the dispatcher: (status, parsed body, headers). sObject
    Collections may be subrequests of /composite only (`collections`), not of graphs or batches."""
    parts = urlsplit(url.strip())
    path = normalise_path(unquote(parts.path))
    sub = Ctx(
        ctx.org,
        method.upper(),
        path,
        {},
        parse_query_string(parts.query.replace(" ", "+")),
        {**ctx.headers, **{k.lower(): str(v) for k, v in headers.items()}},
        b"" if body is None else json.dumps(body).encode(),
        ctx.dispatch,
        ctx.session,
    )
    try:
        if not path.startswith("/services/data/"):
            raise SalesforceError(400, "INVALID_URL", f"Invalid URL: {url}")
        if not collections and _COLLECTIONS.match(path.lstrip("/")):
            raise SalesforceError(400, "INVALID_URL", "Composite resources cannot be nested")
        response = ctx.dispatch(sub)
    except SalesforceError as exc:
        return exc.status, exc.body(), dict(exc.headers)
    raw = getattr(response, "body", b"")
    parsed = json.loads(raw) if raw else None
    kept = {
        k.title() if k != "etag" else "ETag": v
        for k, v in response.headers.items()
        if k.lower() in _PASSED_HEADERS
    }
    return response.status_code, parsed, kept


def _run_composite(ctx: Ctx, requests: list[dict[str, Any]], all_or_none: bool, *,
                   collections: bool = False) -> tuple[list[dict], bool]:
    """(compositeResponse items, success) for subrequests run in order with references between them."""
    dml = dml_engine(ctx.org)
    refs: dict[str, Any] = {}
    out: list[dict[str, Any]] = []
    failed_at: int | None = None

    def run_all() -> None:
        nonlocal failed_at
        for i, req in enumerate(requests):
            ref_id = str(req.get("referenceId", ""))
            try:
                url = _substitute(str(req.get("url", "")), refs)
                body = _substitute(req.get("body"), refs)
            except (KeyError, IndexError, TypeError):
                message = f"Invalid reference specified. No value for {req.get('url')} found."
                status, payload, headers = 400, [{"errorCode": "PROCESSING_HALTED", "message": message}], {}
            else:
                try:
                    status, payload, headers = _dispatch(
                        ctx, str(req.get("method", "GET")), url, body, req.get("httpHeaders") or {},
                        collections=collections,
                    )
                except DmlAbort as abort:
                    status, payload, headers = (
                        400,
                        [
                            {
                                "errorCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                                "message": abort.error.message,
                            }
                        ],
                        {},
                    )
            out.append(
                {"body": payload, "httpHeaders": headers, "httpStatusCode": status, "referenceId": ref_id}
            )
            if status < 400:
                refs[ref_id] = payload
            elif all_or_none:
                failed_at = i
                raise _Rollback()

    if not all_or_none:
        run_all()
        return out, all(item["httpStatusCode"] < 400 for item in out)
    try:
        with dml.transaction():
            run_all()
    except _Rollback:
        halted = {"body": [HALTED], "httpHeaders": {}, "httpStatusCode": 400}
        items = [
            out[failed_at] if i == failed_at else {**halted, "referenceId": str(r.get("referenceId", ""))}
            for i, r in enumerate(requests)
        ]
        return items, False
    return out, True


def _subrequests(value: Any, limit: int) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "compositeRequest must be a list of subrequests")
    if len(value) > limit:
        raise SalesforceError(400, "LIMIT_EXCEEDED", f"Exceeded max limit of subrequests. Max: {limit}")
    ids = [r.get("referenceId") for r in value]
    if len(set(ids)) != len(ids):
        raise SalesforceError(400, "INVALID_INPUT", "Duplicate referenceId provided in the request")
    return value


_COLLECTIONS = re.compile(DATA[1:] + r"/composite/sobjects(/|$)")


def _heavy(request: dict[str, Any]) -> bool:
    """A query/queryAll or sObject Collections subrequest (Salesforce allows 5 per /composite)."""
    path = urlsplit(str(request.get("url", "")).strip()).path
    return re.match(DATA[1:] + r"/(query|queryAll|composite/sobjects)(/|$)", path.lstrip("/")) is not None


def composite(ctx: Ctx) -> Response:
    body = _body(ctx)
    requests = _subrequests(body.get("compositeRequest"), MAX_SUBREQUESTS)
    if sum(_heavy(r) for r in requests) > MAX_HEAVY_SUBREQUESTS:
        raise SalesforceError(
            400,
            "LIMIT_EXCEEDED",
            "Exceeded max limit of query, queryAll and sObject Collections subrequests. "
            f"Max: {MAX_HEAVY_SUBREQUESTS}",
        )
    items, _ = _run_composite(ctx, requests, _bool(body.get("allOrNone", False)), collections=True)
    return json_response({"compositeResponse": items})


def graph(ctx: Ctx) -> Response:
    body = _body(ctx)
    graphs = body.get("graphs")
    if not isinstance(graphs, list) or not graphs:
        raise SalesforceError(400, "JSON_PARSER_ERROR", "graphs must be a non-empty list")
    nodes = sum(len(g.get("compositeRequest") or []) for g in graphs if isinstance(g, dict))
    if nodes > MAX_GRAPH_NODES:
        raise SalesforceError(
            400, "LIMIT_EXCEEDED", f"Exceeded max limit of nodes across graphs: {MAX_GRAPH_NODES}"
        )
    out = []
    for g in graphs:
        requests = _subrequests(g.get("compositeRequest"), MAX_GRAPH_NODES)
        items, ok = _run_composite(ctx, requests, True)
        out.append(
            {
                "graphId": str(g.get("graphId", "")),
                "graphResponse": {"compositeResponse": items},
                "isSuccessful": ok,
            }
        )
    return json_response({"graphs": out})


def batch(ctx: Ctx) -> Response:
    """POST /composite/batch: independent subrequests with URLs relative to /services/data."""
    body = _body(ctx)
    requests = body.get("batchRequests")
    if not isinstance(requests, list) or len(requests) > MAX_SUBREQUESTS:
        raise SalesforceError(
            400, "LIMIT_EXCEEDED", f"batchRequests must be a list of at most {MAX_SUBREQUESTS}"
        )
    halt, halted = _bool(body.get("haltOnError", False)), False
    results = []
    for req in requests:
        if halted:
            results.append(
                {
                    "statusCode": 412,
                    "result": [
                        {
                            "errorCode": "BATCH_PROCESSING_HALTED",
                            "message": "Batch processing halted per request",
                        }
                    ],
                }
            )
            continue
        url = "/services/data/" + str(req.get("url", "")).lstrip("/")
        status, payload, _ = _dispatch(ctx, str(req.get("method", "GET")), url, req.get("richInput"), {})
        results.append({"statusCode": status, "result": payload})
        halted = halt and status >= 400
    return json_response({"hasErrors": any(r["statusCode"] >= 400 for r in results), "results": results})


# --- /composite/tree --------------------------------------------------------------------------------


class _TreeNode:
    def __init__(
        self, obj: SObject, ref: str, fields: dict[str, Any], parent: _TreeNode | None, link: str | None
    ) -> None:
        self.obj, self.ref, self.fields, self.parent, self.link = obj, ref, fields, parent, link
        self.id: str | None = None
        self.errors: list[DmlError] = []


def _tree_nodes(
    ctx: Ctx,
    obj: SObject,
    records: Any,
    parent: _TreeNode | None,
    link: str | None,
    depth: int,
    out: list[_TreeNode],
) -> None:
    """Flatten nested records in request order (pre-order), checking types, depth and referenceIds."""
    if depth > MAX_TREE_DEPTH:
        raise SalesforceError(400, "INVALID_INPUT", f"Exceeded max depth of {MAX_TREE_DEPTH} levels")
    if not isinstance(records, list):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "records must be a list")
    for rec in records:
        attrs = rec.get("attributes") or {} if isinstance(rec, dict) else {}
        if not attrs.get("referenceId") or not attrs.get("type"):
            raise SalesforceError(
                400, "INVALID_INPUT", "Include a type and referenceId in the attributes of every record"
            )
        if ctx.org.schema.get(attrs["type"]) is not obj:
            raise SalesforceError(400, "INVALID_INPUT", f"Type {attrs['type']} does not match {obj.name}")
        fields = {k: v for k, v in rec.items() if k != "attributes" and not isinstance(v, dict)}
        node = _TreeNode(obj, str(attrs["referenceId"]), fields, parent, link)
        out.append(node)
        for key, value in rec.items():
            if key == "attributes" or not isinstance(value, dict):
                continue
            rel = ctx.org.schema.child_relationship(obj.name, key)
            if rel is None:
                raise SalesforceError(
                    400, "INVALID_FIELD", f"No such relationship '{key}' on sobject of type {obj.name}"
                )
            _tree_nodes(ctx, rel.child, value.get("records"), node, rel.field.name, depth + 1, out)


def tree(ctx: Ctx) -> Response:
    obj = _sobject(ctx)
    body = _body(ctx)
    nodes: list[_TreeNode] = []
    _tree_nodes(ctx, obj, body.get("records"), None, None, 1, nodes)
    if len(nodes) > MAX_TREE_RECORDS:
        raise SalesforceError(400, "LIMIT_EXCEEDED", f"Exceeded max limit of {MAX_TREE_RECORDS} records")
    refs = [n.ref for n in nodes]
    if len(set(refs)) != len(refs):
        raise SalesforceError(400, "INVALID_INPUT", "Duplicate ReferenceId provided in the request")
    dml, opts = dml_engine(ctx.org), dml_options(ctx)
    try:
        with dml.transaction():
            level = [n for n in nodes if n.parent is None]
            while level:
                by_type: dict[tuple[str, str | None], list[_TreeNode]] = {}
                for n in level:
                    by_type.setdefault((n.obj.name, n.link), []).append(n)
                for group in by_type.values():
                    records = [
                        {**n.fields, **({n.link: n.parent.id} if n.link and n.parent else {})} for n in group
                    ]
                    for n, res in zip(
                        group, dml.insert(group[0].obj, json_table(records), **opts), strict=True
                    ):
                        n.id, n.errors = res.id, res.errors
                if any(n.errors for n in level):
                    raise _Rollback()
                level = [n for n in nodes if n.parent is not None and n.parent in level]
    except (_Rollback, DmlAbort):
        failed = [
            {"referenceId": n.ref, "errors": [e.to_json() for e in n.errors]} for n in nodes if n.errors
        ]
        return json_response({"hasErrors": True, "results": failed}, 400)
    return json_response(
        {"hasErrors": False, "results": [{"referenceId": n.ref, "id": n.id} for n in nodes]}, 201
    )


_COLL = DATA + r"/composite/sobjects"
ROUTES = [  # sObject Collections writes may be /composite subrequests (API 43.0+, at most 5 a call: sf_api.md
    # 2.10); no other composite resource may run as a subrequest of another
    route("POST", _COLL, collection_create),
    route("PATCH", _COLL, collection_update),
    route("DELETE", _COLL, collection_delete),
    route(("GET", "POST"), _COLL + r"/(?P<sobject>\w+)", collection_retrieve, nestable=False),
    route("PATCH", _COLL + r"/(?P<sobject>\w+)/(?P<ext>\w+)", collection_upsert, nestable=False),
    route("POST", DATA + r"/composite", composite, nestable=False),
    route("POST", DATA + r"/composite/graph", graph, nestable=False),
    route("POST", DATA + r"/composite/batch", batch, nestable=False),
    route("POST", DATA + r"/composite/tree/(?P<sobject>\w+)", tree, nestable=False),
]
