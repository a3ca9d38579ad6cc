"""REST SOQL: `/query`, `/queryAll` and paging through query locators.

A query is materialised once by the query engine; pages are slices of that result addressed by
`<01g locator id>-<offset>`, as Salesforce's nextRecordsUrl does. The page size comes from
`Sforce-Query-Options: batchSize=N` on each call (clients that set it, like simple-salesforce's
query_all, resend their headers on every page), so locators carry no state of their own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from sfemu.errors import SalesforceError
from sfemu.query import invalid_locator, query_engine
from sfemu.routing import DATA, Ctx, json_response, route

if TYPE_CHECKING:
    from sfemu.query import ResultSet

DEFAULT_BATCH = 2000
MIN_BATCH = 200
_BATCH_SIZE = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


def batch_size(ctx: Ctx) -> int:
    """Page size from `Sforce-Query-Options` (200..2000; values outside are clamped)."""
    m = _BATCH_SIZE.search(ctx.headers.get("sforce-query-options", ""))
    return min(max(int(m.group(1)), MIN_BATCH), DEFAULT_BATCH) if m else DEFAULT_BATCH


def page(ctx: Ctx, result: ResultSet, offset: int) -> dict[str, Any]:
    """One REST query page; nextRecordsUrl only while rows remain."""
    if result.compiled.count_only:
        return {"totalSize": result.total_size, "done": True, "records": []}
    records = result.json_records(offset, batch_size(ctx), ctx.version)
    end = offset + len(records)
    body: dict[str, Any] = {"totalSize": result.total_size, "done": end >= result.num_rows}
    if not body["done"]:
        body["nextRecordsUrl"] = f"{ctx.base}/{ctx.params['endpoint']}/{result.id}-{end}"
    body["records"] = records
    return body


def run_query(ctx: Ctx) -> Response:
    soql = ctx.arg("q")
    if soql is None or not soql.strip():
        raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
    engine = query_engine(ctx.org)  # raises QUERY_TIMEOUT itself for objects under that fault
    result = engine.run(soql, include_deleted=ctx.params["endpoint"] == "queryAll")
    body = page(ctx, result, 0)
    if body["done"]:
        engine.drop(result.id)  # no locator was handed out, so nothing can come back for it
    return json_response(body)


def query_more(ctx: Ctx) -> Response:
    result = query_engine(ctx.org).require(ctx.params["result_id"])
    offset = int(ctx.params["offset"])
    if offset > result.num_rows:
        raise invalid_locator()
    return json_response(page(ctx, result, offset))


_LOCATOR = r"(?P<result_id>[0-9A-Za-z]{15,18})-(?P<offset>\d+)"
# dlt passes a whole nextRecordsUrl where a locator belongs: .../query//services/data/v59.0/query/01g...-2000
_EMBEDDED_URL = r"(?:services/data/v\d{2,3}\.\d/(?:query|queryAll)/)?"

ROUTES = [
    route("GET", DATA + r"/(?P<endpoint>query|queryAll)", run_query),
    route("GET", DATA + r"/(?P<endpoint>query|queryAll)/" + _EMBEDDED_URL + _LOCATOR, query_more),
]
