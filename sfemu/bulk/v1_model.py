"""Bulk API 1.0 jobs and batches (sf_api.md §5.3-5.4): the model the routes and processors share.

Job ids come from the Bulk 2.0 sequence (one `750` id space per org, as on Salesforce). A batch
is processed on the first call that looks at it (batch info, list, results, job info), so a
client's poll loop ends at its first poll; the processor is chosen by the job's operation
(v1_query for query/queryAll, v1_dml for the rest).
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sfemu.bulk.jobs import bulk_jobs
from sfemu.bulk.v1_wire import async_error
from sfemu.ids import make_id, normalize

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg
    from sfemu.query import ResultSet

BATCH_PREFIX, RESULT_PREFIX = "751", "752"
QUERY_OPERATIONS = ("query", "queryAll")
DML_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
CONTENT_TYPES = ("CSV", "JSON", "XML")
NOT_PROCESSED = "NotProcessed"  # JSON spelling; XML documents say "Not Processed"


def v1_datetime(moment: datetime, as_json: bool) -> str:
    """XML `2024-11-21T09:28:59.000Z`, JSON `2024-11-21T09:28:59.000+0000`."""
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    return stamp + ("+0000" if as_json else "Z")


@dataclass
class ResultFile:
    """One query result file: rows [offset, offset+count) of the batch's result set."""

    id: str
    offset: int
    count: int


@dataclass
class Batch:
    id: str
    job: Job
    data: bytes
    created: datetime
    state: str = "Queued"
    state_message: str | None = None
    modstamp: datetime | None = None
    processed: int = 0
    failed: int = 0
    processing_ms: int = 0
    # query batches: the Id range of a PK chunk and the batch it was cut from, the result set and its files
    id_range: tuple[str | None, str | None] | None = None
    source: Batch | None = None
    result: ResultSet | None = None
    files: list[ResultFile] = field(default_factory=list)
    # DML batches: per input row (id, success, created, error cell in `CODE:message:fields --` form)
    rows: list[tuple[str | None, bool, bool, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def finish(self, state: str, now: datetime, message: str | None = None) -> None:
        self.state, self.state_message, self.modstamp = state, message, now

    def info(self, as_json: bool) -> dict[str, Any]:
        state = self.state if as_json or self.state != NOT_PROCESSED else "Not Processed"
        info: dict[str, Any] = {"id": self.id, "jobId": self.job.id, "state": state}
        if as_json or self.state_message is not None:
            info["stateMessage"] = self.state_message
        info.update(createdDate=v1_datetime(self.created, as_json),
                    systemModstamp=v1_datetime(self.modstamp or self.created, as_json),
                    numberRecordsProcessed=self.processed, numberRecordsFailed=self.failed,
                    totalProcessingTime=self.processing_ms, apiActiveProcessingTime=self.processing_ms,
                    apexProcessingTime=0)
        return info


@dataclass
class Job:
    id: str
    operation: str
    object: str
    content_type: str
    concurrency: str
    created_by: str
    created: datetime
    api_version: str
    external_id_field: str | None = None
    pk_chunk_size: int | None = None
    state: str = "Open"
    modstamp: datetime | None = None
    batches: list[Batch] = field(default_factory=list)
    # the CSV result file a client will most likely read next (result id, rendering)
    prefetched: tuple[str, Future[bytes]] | None = field(default=None, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def is_query(self) -> bool:
        return self.operation in QUERY_OPERATIONS

    @property
    def json(self) -> bool:
        """Batch-level calls answer in JSON only for JSON jobs (sf_api.md §5.2)."""
        return self.content_type == "JSON"

    def batch(self, batch_id: str) -> Batch:
        key = normalize(batch_id)
        for b in self.batches:
            if b.id == key:
                return b
        raise async_error("InvalidBatch", f"Unable to find batch for id: {batch_id}", 404)

    def info(self, as_json: bool) -> dict[str, Any]:
        counts = {s: sum(b.state == s for b in self.batches) for s in ("Queued", "InProgress", "Completed",
                                                                        "Failed")}
        info: dict[str, Any] = {"id": self.id, "operation": self.operation, "object": self.object,
                                "createdById": self.created_by,
                                "createdDate": v1_datetime(self.created, as_json),
                                "systemModstamp": v1_datetime(self.modstamp or self.created, as_json),
                                "state": self.state}
        if self.external_id_field:
            info["externalIdFieldName"] = self.external_id_field
        info.update(concurrencyMode=self.concurrency, contentType=self.content_type,
                    numberBatchesQueued=counts["Queued"], numberBatchesInProgress=counts["InProgress"],
                    numberBatchesCompleted=counts["Completed"], numberBatchesFailed=counts["Failed"],
                    numberBatchesTotal=len(self.batches),
                    numberRecordsProcessed=sum(b.processed for b in self.batches), numberRetries=0,
                    apiVersion=float(self.api_version) if as_json else self.api_version,
                    numberRecordsFailed=sum(b.failed for b in self.batches),
                    totalProcessingTime=sum(b.processing_ms for b in self.batches),
                    apiActiveProcessingTime=sum(b.processing_ms for b in self.batches), apexProcessingTime=0)
        return info


class Registry:
    """An org's Bulk 1.0 jobs, by id, with batch and result-file id minting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._batches = itertools.count(1)
        self._results = itertools.count(1)

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def get(self, job_id: str) -> Job:
        key = normalize(job_id)
        with self._lock:
            job = self._jobs.get(key) if key else None
        if job is None:
            raise async_error("InvalidJob", f"Unable to find object: {job_id}", 404)
        return job

    def batch_id(self) -> str:
        with self._lock:
            return make_id(BATCH_PREFIX, next(self._batches))

    def result_id(self) -> str:
        with self._lock:
            return make_id(RESULT_PREFIX, next(self._results))


def registry(org: EmulatedOrg) -> Registry:
    return org.extensions.setdefault("bulk1", Registry())


def new_job_id(org: EmulatedOrg) -> str:
    return bulk_jobs(org).new_id()

