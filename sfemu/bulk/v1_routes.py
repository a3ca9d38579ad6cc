"""Bulk API 1.0 routes (`/services/async/{version}/job...`, sf_api.md §5.1).

Every handler is wrapped so that the session check and every error are answered the Bulk 1.0 way
(`InvalidSessionId` etc. as an AsyncApiException document) instead of the REST error array: the
routes skip the dispatcher's session check and do it here, with the same session store.
Queued batches run on the first call that reads them, so poll loops end at their first poll.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from sfemu.bulk import v1_dml, v1_query
from sfemu.bulk.jobs import created_by
from sfemu.bulk.v1_model import (
    CONTENT_TYPES,
    DML_OPERATIONS,
    QUERY_OPERATIONS,
    Batch,
    Job,
    new_job_id,
    registry,
)
from sfemu.bulk.v1_wire import (
    AsyncApiError,
    async_error,
    body_response,
    error_response,
    parse_info,
    render,
    wants_json,
)
from sfemu.errors import SalesforceError
from sfemu.routing import Ctx, Handler, Route, route

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg

ASYNC = r"/services/async/(?P<version>\d{2,3}\.\d)"
JOB = ASYNC + r"/job/(?P<job_id>[0-9A-Za-z]+)"
BATCH = JOB + r"/batch/(?P<batch_id>[0-9A-Za-z]+)"
MAX_BATCH_BYTES = 10 * 1024 * 1024
CONCURRENCY = {"0": "Parallel", "1": "Serial", "parallel": "Parallel", "serial": "Serial"}


def _request_json(ctx: Ctx) -> bool:
    return wants_json(ctx.headers.get("content-type"))


def _batch_level(ctx: Ctx) -> bool:
    """Batch-level calls answer in the job's format (JSON jobs: JSON; CSV/XML jobs: XML)."""
    try:
        return registry(ctx.org).get(ctx.params["job_id"]).json
    except AsyncApiError:
        return _request_json(ctx)


def async_route(method: str, pattern: str, handler: Handler, batch_level: bool = False, **kw: Any) -> Route:
    """A Bulk 1.0 route: own session check, errors as AsyncApiException in the call's format."""

    @functools.wraps(handler)
    def wrapped(ctx: Ctx) -> Response:
        as_json = _batch_level(ctx) if batch_level else _request_json(ctx)
        from sfemu.app import session_token  # the app imports these routes

        try:
            token = session_token(ctx.headers)
            ctx.org.sessions.expire_after_calls = ctx.org.faults.config.session_expire_after
            ctx.session = ctx.org.sessions.touch(token) if token else None
            if ctx.session is None:
                raise async_error("InvalidSessionId", "Invalid session id", 400)
            return handler(ctx)
        except SalesforceError as exc:
            return error_response(exc, as_json)

    return route(method, pattern, wrapped, kind="bulk1", auth=False, nestable=False, **kw)


def _process(org: EmulatedOrg, job: Job, batch: Batch) -> None:
    """Run a queued batch (once; concurrent readers wait for the first)."""
    with batch.lock:
        if batch.state != "Queued":
            return
        batch.state = "InProgress"
        if job.is_query:
            v1_query.run(org, job, batch)
        else:
            v1_dml.run(org, job, batch)


def _process_all(org: EmulatedOrg, job: Job) -> None:
    for batch in list(job.batches):
        _process(org, job, batch)


def create_job(ctx: Ctx) -> Response:
    as_json = _request_json(ctx)
    body = parse_info(ctx.body, as_json)
    operation, name = body.get("operation"), body.get("object")
    if operation not in QUERY_OPERATIONS + DML_OPERATIONS:
        raise async_error("InvalidJob", f"Invalid operation: {operation}")
    obj = ctx.org.schema.get(str(name or ""))
    if obj is None:
        raise async_error("InvalidEntity", f"Entity '{name}' is not supported by the Bulk API.")
    content_type = str(body.get("contentType") or "XML").upper()
    if content_type not in CONTENT_TYPES:
        raise async_error("InvalidJob", f"Invalid contentType: {body.get('contentType')}")
    concurrency = CONCURRENCY.get(str(body.get("concurrencyMode", "Parallel")).lower())
    if concurrency is None:
        raise async_error("InvalidJob", f"Invalid concurrencyMode: {body.get('concurrencyMode')}")
    external_id = body.get("externalIdFieldName") or None
    if operation == "upsert":
        key = obj.field(str(external_id or ""))
        if key is None or not (key.name == "Id" or key.external_id or key.id_lookup):
            raise async_error("InvalidJob", f"External ID was blank or not an external id field: "
                              f"{external_id}")
        external_id = key.name
    else:
        external_id = None
    chunk = v1_query.pk_chunk_size(ctx.headers.get("sforce-enable-pkchunking"))
    if chunk is not None and operation not in QUERY_OPERATIONS:
        raise async_error("InvalidJob", "PK chunking is only supported for query and queryAll jobs")
    org = ctx.org
    job = Job(new_job_id(org), operation, obj.name, content_type, concurrency, created_by(ctx),
              org.clock.now(), ctx.version, external_id_field=external_id, pk_chunk_size=chunk)
    registry(org).add(job)
    return render("jobInfo", job.info(as_json), as_json, 201)


