"""The control API under /_emulator/: what tests and operators use to steer the org.

Not part of Salesforce: calls here need no session, never count against DailyApiRequests and are
never faulted, so a test can inspect the ledger or dump ground truth while the org misbehaves.
Bad input is answered with 400 and a message saying what is wrong, never with a 500.
"""

from __future__ import annotations

import io
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from starlette.responses import Response, StreamingResponse

from sfemu.clock import in_range
from sfemu.errors import SalesforceError
from sfemu.faults import FaultConfig
from sfemu.routing import Ctx, Route, json_response, route
from sfemu.store import DELETED_AT, quote

PREFIX = "/_emulator"
DUMP_BATCH_ROWS = 20_000
DUMP_TYPES = {"csv": "text/csv; charset=UTF-8", "jsonl": "application/x-ndjson"}
MAX_CHURN_DAYS = 3660  # ten years of simulated activity per call: more is a typo, not a test


def bad_request(message: str) -> SalesforceError:
    return SalesforceError(400, "INVALID_CONTROL_REQUEST", message)


def _body(ctx: Ctx) -> dict[str, Any]:
    """The JSON object sent with a control call ({} when empty)."""
    data = ctx.json()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object")
    return data


def _int(data: dict[str, Any], key: str, default: int | None = None, minimum: int = 0) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad_request(f"'{key}' must be an integer")
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"'{key}' must be an integer, not {value!r}") from None
    if number < minimum:
        raise bad_request(f"'{key}' must be at least {minimum}")
    return number


