"""REST search: `/search?q=<SOSL>` and `/parameterizedSearch` (GET query string or POST JSON body).

Both answer `{"searchRecords": [...]}` with REST records (attributes, then the RETURNING fields,
or only Id). simple-salesforce's `search()`/`quick_search()` use `/search`.
"""

from __future__ import annotations

from starlette.responses import Response

from sfemu.errors import SalesforceError
from sfemu.routing import DATA, Ctx, json_response, route
from sfemu.sosl import parameterized, parse_sosl, run_search


def sosl_search(ctx: Ctx) -> Response:
    search = parse_sosl(ctx.arg("q"))
    return json_response({"searchRecords": run_search(ctx.org, search, ctx.version)})


def parameterized_get(ctx: Ctx) -> Response:
    params: dict[str, object] = {k: v[0] for k, v in ctx.query.items() if v}
    params["sobject"] = ctx.query.get("sobject", [])
    search = parameterized(params, listed=False)
    return json_response({"searchRecords": run_search(ctx.org, search, ctx.version)})


def parameterized_post(ctx: Ctx) -> Response:
    body = ctx.json()
    if not isinstance(body, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    search = parameterized(body, listed=True)
    return json_response({"searchRecords": run_search(ctx.org, search, ctx.version)})


ROUTES = [
    route("GET", DATA + r"/search", sosl_search),
    route("GET", DATA + r"/parameterizedSearch", parameterized_get),
    route("POST", DATA + r"/parameterizedSearch", parameterized_post),
]