def _job(ctx: Ctx) -> Job:
    return registry(ctx.org).get(ctx.params["job_id"])


def get_job(ctx: Ctx) -> Response:
    job = _job(ctx)
    _process_all(ctx.org, job)
    as_json = _request_json(ctx)
    return render("jobInfo", job.info(as_json), as_json)


def update_job(ctx: Ctx) -> Response:
    as_json = _request_json(ctx)
    job = _job(ctx)
    state = parse_info(ctx.body, as_json).get("state")
    with job.lock:
        if state not in ("Closed", "Aborted"):
            raise async_error("InvalidJobState", f"Invalid state: {state}. Set a job Closed or Aborted")
        if job.state != "Open":
            raise async_error("InvalidJobState", f"Job in state {job.state} cannot be set {state}")
        job.state, job.modstamp = state, ctx.org.clock.now()
    if state == "Aborted":
        for batch in job.batches:
            with batch.lock:
                if batch.state == "Queued":
                    v1_query.skip(ctx.org, batch)
    return render("jobInfo", job.info(as_json), as_json)


def add_batch(ctx: Ctx) -> Response:
    job = _job(ctx)
    org = ctx.org
    with job.lock:
        if job.state != "Open":
            raise async_error("InvalidJobState", f"Unable to create batch: job {job.id} is {job.state}")
        batch = Batch(registry(org).batch_id(), job, ctx.body, org.clock.now())
        job.batches.append(batch)
        if job.is_query and job.pk_chunk_size is not None:
            job.batches.extend(v1_query.chunk_batches(org, job, batch))
            v1_query.skip(org, batch)
    location = f"/services/async/{ctx.version}/job/{job.id}/batch/{batch.id}"
    return render("batchInfo", batch.info(job.json), job.json, 201, {"Location": location})


def list_batches(ctx: Ctx) -> Response:
    job = _job(ctx)
    _process_all(ctx.org, job)
    return render("batchInfoList", {"batchInfo": [b.info(job.json) for b in job.batches]}, job.json)


def _batch(ctx: Ctx) -> tuple[Job, Batch]:
    job = _job(ctx)
    batch = job.batch(ctx.params["batch_id"])
    _process(ctx.org, job, batch)
    return job, batch


def get_batch(ctx: Ctx) -> Response:
    job, batch = _batch(ctx)
    return render("batchInfo", batch.info(job.json), job.json)


def batch_request(ctx: Ctx) -> Response:
    job, batch = _batch(ctx)
    media = {"CSV": "text/csv", "JSON": "application/json"}.get(job.content_type, "application/xml")
    return body_response(batch.data, media)


def _completed(batch: Batch) -> None:
    if batch.state != "Completed":
        raise async_error("InvalidBatch", f"Batch not completed: {batch.id} is {batch.state}")


def batch_result(ctx: Ctx) -> Response:
    job, batch = _batch(ctx)
    _completed(batch)
    if job.is_query:
        ids = [f.id for f in batch.files]
        return render("result-list", ids if job.json else {"result": ids}, job.json)
    body, media = v1_dml.results(job, batch)
    return body_response(body, media)


def query_result(ctx: Ctx) -> Response:
    job, batch = _batch(ctx)
    _completed(batch)
    if not job.is_query:
        raise async_error("InvalidBatch", "Result files are only available for query batches")
    body, media = v1_query.result_file(ctx.org, job, batch, ctx.params["result_id"])
    return body_response(body, media)


ROUTES = [
    async_route("POST", ASYNC + r"/job", create_job),
    async_route("GET", JOB, get_job),
    async_route("POST", JOB, update_job),
    async_route("POST", JOB + r"/batch", add_batch, batch_level=True, max_body=MAX_BATCH_BYTES),
    async_route("GET", JOB + r"/batch", list_batches, batch_level=True),
    async_route("GET", BATCH, get_batch, batch_level=True),
    async_route("GET", BATCH + r"/request", batch_request, batch_level=True),
    async_route("GET", BATCH + r"/result", batch_result, batch_level=True),
    async_route("GET", BATCH + r"/result/(?P<result_id>[0-9A-Za-z]+)", query_result, batch_level=True),
]
