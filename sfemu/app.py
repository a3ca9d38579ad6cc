"""The emulator's ASGI application: one dispatcher in front of every API module's routes.

The dispatcher does what Salesforce does around every call, so API modules only implement their
own protocol: tolerant path normalisation (doubled and trailing slashes), session checks,
DailyApiRequests accounting with the `Sforce-Limit-Info` header, injected faults, and rendering
errors in Salesforce's shapes. Handlers are synchronous and run in worker threads.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import AsyncIterator, Iterable
from email.utils import format_datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from sfemu import auth, control, soap, tooling
from sfemu.bulk import ingest as bulk_ingest
from sfemu.bulk import query as bulk_query
from sfemu.bulk import v1_routes as bulk1
from sfemu.errors import OAuthError, SalesforceError, invalid_session, limit_exceeded
from sfemu.org import EmulatedOrg
from sfemu.rest import routes as rest
from sfemu.routing import Ctx, Route, json_response, match, normalise_path, parse_query_string

log = logging.getLogger("sfemu")
_TOKEN_PREFIXES = ("bearer ", "oauth ")
# Kinds of route whose calls are API calls (faults apply, limit header is sent).
API_KINDS = frozenset({"rest", "bulk2", "bulk1", "tooling"})


def session_token(headers: dict[str, str]) -> str | None:
    """The access token from `Authorization: Bearer|OAuth` or `X-SFDC-Session`."""
    auth = headers.get("authorization", "")
    for prefix in _TOKEN_PREFIXES:
        if auth.lower().startswith(prefix):
            return auth[len(prefix):].strip()
    return headers.get("x-sfdc-session") or None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit`: from its
    Content-Length before a byte is read, or while a chunked body streams in. The rest is never read."""
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit:
        raise body_too_large(limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise body_too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:  # gone, or closed for sending too slowly: nobody reads the answer
        raise SalesforceError(408, "REQUEST_TIMEOUT", "The request body was not received in time") from None
    return b"".join(chunks)


def body_too_large(limit: int) -> SalesforceError:
    return SalesforceError(413, "REQUEST_ENTITY_TOO_LARGE",
                           f"The request body exceeds the maximum of {limit // (1024 * 1024)} MB")


def error_response(exc: SalesforceError) -> Response:
    return json_response(exc.body(), exc.status, exc.headers)


def server_error_response(status: int) -> Response:
    """What an injected or unexpected server fault looks like."""
    if status == 503:
        return json_response([{"errorCode": "SERVER_UNAVAILABLE",
                               "message": "Service temporarily unavailable. Please try again."}], 503)
    return json_response([{"errorCode": "UNKNOWN_EXCEPTION",
                           "message": "An unexpected error occurred. Please include this ErrorId if you "
                                      "contact support: 1042553377-40210 (-1318234107)"}], status)


class Emulator:
    """ASGI callable dispatching to the routes of all API modules for one org.

    `subroutes` are the routes a composite subrequest may reach (through `Ctx.dispatch`).
    """

    def __init__(self, org: EmulatedOrg, routes: Iterable[Route], subroutes: Iterable[Route]) -> None:
        self.org = org
        self.routes = list(routes)
        self.subroutes = list(subroutes)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            response = await self.dispatch(request)
        except Exception:  # a bug outside any handler still answers in Salesforce's shape
            log.error("unhandled error on %s %s\n%s", request.method, request.url.path,
                      traceback.format_exc())
            response = server_error_response(500)
        await response(scope, receive, send)

    @staticmethod
    async def _lifespan(receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def subrequest(self, sub: Ctx) -> Response:
        """Answer a composite subrequest in-process: no session check, count or fault of its own
        (the composite call is the one API call), and no composite resource nested in another."""
        found, sub.params = match(self.subroutes, sub.method, sub.path)
        if not found.nestable:
            raise SalesforceError(400, "INVALID_URL", "Composite resources cannot be nested")
        return found.handler(sub)

    async def dispatch(self, request: Request) -> Response:
        org = self.org
        method = request.method.upper()
        path = normalise_path(request.url.path)
        headers = {k.lower(): v for k, v in request.headers.items()}
        route: Route | None = None
        session = None
        ctx: Ctx | None = None
        try:
            route, params = match(self.routes, method, path)
            is_api = route.kind in API_KINDS
            if route.auth:
                token = session_token(headers)
                org.sessions.expire_after_calls = org.faults.config.session_expire_after
                session = org.sessions.touch(token) if token else None
                if session is None:
                    raise invalid_session()
            if route.counted and org.limits.exhausted():
                raise limit_exceeded()
            ctx = Ctx(org, method, path, params, parse_query_string(request.url.query), headers,
                      await read_body(request, route.max_body), self.subrequest, session)
            fault_status = org.faults.server_error() if is_api else None
            if fault_status is not None:
                response = server_error_response(fault_status)
            else:
                response = await run_in_threadpool(self._call, route, ctx)
        except SalesforceError as exc:
            response = error_response(exc)
        except OAuthError as exc:
            response = json_response({"error": exc.error, "error_description": exc.description}, exc.status)
        if ctx is not None:
            session = ctx.session or session
        counted = (route is not None and route.counted and response.status_code not in (401, 403)
                   and (ctx is None or ctx.counted))
        kind = route.kind if route is not None else "rest"
        org.limits.record(method, path, response.status_code, counted,
                          session.username if session else None, kind)
        if path.startswith(("/services/data/", "/services/async/")):
            response.headers["Sforce-Limit-Info"] = org.limits.header()
        # the org's clock, as Salesforce's Date header: clients learn its time from any answer
        response.headers["Date"] = format_datetime(org.clock.now(), usegmt=True)
        if route is not None and route.kind in API_KINDS:
            response = self._maybe_cut(response)
        return response

    def _call(self, route: Route, ctx: Ctx) -> Response:
        """Run a handler in a worker thread; unexpected errors become Salesforce's 500."""
        delay = self.org.faults.config.slow_ms if route.kind in API_KINDS else 0
        if delay:
            time.sleep(delay / 1000)
        try:
            return route.handler(ctx)
        except (SalesforceError, OAuthError):
            raise
        except Exception:  # a bug in the emulator must still answer like Salesforce
            log.error("unhandled error on %s %s\n%s", ctx.method, ctx.path, traceback.format_exc())
            return server_error_response(500)

    def _maybe_cut(self, response: Response) -> Response:
        """Fault: send the headers and half the body, then drop the connection."""
        body = getattr(response, "body", None)
        if not body or not self.org.faults.cut_body(len(body)):
            return response
        half = body[: len(body) // 2]

        async def broken() -> AsyncIterator[bytes]:
            yield half
            raise ConnectionResetError("emulator fault: connection reset mid-body")

        headers = dict(response.headers)
        return StreamingResponse(broken(), status_code=response.status_code, headers=headers)


def create_app(org: EmulatedOrg) -> Emulator:
    """The ASGI app for one org, with the routes of every API module; subrequests reach REST only."""
    routes: list[Route] = []
    # tooling before rest: it sees /query first
    for module in (auth, soap, tooling, rest, bulk_query, bulk_ingest, bulk1, control):
        routes.extend(module.ROUTES)
    return Emulator(org, routes, rest.ROUTES)
