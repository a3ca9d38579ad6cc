"""Bulk API 2.0 query jobs (`/services/data/vXX.X/jobs/query`), per sf_api.md §4.1.

A job is created in state UploadComplete and runs its query on the first status or results call,
so every client sees JobComplete on its first poll (clients otherwise sleep between polls). The
rows live in a spool (see results.py) and are served as CSV pages behind opaque locators that stay
valid for the job's life. Jobs are kept in `org.extensions["bulk2"]`, a registry that ingest jobs
(a sibling module) share: `BulkJob` holds the JobInfo fields common to both kinds.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.responses import Response

from .errors import SalesforceError, not_found
from .ids import make_id, normalize
from .query import QueryEngine, ResultSet, query_engine
from .render import DELIMITERS, LINE_ENDINGS
from .routing import DATA, Ctx, json_response, no_content, route

if TYPE_CHECKING:
    from .org import EmulatedOrg
    from .soql import CompiledQuery

JOB_PREFIX = "750"
MIN_QUERY_VERSION = 47.0
PAGE_TARGET_BYTES = 64 * 1024 * 1024  # default results page: about this much data...
PAGE_MIN_ROWS, PAGE_MAX_ROWS = 50_000, 100_000  # ...within these bounds, as Salesforce sizes by bytes
LIST_PAGE = 1000
_PREFETCH = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bulk2-prefetch")
# Job state -> the upper-case form Salesforce uses in JOB_NOT_COMPLETE messages.
STATE_CODES = {"Open": "OPEN", "UploadComplete": "UPLOAD_COMPLETE", "InProgress": "IN_PROGRESS",
               "JobComplete": "JOB_COMPLETE", "Failed": "FAILED", "Aborted": "ABORTED"}


def sf_datetime(moment: datetime) -> str:
    """JobInfo dates: `2018-12-10T17:50:19.000+0000`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def invalid_job(message: str) -> SalesforceError:
    return SalesforceError(400, "INVALIDJOB", message)


# --- shared job model (query and ingest) ---------------------------------------------------


@dataclass
class BulkJob:
    """The JobInfo fields every Bulk 2.0 job has; subclasses add their kind's fields."""

    id: str
    operation: str
    object: str
    created_by: str
    created: datetime
    api_version: str
    column_delimiter: str = "COMMA"
    line_ending: str = "LF"
    state: str = "UploadComplete"
    modstamp: datetime | None = None
    error_message: str | None = None
    processing_ms: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    job_type: ClassVar[str] = ""

    def set_state(self, state: str, now: datetime) -> None:
        self.state = state
        self.modstamp = now

    def info(self) -> dict[str, Any]:
        """The JobInfo of a create response (the keys of the docs' example, in its order)."""
        return {
            "id": self.id, "operation": self.operation, "object": self.object, "createdById": self.created_by,
            "createdDate": sf_datetime(self.created),
            "systemModstamp": sf_datetime(self.modstamp or self.created),
            "state": self.state, "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(self.api_version), "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }

    def list_info(self) -> dict[str, Any]:
        """A job as `GET /jobs/...` lists it."""
        info = self.info()
        info["jobType"] = self.job_type
        return info


class BulkJobs:
    """All Bulk 2.0 jobs of an org, by id, with id minting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, BulkJob] = {}
        self._counter = 0

    def new_id(self) -> str:
        with self._lock:
            self._counter += 1
            return make_id(JOB_PREFIX, self._counter)

    def add(self, job: BulkJob) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def get(self, job_id: str, kind: type[BulkJob]) -> BulkJob:
        """The job of that kind, or Salesforce's 404 (15- and 18-character ids both work)."""
        key = normalize(job_id)
        with self._lock:
            job = self._jobs.get(key) if key else None
        if not isinstance(job, kind):
            raise not_found()
        return job

    def remove(self, job_id: str) -> BulkJob | None:
        with self._lock:
            return self._jobs.pop(job_id, None)

    def of_kind(self, kind: type[BulkJob]) -> list[BulkJob]:
        with self._lock:
            return [j for j in self._jobs.values() if isinstance(j, kind)]


def bulk_jobs(org: EmulatedOrg) -> BulkJobs:
    return org.extensions.setdefault("bulk2", BulkJobs())


def created_by(ctx: Ctx) -> str:
    return ctx.session.user_id if ctx.session else ctx.org.admin_user()[0]


# --- query jobs ------------------------------------------------------------------------------


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


def _option(body: dict[str, Any], key: str, allowed: dict[str, str], default: str) -> str:
    value = body.get(key, default)
    if value not in allowed:
        raise invalid_job(f"Invalid value for {key}: {value}. Allowed values are {', '.join(allowed)}")
    return value


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
    delimiter = _option(body, "columnDelimiter", DELIMITERS, "COMMA")
    line_ending = _option(body, "lineEnding", LINE_ENDINGS, "LF")
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


def _encode_locator(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str) -> int:
    try:
        offset = int(base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        offset = -1
    if offset < 0:
        raise SalesforceError(400, "INVALID_QUERY_LOCATOR", f"Invalid locator: {locator}")
    return offset


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
    offset = _decode_locator(locator) if locator and locator != "null" else 0
    body, count = job.page(offset, _page_rows(ctx, result))
    end = offset + count
    headers = {"Sforce-Locator": _encode_locator(end) if end < result.num_rows else "null",
               "Sforce-NumberOfRecords": str(count)}
    return Response(body, status_code=200, headers=headers, media_type="text/csv")


def list_query_jobs(ctx: Ctx) -> Response:
    jobs: list[BulkJob] = sorted(bulk_jobs(ctx.org).of_kind(QueryJob), key=lambda j: j.id)
    job_type = ctx.arg("jobType")
    if job_type not in (None, "", "V2Query"):
        jobs = []  # Classic (Bulk 1.0) and V2Ingest jobs are not query jobs of this API
    if (ctx.arg("isPkChunkingEnabled") or "").lower() == "true":
        jobs = []  # PK chunking is a Bulk 1.0 feature
    mode = ctx.arg("concurrencyMode")
    if mode not in (None, "", "Parallel"):
        jobs = []
    locator = ctx.arg("queryLocator")
    start = _decode_locator(locator) if locator else 0
    page = jobs[start:start + LIST_PAGE]
    done = start + LIST_PAGE >= len(jobs)
    next_url = None if done else f"{ctx.base}/jobs/query?queryLocator={_encode_locator(start + LIST_PAGE)}"
    return json_response({"done": done, "records": [j.list_info() for j in page], "nextRecordsUrl": next_url})


JOB = DATA + r"/jobs/query/(?P<job_id>[0-9A-Za-z]+)"

ROUTES = [
    route("POST", DATA + r"/jobs/query", create_query_job, kind="bulk2"),
    route("GET", DATA + r"/jobs/query", list_query_jobs, kind="bulk2"),
    route("GET", JOB, get_query_job, kind="bulk2"),
    route("PATCH", JOB, abort_query_job, kind="bulk2"),
    route("DELETE", JOB, delete_query_job, kind="bulk2"),
    route("GET", JOB + r"/results", query_results, kind="bulk2"),
]
