"""Routing primitives shared by every API module of the emulator.

Each API module (auth, rest, bulk, control...) exports `ROUTES`, a list of Route. A handler is a
plain synchronous function `handler(ctx: Ctx) -> Response`; the dispatcher (app.py) runs it in a
worker thread, checks the session, counts the call, applies faults and renders SalesforceError.
Handlers that run subrequests (composite) call `ctx.dispatch`, which the dispatcher provides, so
no API module needs to know the route table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.responses import Response

from sfemu.errors import SalesforceError, method_not_allowed, not_found

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg
    from sfemu.sessions import Session

JSON_TYPE = "application/json;charset=UTF-8"
# Every versioned REST path starts like this; the version is captured as `version`.
DATA = r"/services/data/v(?P<version>\d{2,3}\.\d)"
_SLASHES = re.compile(r"/{2,}")
# Request bodies nested deeper than this are a JSON_PARSER_ERROR (Jackson, Salesforce's parser, also
# caps nesting); real payloads (composite graphs included) stay within a few levels.
MAX_JSON_DEPTH = 100
# Largest request body a route takes unless it says otherwise: Salesforce's 50 MB for a JSON body
# (sf_api.md 2.7: ~37.5 MB of base64 file body); Bulk uploads declare their own 150 MB.
MAX_BODY_BYTES = 50 * 1024 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")


def normalise_path(path: str) -> str:
    """Collapse doubled slashes and drop a trailing one: clients disagree on both."""
    path = _SLASHES.sub("/", path)
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


@dataclass
class Ctx:
    """Everything a handler may look at for one request."""

    org: EmulatedOrg
    method: str
    path: str  # normalised: no doubled or trailing slashes
    params: dict[str, str]  # named groups of the route pattern
    query: dict[str, list[str]]  # URL query string, '+' decoded as space
    headers: dict[str, str]  # lower-cased names
    body: bytes
    # Runs a subrequest (a Ctx of its own) in-process through the dispatcher and answers it.
    dispatch: Callable[[Ctx], Response]
    session: Session | None = None
    # A handler may decide the call is not counted (a SOAP login shares its URL with counted calls).
    counted: bool = True

    @property
    def version(self) -> str:
        return self.params.get("version", "59.0")

    @property
    def base(self) -> str:
        """`/services/data/vNN.N`, for URLs in response bodies."""
        return f"/services/data/v{self.version}"

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query-string parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The request body as JSON, or Salesforce's JSON_PARSER_ERROR."""
        return parse_json(self.body)


def parse_json(body: bytes) -> Any:
    """A request body as JSON, refused the way Salesforce refuses it (400 JSON_PARSER_ERROR) when it is
    not strict UTF-8 JSON: invalid bytes, NaN/Infinity, a lone surrogate (raw or as a `\\ud800` escape:
    no UTF-8 text can hold it), or nesting deeper than MAX_JSON_DEPTH (100,000 `[` included)."""
    try:
        data = json.loads(body.decode("utf-8") if body else "null", parse_constant=_no_constant)
    except RecursionError:
        raise _parser_error(f"nesting deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _parser_error(str(exc)) from None
    _check_json(data)
    return data


def _parser_error(detail: str) -> SalesforceError:
    return SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected character: {detail}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_json(data: Any) -> None:
    """Walk parsed JSON (without recursion) for nesting depth and unpaired surrogates in strings."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and _SURROGATE.search(value):
                raise _parser_error("unpaired surrogate in a string")
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise _parser_error(f"nesting deeper than {MAX_JSON_DEPTH} levels")
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        stack.extend((item, depth + 1) for item in items)


Handler = Callable[[Ctx], Response]


@dataclass
class Route:
    """A method set plus a full-path regex; `kind` groups calls in the ledger and decides auth."""

    methods: tuple[str, ...]
    pattern: str
    handler: Handler
    kind: str = "rest"  # rest | bulk2 | tooling | auth | soap | control | open
    auth: bool = True  # needs a valid session
    counted: bool = True  # counts against DailyApiRequests
    nestable: bool = True  # may run as a subrequest of a composite call
    max_body: int = MAX_BODY_BYTES  # larger request bodies get 413 before they are read
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.regex = re.compile("^" + self.pattern + "$")


def route(methods: str | tuple[str, ...], pattern: str, handler: Handler, **kw: Any) -> Route:
    return Route((methods,) if isinstance(methods, str) else methods, pattern, handler, **kw)


def match(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route for a method and normalised path, with its path parameters; 405 or 404 otherwise."""
    allowed: list[str] = []
    for r in routes:
        m = r.regex.match(path)
        if m is None:
            continue
        if method in r.methods or (method == "HEAD" and "GET" in r.methods):
            return r, {k: v for k, v in m.groupdict().items() if v is not None}
        allowed.extend(r.methods)
    if allowed:
        raise method_not_allowed(method, sorted(set(allowed)))
    raise not_found()


def parse_query_string(raw: str) -> dict[str, list[str]]:
    """URL query parsing as Salesforce does it ('+' is a space); blank values are kept."""
    return parse_qs(raw, keep_blank_values=True)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON body with Salesforce's content type."""
    body = b"" if data is None and status == 204 else json.dumps(data, ensure_ascii=False).encode()
    return Response(body, status_code=status, headers=headers, media_type=JSON_TYPE)


def no_content() -> Response:
    return Response(b"", status_code=204)