def _moment(value: Any, key: str) -> datetime:
    """An ISO-8601 moment (naive means UTC) within the years the org's clock can show."""
    if not isinstance(value, str):
        raise bad_request(f"'{key}' must be an ISO-8601 date-time string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"'{key}' is not an ISO-8601 date-time: {value!r}") from None
    try:
        return in_range(moment)
    except ValueError as exc:
        raise bad_request(f"'{key}': {exc}") from None


def _object(ctx: Ctx, name: str):
    obj = ctx.org.schema.get(name)
    if obj is None:
        raise bad_request(f"unknown object: {name}")
    return obj


# --- org state ----------------------------------------------------------------------------------


def api_usage(ctx: Ctx) -> dict[str, int]:
    limits = ctx.org.limits
    return {"used": limits.used(), "max": limits.daily_max, "remaining": limits.remaining()}


def status(ctx: Ctx) -> Response:
    org = ctx.org
    return json_response({
        "org_id": org.org_id, "org_type": org.settings.org_type, "instance": org.instance_name,
        "seed": org.settings.seed, "scale": org.settings.scale, "clock": org.clock.now().isoformat(),
        "counts": org.store.counts(), "api_usage": api_usage(ctx), "faults": org.faults.to_json(),
    })


def reset(ctx: Ctx) -> Response:
    """Regenerate the org and forget all run-time state; without arguments, the org as it was started."""
    data = _body(ctx)
    unknown = set(data) - {"seed", "scale", "counts", "now"}
    if unknown:
        raise bad_request(f"unknown reset setting(s): {', '.join(sorted(unknown))}")
    org = ctx.org
    now = _moment(data["now"], "now") if data.get("now") is not None else datetime.now(UTC)
    first_seed, first_scale, first_counts = org.initial
    seed, scale = _int(data, "seed", first_seed), _int(data, "scale", first_scale, minimum=1)
    counts = data.get("counts", first_counts)
    if not isinstance(counts, dict) or not all(isinstance(v, int) and v >= 0 for v in counts.values()):
        raise bad_request("'counts' must be an object mapping object names to record counts")
    for name in counts:
        _object(ctx, name)
    generated = org.reset(seed, scale, counts, now)
    return json_response({"ok": True, "seed": seed, "scale": scale, "clock": org.clock.now().isoformat(),
                          "counts": generated})


def churn_days(ctx: Ctx) -> Response:
    """Simulate N days of org activity: one churn step per day, each ending a day later on the clock."""
    from sfemu.churn import ChurnRates, churn  # only loaded when churn is used

    data = _body(ctx)
    unknown = set(data) - {"days", "rates", "seed"}
    if unknown:
        raise bad_request(f"unknown churn setting(s): {', '.join(sorted(unknown))}")
    days = _int(data, "days", 1, minimum=1)
    if days is not None and days > MAX_CHURN_DAYS:
        raise bad_request(f"'days' must be at most {MAX_CHURN_DAYS} per call")
    seed = _int(data, "seed", ctx.org.settings.seed)
    rates_data = data.get("rates") or {}
    if not isinstance(rates_data, dict):
        raise bad_request("'rates' must be an object")
    try:
        rates = ChurnRates(**rates_data)
    except TypeError as exc:
        raise bad_request(f"bad churn rates: {exc}") from None
    org = ctx.org
    steps = org.extensions.setdefault("churn_steps", [0])  # step numbers keep later days distinct
    reports = []
    for _ in range(days or 1):
        steps[0] += 1
        since = org.clock.anchor  # churn ends with clock.set(until): consecutive days chain exactly
        until = since + timedelta(days=1)
        try:
            report = churn(org.store, seed=seed or 0, step=steps[0], rates=rates, since=since, until=until)
        except ValueError as exc:
            raise bad_request(f"churn failed: {exc}") from None
        reports.append(_jsonable(report))
    return json_response({"days": days, "clock": org.clock.now().isoformat(), "reports": reports})


def _jsonable(value: Any) -> Any:
    """Churn reports may be dataclasses or hold datetimes; control answers are plain JSON."""
    if hasattr(value, "__dataclass_fields__"):
        value = {k: getattr(value, k) for k in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def clock(ctx: Ctx) -> Response:
    if ctx.method == "POST":
        data = _body(ctx)
        if ("now" in data) == ("advance_seconds" in data) or set(data) - {"now", "advance_seconds"}:
            raise bad_request("send exactly one of {'now': ISO-8601} or {'advance_seconds': number}")
        if "now" in data:
            ctx.org.clock.set(_moment(data["now"], "now"))
        else:
            seconds = data["advance_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise bad_request("'advance_seconds' must be a number")
            try:
                ctx.org.clock.advance(seconds)
            except (ValueError, OverflowError) as exc:
                raise bad_request(f"'advance_seconds': {exc}") from None
    return json_response({"now": ctx.org.clock.now().isoformat()})


def faults(ctx: Ctx) -> Response:
    """GET the fault config, PUT a whole new one, PATCH some settings of it."""
    org = ctx.org
    if ctx.method in ("PUT", "PATCH"):
        data = _body(ctx)
        if ctx.method == "PATCH":
            data = {**org.faults.to_json(), **data}
        try:
            org.faults.configure(FaultConfig.from_json(data))
        except (TypeError, ValueError) as exc:
            raise bad_request(f"bad fault settings: {exc}") from None
    return json_response(org.faults.to_json())


def limits(ctx: Ctx) -> Response:
    """DailyApiRequests usage; POST {"max": N} changes the allocation at run time."""
    if ctx.method == "POST":
        data = _body(ctx)
        if set(data) - {"max"}:
            raise bad_request("send {'max': N}")
        ctx.org.limits.daily_max = _int(data, "max", ctx.org.limits.daily_max)
    return json_response(api_usage(ctx))


def ledger(ctx: Ctx) -> Response:
    """Every call since sequence number `since`, plus counts per kind and status."""
    limits = ctx.org.limits
    if ctx.method == "DELETE":
        limits.reset()
        return json_response({"ok": True})
    since = _int({"since": ctx.arg("since", "0")}, "since")
    calls = limits.ledger(since or 0)
    return json_response({
        "calls": [c.to_json() for c in calls],
        "summary": {"calls": len(calls), "counted": sum(c.counted for c in calls),
                    "by_kind": dict(Counter(c.kind for c in calls)),
                    "by_status": {str(k): v for k, v in Counter(c.status for c in calls).items()}},
        "last_seq": calls[-1].seq if calls else since, "api_usage": api_usage(ctx),
    })


def expire_sessions(ctx: Ctx) -> Response:
    return json_response({"revoked": ctx.org.sessions.revoke_all()})


# --- schema and recycle bin ---------------------------------------------------------------------


def add_field(ctx: Ctx) -> Response:
    """Add a custom field to an object while the org runs: {"object", "name", "type", "length",
    "default", ...} (settings as in a schema file); existing records get the default untouched."""
    from sfemu.schema import SchemaError
    from sfemu.schema_change import add_field as add

    data = _body(ctx)
    missing = [k for k in ("object", "name") if not isinstance(data.get(k), str) or not data.get(k)]
    if missing:
        raise bad_request(f"send {', '.join(repr(k) for k in missing)} as text")
    spec = {k: v for k, v in data.items() if k not in ("object", "name")}
    try:
        f = add(ctx.org, data["object"], data["name"], spec)
    except SchemaError as exc:
        raise bad_request(str(exc)) from None
    obj = ctx.org.schema.get(data["object"])
    return json_response({"object": obj.name, "field": f.name, "type": f.type, "length": f.length,
                          "default": f.default_value,
                          "last_modified": ctx.org.schema.last_modified.isoformat()})


def empty_recycle_bin(ctx: Ctx) -> Response:
    """Purge the recycle bin now, as an admin's "Empty your recycle bin" or emptyRecycleBin() does:
    every binned record (or those deleted before {"before": ISO-8601}) is removed for good."""
    from sfemu.recyclebin import purge

    data = _body(ctx)
    if set(data) - {"before"}:
        raise bad_request("send {} or {'before': ISO-8601}")
    now = ctx.org.clock.now()
    before = _moment(data["before"], "before") if "before" in data else now + timedelta(milliseconds=1)
    purged = purge(ctx.org.store, now, cutoff=before.astimezone(UTC).replace(tzinfo=None))
    return json_response({"purged": purged})


# --- ground truth -------------------------------------------------------------------------------


def dump(ctx: Ctx) -> Response:
    """Every stored field of every record of an object (plus its deletion time), ordered by Id.

    Streamed from DuckDB in Arrow batches so a million-record object costs flat memory.
    """
    obj = _object(ctx, ctx.params["object"])
    fmt = (ctx.arg("format") or "csv").lower()
    if fmt not in DUMP_TYPES:
        raise bad_request(f"format must be one of {', '.join(DUMP_TYPES)}, not {fmt!r}")
    deleted = (ctx.arg("deleted") or "false").lower()
    if deleted not in ("true", "false", "1", "0"):
        raise bad_request("deleted must be true or false")
    cols = [_dump_column(f.name, f.sql_type) for f in obj.stored_fields]
    cols.append(_dump_column(DELETED_AT, "TIMESTAMP"))
    where = "" if deleted in ("true", "1") else f" WHERE {quote(DELETED_AT)} IS NULL"
    sql = f"SELECT {', '.join(cols)} FROM {ctx.org.store.table(obj)}{where} ORDER BY {quote('Id')}"
    if fmt == "jsonl":
        sql = f"SELECT to_json(t)::VARCHAR AS line FROM ({sql}) t"
    # A connection of its own: the stream is read after the handler's thread has moved on.
    cursor = ctx.org.store.cursor().cursor()
    reader = cursor.execute(sql).fetch_record_batch(DUMP_BATCH_ROWS)
    encode = _jsonl_chunks if fmt == "jsonl" else _csv_chunks
    return StreamingResponse(_closing(encode(reader), cursor.close), media_type=DUMP_TYPES[fmt],
                             headers={"X-Emulator-Object": obj.name})


def _dump_column(name: str, sql_type: str) -> str:
    """Datetimes as Salesforce writes them in Bulk CSV; blobs as base64 so both formats stay text."""
    col = quote(name)
    if sql_type == "TIMESTAMP":
        return f"strftime({col}, '%Y-%m-%dT%H:%M:%S.%gZ') AS {col}"
    if sql_type == "BLOB":
        return f"base64({col}) AS {col}"
    return col


def _csv_chunks(reader: pa.RecordBatchReader) -> Iterator[bytes]:
    header = True
    for batch in reader:
        out = io.BytesIO()
        pacsv.write_csv(batch, out, pacsv.WriteOptions(include_header=header))
        header = False
        yield out.getvalue()
    if header:  # no rows: still say which columns there are
        out = io.BytesIO()
        pacsv.write_csv(reader.schema.empty_table(), out)
        yield out.getvalue()


def _jsonl_chunks(reader: pa.RecordBatchReader) -> Iterator[bytes]:
    for batch in reader:
        lines = batch.column(0).to_pylist()
        if lines:
            yield ("\n".join(lines) + "\n").encode()


def _closing(chunks: Iterator[bytes], close: Callable[[], None]) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        close()


# --- routing ------------------------------------------------------------------------------------


def _guarded(handler: Callable[[Ctx], Response]) -> Callable[[Ctx], Response]:
    """Require X-Emulator-Token when the emulator was started with --control-token."""

    def checked(ctx: Ctx) -> Response:
        expected = ctx.org.control_token
        if expected and not secrets.compare_digest(ctx.headers.get("x-emulator-token", ""), expected):
            raise SalesforceError(401, "INVALID_CONTROL_TOKEN", "missing or wrong X-Emulator-Token header")
        return handler(ctx)

    return checked


def _control(methods: str | tuple[str, ...], path: str, handler: Callable[[Ctx], Response]) -> Route:
    return route(methods, PREFIX + path, _guarded(handler), kind="control", auth=False, counted=False)


ROUTES: list[Route] = [
    _control("GET", "/status", status),
    _control("POST", "/reset", reset),
    _control("POST", "/churn", churn_days),
    _control(("GET", "POST"), "/clock", clock),
    _control(("GET", "PUT", "PATCH"), "/faults", faults),
    _control(("GET", "POST"), "/limits", limits),
    _control(("GET", "DELETE"), "/ledger", ledger),
    _control("POST", "/sessions/expire", expire_sessions),
    _control("POST", "/fields", add_field),
    _control("POST", "/recyclebin/empty", empty_recycle_bin),
    _control("GET", r"/dump/(?P<object>[A-Za-z][A-Za-z0-9_]*)", dump),
]
