"""The Bulk API 2.0 job model shared by query jobs (query.py) and ingest jobs (ingest.py).

Both kinds live in one registry per org (`org.extensions["bulk2"]`) with one id sequence, as on
Salesforce, where `GET /jobs/query` and `GET /jobs/ingest` list from the same store of jobs.
`BulkJob` holds the JobInfo fields common to both kinds; each module adds its own.
"""

from __future__ import annotations

import base64
import binascii
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.responses import Response

from sfemu.errors import SalesforceError, not_found
from sfemu.ids import make_id, normalize
from sfemu.routing import Ctx, json_response

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg

JOB_PREFIX = "750"
LIST_PAGE = 1000
# Job state -> the upper-case form Salesforce uses in JOB_NOT_COMPLETE messages.
STATE_CODES = {"Open": "OPEN", "UploadComplete": "UPLOAD_COMPLETE", "InProgress": "IN_PROGRESS",
               "JobComplete": "JOB_COMPLETE", "Failed": "FAILED", "Aborted": "ABORTED"}


def sf_datetime(moment: datetime) -> str:
    """JobInfo dates: `2018-12-10T17:50:19.000+0000`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def invalid_job(message: str) -> SalesforceError:
    return SalesforceError(400, "INVALIDJOB", message)


def option(body: dict[str, Any], key: str, allowed: dict[str, str], default: str) -> str:
    """A JobInfo enum option (columnDelimiter, lineEnding) or Salesforce's INVALIDJOB."""
    value = body.get(key, default)
    if value not in allowed:
        raise invalid_job(f"Invalid value for {key}: {value}. Allowed values are {', '.join(allowed)}")
    return value


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


def encode_locator(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int:
    try:
        offset = int(base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        offset = -1
    if offset < 0:
        raise SalesforceError(400, "INVALID_QUERY_LOCATOR", f"Invalid locator: {locator}")
    return offset


def list_jobs(ctx: Ctx, kind: type[BulkJob], path: str) -> Response:
    """`GET /jobs/query` or `/jobs/ingest`: jobs of one kind, 1000 a page, with the docs' filters."""
    jobs: list[BulkJob] = sorted(bulk_jobs(ctx.org).of_kind(kind), key=lambda j: j.id)
    job_type = ctx.arg("jobType")
    if job_type not in (None, "", kind.job_type):
        jobs = []  # Classic (Bulk 1.0) jobs and jobs of the other kind are not listed here
    if (ctx.arg("isPkChunkingEnabled") or "").lower() == "true":
        jobs = []  # PK chunking is a Bulk 1.0 feature
    mode = ctx.arg("concurrencyMode")
    if mode not in (None, "", "Parallel"):
        jobs = []
    locator = ctx.arg("queryLocator")
    start = decode_locator(locator) if locator else 0
    page = jobs[start:start + LIST_PAGE]
    done = start + LIST_PAGE >= len(jobs)
    next_url = None if done else f"{ctx.base}/jobs/{path}?queryLocator={encode_locator(start + LIST_PAGE)}"
    return json_response({"done": done, "records": [j.list_info() for j in page], "nextRecordsUrl": next_url})
