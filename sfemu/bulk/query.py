"""Bulk API 2.0 query jobs (`/services/data/vXX.X/jobs/query`), per sf_api.md §4.1.

A job is created in state UploadComplete and runs its query on the first status or results call,
so every client sees JobComplete on its first poll (clients otherwise sleep between polls). The
rows live in a spool (see results.py) and are served as CSV pages behind opaque locators that stay
valid for the job's life. The job model and registry are shared with ingest jobs (jobs.py).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.responses import Response

from sfemu.bulk.jobs import (
    STATE_CODES,
    BulkJob,
    bulk_jobs,
    created_by,
    decode_locator,
    encode_locator,
    invalid_job,
    list_jobs,
    option,
)
from sfemu.errors import SalesforceError, not_found
from sfemu.query import QueryEngine, ResultSet, query_engine
from sfemu.render import DELIMITERS, LINE_ENDINGS
from sfemu.routing import DATA, Ctx, json_response, no_content, route

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg
    from sfemu.soql import CompiledQuery

MIN_QUERY_VERSION = 47.0
PAGE_TARGET_BYTES = 64 * 1024 * 1024  # default results page: about this much data...
PAGE_MIN_ROWS, PAGE_MAX_ROWS = 50_000, 100_000  # ...within these bounds, as Salesforce sizes by bytes
_PREFETCH = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bulk2-prefetch")


@dataclass
class QueryJob(BulkJob):
    job_type: ClassVar[str] = "V2Query"
    compiled: CompiledQuery | None = None
    result: ResultSet | None = None
    # The page a client will most likely ask for next ((offset, rows), rendering), so that formatting
    # it overlaps with sending the current one: clients read pages strictly one after another.
    prefetched: tuple[tuple[int, int], Future[bytes]] | None = field(default=None, repr=False)

    def info(self, detail: bool = False) -> dict[str, Any]:
        info = super().info()
        if detail:
            info.update(jobType=self.job_type,
                        numberRecordsProcessed=self.result.total_size if self.result else 0,
                        retries=0, totalProcessingTime=self.processing_ms, isPkChunkingSupported=True)
            if self.error_message is not None:
                info["errorMessage"] = self.error_message
        return info

    def run(self, org: EmulatedOrg, engine: QueryEngine) -> None:
        """Run the query once (first poll), ending JobComplete or Failed."""
        with self.lock:
            if self.state != "UploadComplete" or self.compiled is None:
                return
            started = time.monotonic()
            if org.faults.bulk_job_fails(self.object):
                self._fail(org, "InternalServerError: the query job could not be processed")
                return
            try:
                self.result = engine.execute(self.compiled, expires=False)
            except SalesforceError as exc:  # QUERY_TIMEOUT fault
                self._fail(org, f"{exc.error_code}: {exc.message}")
                return
            self.processing_ms = int((time.monotonic() - started) * 1000)
            self.set_state("JobComplete", org.clock.now())

    def _fail(self, org: EmulatedOrg, message: str) -> None:
        self.error_message = message
        self.set_state("Failed", org.clock.now())

    def page(self, offset: int, rows: int) -> tuple[bytes, int]:
        """CSV of rows [offset, offset+rows) and its record count; renders the following page ahead."""
        result = self.result
        assert result is not None
        count = max(min(rows, result.num_rows - offset), 0)
        with self.lock:
            ahead, self.prefetched = self.prefetched, None
        if ahead is not None and ahead[0] == (offset, rows):
            body = ahead[1].result()
        else:
            body = self._render(result, offset, count)
        end = offset + count
        if count and end < result.num_rows:
            following = _PREFETCH.submit(self._render, result, end, min(rows, result.num_rows - end))
            with self.lock:
                self.prefetched = ((end, rows), following)
        return body, count

    def _render(self, result: ResultSet, offset: int, count: int) -> bytes:
        delimiter, line_ending = DELIMITERS[self.column_delimiter], LINE_ENDINGS[self.line_ending]
        return result.csv_page(offset, count, delimiter, line_ending)

    def drop_results(self) -> None:
        self.prefetched = None
        if self.result is not None:
            self.result.delete()
            self.result = None


def create_query_job(ctx: Ctx) -> Response:
    if float(ctx.version) < MIN_QUERY_VERSION:
        raise not_found()
    body = ctx.json()
    if not isinstance(body, dict):
        raise invalid_job("The request body must be a JSON object")
    operation = body.get("operation")
    if operation not in ("query", "queryAll"):
        raise invalid_job(f"Invalid operation: {operation}. Use query or queryAll")
    soql = body.get("query")
    if not isinstance(soql, str) or not soql.strip():
        raise invalid_job("The query is required")
    if body.get("contentType", "CSV") != "CSV":
        raise invalid_job(f"Invalid content type: {body.get('contentType')}. Only CSV is supported")
    delimiter = option(body, "columnDelimiter", DELIMITERS, "COMMA")
    line_ending = option(body, "lineEnding", LINE_ENDINGS, "LF")
    org = ctx.org
    # The compiler refuses what Bulk 2.0 refuses (INVALIDENTITY, compound fields, aggregates...).
    compiled = query_engine(org).compile(soql, include_deleted=operation == "queryAll", bulk=True)
    jobs = bulk_jobs(org)
    job = QueryJob(id=jobs.new_id(), operation=operation, object=compiled.sobject.name,
                   created_by=created_by(ctx), created=org.clock.now(), api_version=ctx.version,
                   column_delimiter=delimiter, line_ending=line_ending, compiled=compiled)
    jobs.add(job)
    return json_response(job.info())


def _query_job(ctx: Ctx) -> QueryJob:
    job = bulk_jobs(ctx.org).get(ctx.params["job_id"], QueryJob)
    assert isinstance(job, QueryJob)
    return job


def get_query_job(ctx: Ctx) -> Response:
    job = _query_job(ctx)
    job.run(ctx.org, query_engine(ctx.org))
    return json_response(job.info(detail=True))


def abort_query_job(ctx: Ctx) -> Response:
    job = _query_job(ctx)
    body = ctx.json()
    state = body.get("state") if isinstance(body, dict) else None
    if state != "Aborted":
        raise invalid_job(f"Invalid state: {state}. A query job can only be set to Aborted")
    with job.lock:
        if job.state not in ("UploadComplete", "InProgress"):
            raise invalid_job(f"Cannot abort a job in state {job.state}")
        job.set_state("Aborted", ctx.org.clock.now())
    return json_response(job.info())


def delete_query_job(ctx: Ctx) -> Response:
    job = _query_job(ctx)
    with job.lock:
        if job.state == "InProgress":
            raise invalid_job("Cannot delete a job in state InProgress; abort it first")
        bulk_jobs(ctx.org).remove(job.id)
        job.drop_results()
    return no_content()


def _page_rows(ctx: Ctx, result: ResultSet) -> int:
    raw = ctx.arg("maxRecords")
    if raw not in (None, ""):
        try:
            requested = int(raw)
        except ValueError:
            requested = 0
        if requested < 1:
            raise SalesforceError(400, "INVALIDREQUEST",
                                  f"Invalid maxRecords: {raw}. It must be a positive integer")
        return requested
    per_row = max(result.nbytes // max(result.num_rows, 1), 1)
    return min(max(PAGE_TARGET_BYTES // per_row, PAGE_MIN_ROWS), PAGE_MAX_ROWS)


def query_results(ctx: Ctx) -> Response:
    job = _query_job(ctx)
    if ctx.version != job.api_version:
        raise SalesforceError(409, "INVALIDJOB", f"The job was created with API version {job.api_version}; "
                                                 "use the same version to get its results")
    job.run(ctx.org, query_engine(ctx.org))
    result = job.result
    if job.state != "JobComplete" or result is None:
        status = STATE_CODES.get(job.state, job.state.upper())
        raise SalesforceError(400, "JOB_NOT_COMPLETE", "can only download query results of successfully "
                              f"completed bulk job with status: JOB_COMPLETE. Current status: {status}")
    locator = ctx.arg("locator") or ""
    offset = decode_locator(locator) if locator and locator != "null" else 0
    body, count = job.page(offset, _page_rows(ctx, result))
    end = offset + count
    headers = {"Sforce-Locator": encode_locator(end) if end < result.num_rows else "null",
               "Sforce-NumberOfRecords": str(count)}
    return Response(body, status_code=200, headers=headers, media_type="text/csv")


def list_query_jobs(ctx: Ctx) -> Response:
    return list_jobs(ctx, QueryJob, "query")


JOB = DATA + r"/jobs/query/(?P<job_id>[0-9A-Za-z]+)"

ROUTES = [
    route("POST", DATA + r"/jobs/query", create_query_job, kind="bulk2"),
    route("GET", DATA + r"/jobs/query", list_query_jobs, kind="bulk2"),
    route("GET", JOB, get_query_job, kind="bulk2"),
    route("PATCH", JOB, abort_query_job, kind="bulk2"),
    route("DELETE", JOB, delete_query_job, kind="bulk2"),
    route("GET", JOB + r"/results", query_results, kind="bulk2"),
]
