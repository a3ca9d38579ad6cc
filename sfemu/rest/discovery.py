"""What a REST client reads before any record: API versions, the resource list, describes and
sObject metadata. Describes honour If-Modified-Since, since clients (CumulusCI) cache on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from sfemu.auth import identity_url
from sfemu.describe import (
    describe_global,
    describe_sobject,
    last_modified,
    not_modified_since,
    sobject_metadata,
)
from sfemu.errors import not_found
from sfemu.rest.records import sobject
from sfemu.routing import DATA, Ctx, json_response, route
from sfemu.store import DELETED_AT, quote

FIRST_VERSION, LAST_VERSION = 47, 66  # Winter '20 .. Spring '26
RECENT_ITEMS = 5
_SEASONS = ("Winter", "Spring", "Summer")


def version_label(major: int) -> str:
    """Release name of an API version: three releases a year, v47.0 = Winter '20."""
    n = major - FIRST_VERSION
    return f"{_SEASONS[n % 3]} '{20 + n // 3:02d}"


def versions(ctx: Ctx) -> Response:
    """Ascending: CumulusCI takes the last entry as the newest version."""
    return json_response([{"label": version_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                          for v in range(FIRST_VERSION, LAST_VERSION + 1)])


RESOURCES = (
    "tooling", "metadata", "eclair", "folders", "prechatForms", "contact-tracing", "jsonxform", "chatter",
    "tabs", "appMenu", "quickActions", "queryAll", "commerce", "wave", "iot", "analytics", "search",
    "smartdatadiscovery", "composite", "parameterizedSearch", "fingerprint", "theme", "nouns", "domino",
    "event", "serviceTemplates", "recent", "connect", "licensing", "limits", "process", "async-queries",
    "query", "match", "emailConnect", "compactLayouts", "knowledgeManagement", "sobjects", "actions",
    "support", "jobs",
)


def resources(ctx: Ctx) -> Response:
    body = {name: f"{ctx.base}/{name}" for name in RESOURCES}
    body["identity"] = identity_url(ctx, ctx.session.user_id if ctx.session else ctx.org.admin_user()[0])
    return json_response(body)


def _cached(ctx: Ctx, body_of: Callable[[], Any]) -> Response:
    """A describe answer honouring If-Modified-Since (CumulusCI caches on it), with Last-Modified."""
    headers = {"Last-Modified": last_modified(ctx.org.schema)}
    if not_modified_since(ctx.org.schema, ctx.headers.get("if-modified-since")):
        return Response(b"", status_code=304, headers=headers)
    return json_response(body_of(), headers=headers)


def describe_all(ctx: Ctx) -> Response:
    return _cached(ctx, lambda: describe_global(ctx.org.schema, ctx.version))


def describe_one(ctx: Ctx) -> Response:
    obj = sobject(ctx)
    if ctx.org.faults.describe_fails(obj.name):
        raise not_found()
    return _cached(ctx, lambda: describe_sobject(ctx.org.schema, obj, ctx.version))


def metadata(ctx: Ctx) -> Response:
    """`GET /sobjects/X`: the describeGlobal entry plus a few most recently changed records."""
    obj = sobject(ctx)
    recent: list[dict] = []
    name = obj.name_field
    stamp = obj.field("SystemModstamp")
    if obj.key_prefix and name is not None and name.stored and stamp is not None:
        store = ctx.org.store
        rows = store.cursor().execute(
            f"SELECT {quote('Id')}, {store.column(name)} FROM {store.table(obj)} "
            f"WHERE {quote(DELETED_AT)} IS NULL ORDER BY {store.column(stamp)} DESC LIMIT {RECENT_ITEMS}"
        ).fetchall()
        recent = [{"attributes": {"type": obj.name, "url": f"{ctx.base}/sobjects/{obj.name}/{rid}"},
                   "Id": rid, name.name: value} for rid, value in rows]
    return json_response(sobject_metadata(ctx.org.schema, obj, ctx.version, recent))


_SOBJECT = DATA + r"/sobjects/(?P<sobject>\w+)"
ROUTES = [
    route("GET", r"/services/data", versions, auth=False, counted=False),
    route("GET", DATA, resources),
    route("GET", DATA + r"/sobjects", describe_all),
    route("GET", _SOBJECT, metadata),
    route("GET", _SOBJECT + r"/describe", describe_one),
]
