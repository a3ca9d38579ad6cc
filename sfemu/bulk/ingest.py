"""Bulk API 2.0 ingest jobs (`/services/data/vXX.X/jobs/ingest`), per sf_api.md §4.2.

A job is created Open, receives one CSV upload, and is processed when closed (UploadComplete) by a
worker thread; status and result calls wait briefly for that worker, so a polling client sees the
final state on its first poll. Processing splits the rows into 10,000-record batches (each counts
against DailyBulkApiBatches), resolves relationship columns (`Account.External_Id__c`) to parent
Ids, and hands each batch to the DML engine, which validates, runs automations and writes. Every
row's outcome is kept with the job for the successfulResults / failedResults / unprocessedrecords
files, which echo the uploaded rows as they were sent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from starlette.responses import Response

from sfemu.bulk.ingest_csv import CsvError, Upload, parse, result_csv
from sfemu.bulk.jobs import BulkJob, bulk_jobs, created_by, invalid_job, list_jobs, option
from sfemu.dml.engine import dml_engine
from sfemu.dml.results import NULL_MARKER, RowResult
from sfemu.errors import SalesforceError, not_found
from sfemu.ids import normalize
from sfemu.render import DELIMITERS, LINE_ENDINGS
from sfemu.routing import DATA, Ctx, json_response, no_content, route
from sfemu.store import DELETED_AT, quote

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg
    from sfemu.schema import Field, SObject

log = logging.getLogger("sfemu")

MIN_INGEST_VERSION = 41.0
OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
BATCH_ROWS = 10_000  # Salesforce's internal batch: one DailyBulkApiBatches unit each
MAX_UPLOAD_BYTES = 150 * 1024 * 1024
POLL_WAIT_SECONDS = 30.0  # a status/result call waits this long for a running job to finish
UNPROCESSED, SUCCEEDED, FAILED = 0, 1, 2
_WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bulk2-ingest")


def invalid_state(message: str) -> SalesforceError:
    return SalesforceError(400, "INVALIDJOBSTATE", message)


def sf_error(status_code: str, message: str, fields: list[str] | None = None) -> str:
    """The sf__Error cell: `<STATUS_CODE>:<message>:<fields joined by ,> --`."""
    joined = ",".join(fields or [])
    return f"{status_code}:{message}:{joined + ' ' if joined else ''}--"


@dataclass
class Outcome:
    """Per uploaded row: state (unprocessed/succeeded/failed), record id, created flag, error cell."""

    state: np.ndarray
    ids: list[str | None]
    created: np.ndarray
    errors: list[str | None]

    @classmethod
    def empty(cls, rows: int) -> Outcome:
        return cls(np.zeros(rows, np.int8), [None] * rows, np.zeros(rows, bool), [None] * rows)

    def record(self, row: int, result: RowResult) -> None:
        self.ids[row] = result.id
        if result.success:
            self.state[row], self.created[row] = SUCCEEDED, result.created
        else:
            self.state[row] = FAILED
            self.errors[row] = " ".join(sf_error(e.status_code, e.message, e.fields) for e in result.errors) \
                or sf_error("UNKNOWN_EXCEPTION", "the record could not be saved")

    def fail(self, row: int, error: str) -> None:
        self.state[row], self.errors[row] = FAILED, error


@dataclass
class IngestJob(BulkJob):
    job_type: ClassVar[str] = "V2Ingest"
    state: str = "Open"
    external_id_field: str | None = None
    assignment_rule_id: str | None = None
    contents: list[bytes] = field(default_factory=list, repr=False)
    upload: Upload | None = field(default=None, repr=False)
    outcome: Outcome | None = field(default=None, repr=False)
    apex_ms: int = 0
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    def info(self, detail: bool = False) -> dict[str, Any]:
        base = super().info()
        info: dict[str, Any] = {}
        for key, value in base.items():
            info[key] = value
            if key == "object" and self.external_id_field:
                info["externalIdFieldName"] = self.external_id_field
            if key == "state" and self.assignment_rule_id:
                info["assignmentRuleId"] = self.assignment_rule_id
            if key == "apiVersion":
                if detail:
                    info["jobType"] = self.job_type
                info["contentUrl"] = f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"
        if detail:
            state = self.outcome.state if self.outcome is not None else np.zeros(0, np.int8)
            info.update(numberRecordsProcessed=int((state != UNPROCESSED).sum()),
                        numberRecordsFailed=int((state == FAILED).sum()), retries=0,
                        totalProcessingTime=self.processing_ms, apiActiveProcessingTime=self.processing_ms,
                        apexProcessingTime=self.apex_ms)
            if self.error_message is not None:
                info["errorMessage"] = self.error_message
        return info

    def list_info(self) -> dict[str, Any]:
        info = super().info()
        info["jobType"] = self.job_type
        return info

    def parse(self) -> Upload:
        """Parse the upload and give every row an (unprocessed) outcome."""
        data = self.contents[0] if self.contents else b""
        self.upload = parse(data, DELIMITERS[self.column_delimiter], LINE_ENDINGS[self.line_ending])
        self.outcome = Outcome.empty(self.upload.num_rows)
        return self.upload

    def wait(self) -> None:
        """Let a closed job finish before answering about it (clients poll; one poll should do)."""
        if self.state in ("UploadComplete", "InProgress"):
            self.finished.wait(POLL_WAIT_SECONDS)


# --- processing --------------------------------------------------------------------------------


@dataclass
class Reference:
    """A relationship column: `Account.External_Id__c` sets AccountId to the Account with that value."""

    field: Field  # the lookup field written (AccountId)
    target: SObject  # the parent object searched
    key: Field  # the indexed field of the parent (External_Id__c, or Id)


@dataclass
class Plan:
    """How the uploaded columns map onto the object: plain fields, relationship columns, ignored."""

    fields: dict[int, Field] = field(default_factory=dict)
    references: dict[int, Reference] = field(default_factory=dict)


def _indexed(f: Field) -> bool:
    return f.name == "Id" or f.external_id or f.id_lookup


def _reference(obj: SObject, org: EmulatedOrg, header: str) -> Reference | None:
    """`Rel.Field`, or `Type:Rel.Field` for a polymorphic lookup (the docs' syntax)."""
    path, _, key_name = header.partition(".")
    type_name, _, rel_name = path.rpartition(":")
    lookup = obj.relationship(rel_name)
    if lookup is None or not key_name:
        return None
    if type_name:
        target = org.schema.get(type_name)
        if target is None or target.name.lower() not in {t.lower() for t in lookup.reference_to}:
            return None
    elif lookup.polymorphic or not lookup.reference_to:
        return None
    else:
        target = org.schema.get(lookup.reference_to[0])
    key = target.field(key_name) if target is not None else None
    if target is None or key is None or not _indexed(key):
        return None
    return Reference(lookup, target, key)


def _plan(org: EmulatedOrg, job: IngestJob, obj: SObject, header: list[str]) -> Plan:
    plan = Plan()
    seen: set[str] = set()
    deleting = job.operation in ("delete", "hardDelete")
    for i, name in enumerate(header):
        name = name.strip()
        if name.lower() in seen:
            raise CsvError(f"InvalidBatch : Duplicate field name: {name}")
        seen.add(name.lower())
        if deleting:
            if name.lower() == "id":
                plan.fields[i] = obj.field("Id")
            continue  # delete files carry only Id; anything else is ignored
        if "." in name:
            ref = _reference(obj, org, name)
            if ref is None:
                raise CsvError(f"InvalidBatch : Field name not found : {name}")
            plan.references[i] = ref
            continue
        f = obj.field(name)
        if f is None:
            raise CsvError(f"InvalidBatch : Field name not found : {name}")
        plan.fields[i] = f
    return plan


def _keys(ref: Reference, values: pa.Array) -> pa.Array:
    """The lookup key of each cell: the 18-character Id, or the text (lower-cased unless case-sensitive)."""
    if ref.key.name == "Id":
        return pa.array([normalize(v) or "" for v in values.to_pylist()], pa.string())
    return values if ref.key.case_sensitive else pc.utf8_lower(values)


def _resolve(org: EmulatedOrg, ref: Reference, values: pa.Array) -> tuple[pa.Array, dict[int, str]]:
    """Parent Ids for a relationship column, plus an sf__Error per row whose parent is not found.

    Empty cells (unchanged) and `#N/A` (null) are passed on as they are."""
    blank = pc.or_(pc.equal(values, ""), pc.equal(values, NULL_MARKER))
    keys = _keys(ref, values)
    column = f"t.{quote(ref.key.name)}"
    if ref.key.name != "Id":
        column = f"CAST({column} AS VARCHAR)"
        if not ref.key.case_sensitive:
            column = f"lower({column})"
    cur = org.store.cursor()
    cur.register("_ingest_keys", pa.table({"k": pc.unique(pc.filter(keys, pc.invert(blank)))}))
    try:
        found = cur.execute(
            f"SELECT v.k, min(t.{quote('Id')}) AS id, count(*) AS n FROM _ingest_keys v "
            f"JOIN {org.store.table(ref.target)} t ON {column} = v.k "
            f"WHERE t.{quote(DELETED_AT)} IS NULL GROUP BY v.k").fetch_arrow_table()
    finally:
        cur.unregister("_ingest_keys")
    index = pc.index_in(keys, value_set=found.column("k"))
    resolved = pc.if_else(blank, values, pc.take(found.column("id"), index))
    missing = pc.and_(pc.invert(blank), pc.is_null(index)).to_numpy(zero_copy_only=False)
    counts = pc.take(found.column("n"), index)
    several = pc.fill_null(pc.greater(counts, 1), False).to_numpy(zero_copy_only=False)
    errors: dict[int, str] = {}
    raw = values.to_pylist() if missing.any() or several.any() else []
    where = f"for field {ref.key.name} in entity {ref.target.name}"
    for row in np.flatnonzero(missing):
        errors[int(row)] = sf_error("INVALID_FIELD", f"Foreign key external ID: {raw[row]} not found {where}")
    for row in np.flatnonzero(several):
        errors[int(row)] = sf_error("INVALID_FIELD", f"Foreign key external ID: {raw[row]} matched more "
                                    f"than one record {where}")
    return pc.fill_null(resolved, ""), errors


def _batch_table(org: EmulatedOrg, plan: Plan, upload: Upload, start: int, stop: int
                 ) -> tuple[pa.Table, dict[int, str]]:
    """The rows [start, stop) as the DML engine takes them, plus per-row errors found on the way."""
    columns: dict[str, pa.Array] = {}
    errors: dict[int, str] = {}
    for i, f in plan.fields.items():
        columns[f.name] = upload.column(i).slice(start, stop - start).combine_chunks()
    for i, ref in plan.references.items():
        values = upload.column(i).slice(start, stop - start).combine_chunks()
        columns[ref.field.name], found = _resolve(org, ref, values)
        for row, error in found.items():
            errors.setdefault(row, error)
    return pa.table(columns), errors


def _missing_key(job: IngestJob, table: pa.Table) -> str | None:
    """The row error when the file lacks the column that finds the records (Id, the external id)."""
    if job.operation == "upsert" and job.external_id_field not in table.column_names:
        return sf_error("MISSING_ARGUMENT", f"{job.external_id_field} not specified")
    if job.operation != "insert" and job.operation != "upsert" and "Id" not in table.column_names:
        call = "an update" if job.operation == "update" else "a delete"
        return sf_error("MISSING_ARGUMENT", f"Id not specified in {call} call")
    return None


def _run_batch(org: EmulatedOrg, job: IngestJob, obj: SObject, plan: Plan, upload: Upload,
               start: int, stop: int) -> None:
    outcome = job.outcome
    assert outcome is not None
    table, errors = _batch_table(org, plan, upload, start, stop)
    op = job.operation
    missing = _missing_key(job, table)
    if missing:
        errors = dict.fromkeys(range(stop - start), missing)
    elif op in ("delete", "hardDelete"):
        for r, value in enumerate(table.column("Id").to_pylist()):
            key = normalize(value or "")
            if key is not None and not key.startswith(obj.key_prefix or "???"):
                errors.setdefault(r, sf_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"))
    for r, error in errors.items():
        outcome.fail(start + r, error)
    keep = np.ones(stop - start, bool)
    keep[list(errors)] = False
    if not keep.any():
        return
    rows = np.flatnonzero(keep)
    if not keep.all():
        table = table.filter(pa.array(keep))
    dml = dml_engine(org)
    options: dict[str, Any] = {"all_or_none": False, "empty_means_unchanged": True, "user_id": job.created_by}
    if op == "insert":
        results = dml.insert(obj, table, **options)
    elif op == "update":
        results = dml.update(obj, table, **options)
    elif op == "upsert":
        assert job.external_id_field is not None
        results = dml.upsert(obj, job.external_id_field, table, **options)
    else:
        results = dml.delete(table.column("Id").to_pylist(), all_or_none=False, hard=op == "hardDelete",
                             user_id=job.created_by)
    for row, result in zip(rows, results, strict=True):
        outcome.record(start + int(row), result)


def process(org: EmulatedOrg, job: IngestJob) -> None:
    """Run a closed job to its end state (JobComplete, Failed, or Aborted part-way)."""
    started = time.monotonic()
    try:
        with job.lock:
            if job.state != "UploadComplete":
                return
            job.set_state("InProgress", org.clock.now())
        obj = org.schema.get(job.object)
        assert obj is not None
        if org.faults.bulk_job_fails(job.object):
            _fail(org, job, "InternalServerError : the ingest job could not be processed")
            return
        try:
            upload = job.parse()
            plan = _plan(org, job, obj, upload.header)
        except CsvError as exc:
            _fail(org, job, str(exc))
            return
        for start in range(0, upload.num_rows, BATCH_ROWS):
            if job.state == "Aborted":
                return
            org.limits.count_bulk_batches(1)
            _run_batch(org, job, obj, plan, upload, start, min(start + BATCH_ROWS, upload.num_rows))
        with job.lock:
            if job.state == "InProgress":
                job.set_state("JobComplete", org.clock.now())
    except SalesforceError as exc:  # the DML engine refuses the whole call (the object is not createable...)
        _fail(org, job, f"{exc.error_code} : {exc.message}")
    except Exception:  # a bug must still end the job the way Salesforce ends broken jobs
        log.error("ingest job %s failed\n%s", job.id, traceback.format_exc())
        _fail(org, job, "InternalServerError : An unexpected error occurred while processing the job")
    finally:
        job.processing_ms = int((time.monotonic() - started) * 1000)
        job.finished.set()


def _fail(org: EmulatedOrg, job: IngestJob, message: str) -> None:
    with job.lock:
        job.error_message = message
        job.set_state("Failed", org.clock.now())


# --- handlers ----------------------------------------------------------------------------------


def create_ingest_job(ctx: Ctx) -> Response:
    if float(ctx.version) < MIN_INGEST_VERSION:
        raise not_found()
    body = ctx.json()
    if not isinstance(body, dict):
        raise invalid_job("InvalidJob : The request body must be a JSON object")
    operation = body.get("operation")
    if operation not in OPERATIONS:
        raise invalid_job(f"InvalidJob : Invalid operation: {operation}. "
                          f"Allowed values are {', '.join(OPERATIONS)}")
    name = body.get("object")
    if not isinstance(name, str) or not name:
        raise invalid_job("InvalidJob : The object is required")
    if body.get("contentType", "CSV") != "CSV":
        raise invalid_job(f"InvalidJob : Invalid content type: {body.get('contentType')}. "
                          "Only CSV is supported")
    delimiter = option(body, "columnDelimiter", DELIMITERS, "COMMA")
    line_ending = option(body, "lineEnding", LINE_ENDINGS, "LF")
    org = ctx.org
    obj = org.schema.get(name)
    if obj is None:
        raise invalid_job(f"InvalidJob : Unable to find object: {name}")
    if not obj.bulk_supported:
        raise SalesforceError(400, "INVALIDENTITY", f"Entity '{obj.name}' is not supported by the Bulk API.")
    external_id = body.get("externalIdFieldName")
    if operation == "upsert":
        if not external_id:
            raise invalid_job(f"InvalidJob : External ID was blank for {obj.name}. An External ID must be "
                              "specified for upsert.")
        key = obj.field(external_id) if isinstance(external_id, str) else None
        if key is None or not _indexed(key):
            raise invalid_job(f"InvalidJob : Field name provided, {str(external_id).lower()} does not match "
                              f"an External ID, Salesforce Id, or indexed field for {obj.name}")
        external_id = key.name
    else:
        external_id = None
    jobs = bulk_jobs(org)
    job = IngestJob(id=jobs.new_id(), operation=operation, object=obj.name, created_by=created_by(ctx),
                    created=org.clock.now(), api_version=ctx.version, column_delimiter=delimiter,
                    line_ending=line_ending, external_id_field=external_id,
                    assignment_rule_id=body.get("assignmentRuleId") or None)
    jobs.add(job)
    return json_response(job.info())


def _ingest_job(ctx: Ctx) -> IngestJob:
    job = bulk_jobs(ctx.org).get(ctx.params["job_id"], IngestJob)
    assert isinstance(job, IngestJob)
    return job


def upload_data(ctx: Ctx) -> Response:
    job = _ingest_job(ctx)
    media = ctx.headers.get("content-type", "text/csv").split(";")[0].strip().lower()
    if media != "text/csv":
        raise SalesforceError(415, "UNSUPPORTED_MEDIA_TYPE",
                              f"MediaType of '{media}' is not supported by this resource")
    with job.lock:
        if job.state != "Open":
            raise invalid_state(f"Unable to upload data to a job in state {job.state}: data can only be "
                                "uploaded while the job is Open")
        # Salesforce accepts a second PUT and refuses to close the job instead (see close()).
        job.contents.append(ctx.body)
    return Response(b"", status_code=201)


def _close(ctx: Ctx, job: IngestJob) -> None:
    with job.lock:
        if job.state != "Open":
            raise invalid_state(f"Closing already {job.state} Job not allowed")
        if len(job.contents) > 1:
            raise invalid_job(f"Found multipe contents for job: <{job.id[:15]}>, please 'Close' / 'Abort' "
                              "/ 'Delete' the current Job then create a new Job and make sure you only do "
                              "'PUT' once on a given Job.")
        job.set_state("UploadComplete", ctx.org.clock.now())
    _WORKERS.submit(process, ctx.org, job)


def _abort(ctx: Ctx, job: IngestJob) -> None:
    with job.lock:
        if job.state not in ("Open", "UploadComplete", "InProgress"):
            done = "Completed" if job.state == "JobComplete" else job.state
            raise invalid_state(f"Aborting already {done} Job not allowed")
        job.set_state("Aborted", ctx.org.clock.now())
        if job.outcome is None and job.contents:
            with contextlib.suppress(CsvError):  # rows never processed are listed by unprocessedrecords
                job.parse()


def patch_ingest_job(ctx: Ctx) -> Response:
    job = _ingest_job(ctx)
    body = ctx.json()
    state = body.get("state") if isinstance(body, dict) else None
    if state == "UploadComplete":
        _close(ctx, job)
    elif state == "Aborted":
        _abort(ctx, job)
    else:
        raise invalid_state(f"Invalid state: {state}. An ingest job can be set to UploadComplete or Aborted")
    return json_response(job.info())


def get_ingest_job(ctx: Ctx) -> Response:
    job = _ingest_job(ctx)
    job.wait()
    return json_response(job.info(detail=True))


def delete_ingest_job(ctx: Ctx) -> Response:
    job = _ingest_job(ctx)
    with job.lock:
        if job.state in ("Open", "InProgress"):
            raise invalid_state(f"Deleting a job in state {job.state} is not allowed: a job must be "
                                "UploadComplete, JobComplete, Aborted or Failed")
        bulk_jobs(ctx.org).remove(job.id)
    return no_content()


def _results(ctx: Ctx, state: int) -> Response:
    job = _ingest_job(ctx)
    job.wait()
    delimiter = DELIMITERS[job.column_delimiter]
    upload, outcome = job.upload, job.outcome
    if upload is None or outcome is None:
        if state == UNPROCESSED:
            body = job.contents[0] if job.contents and job.state != "JobComplete" else b""
        else:
            second = "sf__Created" if state == SUCCEEDED else "sf__Error"
            body = f'"sf__Id"{delimiter}"{second}"{LINE_ENDINGS[job.line_ending]}'.encode()
        return Response(body, media_type="text/csv")
    rows = pa.array(np.flatnonzero(outcome.state == state))
    prefix: dict[str, pa.Array] = {}
    if state == SUCCEEDED:
        prefix["sf__Id"] = pc.take(pa.array(outcome.ids, pa.string()), rows)
        prefix["sf__Created"] = pc.if_else(pc.take(pa.array(outcome.created), rows), "true", "false")
    elif state == FAILED:
        prefix["sf__Id"] = pc.take(pa.array(outcome.ids, pa.string()), rows)
        prefix["sf__Error"] = pc.take(pa.array(outcome.errors, pa.string()), rows)
    return Response(result_csv(upload, rows, prefix, delimiter), media_type="text/csv")


def successful_results(ctx: Ctx) -> Response:
    return _results(ctx, SUCCEEDED)


def failed_results(ctx: Ctx) -> Response:
    return _results(ctx, FAILED)


def unprocessed_records(ctx: Ctx) -> Response:
    return _results(ctx, UNPROCESSED)


def list_ingest_jobs(ctx: Ctx) -> Response:
    return list_jobs(ctx, IngestJob, "ingest")


JOB = DATA + r"/jobs/ingest/(?P<job_id>[0-9A-Za-z]+)"

ROUTES = [
    route("POST", DATA + r"/jobs/ingest", create_ingest_job, kind="bulk2"),
    route("GET", DATA + r"/jobs/ingest", list_ingest_jobs, kind="bulk2"),
    route("GET", JOB, get_ingest_job, kind="bulk2"),
    route("PATCH", JOB, patch_ingest_job, kind="bulk2"),
    route("DELETE", JOB, delete_ingest_job, kind="bulk2"),
    route("PUT", JOB + r"/batches", upload_data, kind="bulk2", max_body=MAX_UPLOAD_BYTES),
    route("GET", JOB + r"/successfulResults", successful_results, kind="bulk2"),
    route("GET", JOB + r"/failedResults", failed_results, kind="bulk2"),
    route("GET", JOB + r"/(?i:unprocessedrecords)", unprocessed_records, kind="bulk2"),
]
