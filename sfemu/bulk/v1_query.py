"""Bulk API 1.0 query batches (sf_api.md §5.5-5.6): SOQL to result files, PK chunking.

A query batch compiles its SOQL like Bulk 2.0 (same refusals), runs it once into a spool and cuts
the rows into result files of RESULT_FILE_ROWS, so big queries come back in several files as on
Salesforce. With `Sforce-Enable-PKChunking` the added batch becomes Not Processed and one batch per
range of the object's Ids is created; a chunk batch runs the same SQL filtered on the record Id.
Files render from Arrow slices: CSV as Bulk 2.0 writes it, JSON with datetimes and dates as epoch
milliseconds (what simple-salesforce and dlt read), XML as `<queryResult>` records.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from sfemu.bulk.v1_model import NOT_PROCESSED, Batch, Job, ResultFile, registry
from sfemu.bulk.v1_wire import NS, XML_DECL, XSI, async_error, xml_text
from sfemu.errors import SalesforceError
from sfemu.query import query_engine
from sfemu.render import JsonRenderer
from sfemu.store import DELETED_AT, quote

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg
    from sfemu.query import ResultSet
    from sfemu.soql import CompiledQuery

# Rows per result file: Salesforce cuts files at 1 GB; clients read any number. The environment may set
# a smaller size so that several files can be seen without a big org.
RESULT_FILE_ROWS = int(os.environ.get("SFEMU_BULK1_RESULT_FILE_ROWS") or 100_000)
DEFAULT_CHUNK, MAX_CHUNK = 100_000, 250_000
NO_RECORDS = b"Records not found for this query"
_DAY_MS = 86_400_000
_PREFETCH = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk1-prefetch")


def pk_chunk_size(header: str | None) -> int | None:
    """`Sforce-Enable-PKChunking`: `true`, `chunkSize=N`, `chunkSize=N; startRow=…; parent=…`."""
    if header is None or header.strip().lower() in ("", "false"):
        return None
    size = DEFAULT_CHUNK
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "chunksize":
            if not value.strip().isdecimal() or not 0 < int(value) <= MAX_CHUNK:
                raise async_error("InvalidJob", f"Invalid chunkSize: {value.strip()}. "
                                  f"It must be an integer between 1 and {MAX_CHUNK}")
            size = int(value)
        elif key.strip().lower() not in ("true", "startrow", "parent", ""):
            raise async_error("InvalidJob", f"Unsupported PK chunking option: {key.strip()}")
    return size


def _compile(org: EmulatedOrg, job: Job, batch: Batch) -> CompiledQuery:
    soql = batch.data.decode("utf-8", errors="replace")
    compiled = query_engine(org).compile(soql, include_deleted=job.operation == "queryAll", bulk=True)
    if compiled.sobject.name.lower() != job.object.lower():
        raise SalesforceError(400, "INVALID_OPERATION", f"The query object {compiled.sobject.name} does not "
                              f"match the job object {job.object}")
    return compiled


def chunk_batches(org: EmulatedOrg, job: Job, batch: Batch) -> list[Batch]:
    """The PK-chunk batches for a query batch: one per `chunk` Ids of the object, in Id order."""
    obj = org.schema.get(job.object)
    assert obj is not None and job.pk_chunk_size is not None
    live = "" if job.operation == "queryAll" else f" WHERE {quote(DELETED_AT)} IS NULL"
    sql = (f"SELECT id FROM (SELECT {quote('Id')} AS id, row_number() OVER (ORDER BY {quote('Id')}) - 1 AS n "
           f"FROM {org.store.table(obj)}{live}) WHERE n % ? = 0 ORDER BY id")
    starts = [r[0] for r in org.store.cursor().execute(sql, [job.pk_chunk_size]).fetchall()] or [None]
    ends: list[str | None] = [*starts[1:], None]
    ids = registry(org)
    return [Batch(ids.batch_id(), job, batch.data, org.clock.now(), id_range=(lo, hi), source=batch)
            for lo, hi in zip(starts, ends, strict=True)]


def _by_id(org: EmulatedOrg, job: Job, source: Batch) -> ResultSet:
    """The chunked query's rows in record-Id order, run once for all its chunks (kept by the batch
    they were cut from), so that each chunk's `WHERE Id >= X AND Id < Y` is a contiguous slice."""
    with source.lock:
        if source.result is None:
            engine, compiled = query_engine(org), _compile(org, job, source)
            result = engine.execute(compiled, expires=False)  # tables are mostly in Id order already
            if not _id_ordered(result):
                result.delete()
                ordered = f"SELECT * FROM ({compiled.sql}) AS q ORDER BY q.{quote('__id')}"
                result = engine.execute(dataclasses.replace(compiled, sql=ordered), expires=False)
            source.result = result
        return source.result


def _id_ordered(result: ResultSet) -> bool:
    if result.spool is None or result.num_rows < 2:
        return True
    ids = result.spool.slice(0, result.num_rows).column("__id")
    return bool(pc.all(pc.less_equal(ids[:-1], ids[1:])).as_py())


def _slice(result: ResultSet, lo: str | None, hi: str | None) -> tuple[int, int]:
    """The rows [start, stop) of an Id-ordered result whose Id is in [lo, hi)."""
    if result.spool is None or not result.num_rows:
        return 0, 0
    ids = result.spool.slice(0, result.num_rows).column("__id")
    start = 0 if lo is None else pc.sum(pc.less(ids, lo)).as_py() or 0
    stop = result.num_rows if hi is None else pc.sum(pc.less(ids, hi)).as_py() or 0
    return start, stop


def run(org: EmulatedOrg, job: Job, batch: Batch) -> None:
    """Run a queued query batch to Completed (with its result files) or Failed."""
    started = time.monotonic()
    org.limits.count_bulk_batches(1)
    try:
        if org.faults.bulk_job_fails(job.object):
            raise SalesforceError(500, "InternalServerError", "the query batch could not be processed")
        if batch.source is not None and batch.id_range is not None:
            result = _by_id(org, job, batch.source)
            start, stop = _slice(result, *batch.id_range)
        else:
            result = query_engine(org).execute(_compile(org, job, batch), expires=False)
            start, stop = 0, result.num_rows
    except SalesforceError as exc:
        batch.finish("Failed", org.clock.now(),
                     f"InvalidBatch : Failed to process query: {exc.error_code}: {exc.message}")
        return
    batch.result = result
    ids = registry(org)
    batch.files = [ResultFile(ids.result_id(), offset, min(RESULT_FILE_ROWS, stop - offset))
                   for offset in range(start, max(stop, start + 1), RESULT_FILE_ROWS)]
    batch.processed = stop - start
    batch.processing_ms = int((time.monotonic() - started) * 1000)
    batch.finish("Completed", org.clock.now())


def skip(org: EmulatedOrg, batch: Batch) -> None:
    batch.finish(NOT_PROCESSED, org.clock.now(), "Not processed")


def _epoch_ms(table: pa.Table) -> pa.Table:
    """Datetime and date columns as epoch milliseconds: Bulk 1.0 JSON's representation."""
    for i, column in enumerate(table.columns):
        if pa.types.is_timestamp(column.type):
            ms = pc.cast(pc.cast(column, pa.timestamp("ms", column.type.tz)), pa.int64())
        elif pa.types.is_date(column.type):
            ms = pc.multiply(pc.cast(pc.cast(column, pa.date32()), pa.int64()), _DAY_MS)
        else:
            continue
        table = table.set_column(i, table.schema.field(i).name, ms)
    return table


def _records(org: EmulatedOrg, job: Job, batch: Batch, file: ResultFile) -> list[dict[str, Any]]:
    result = batch.result
    assert result is not None and result.spool is not None
    table = _epoch_ms(result.spool.slice(file.offset, file.count))
    return JsonRenderer(result.compiled, org.schema, job.api_version).records(table, org.store.cursor())


def _xml_value(key: str, value: Any) -> str:
    if value is None:
        return f'<{key} xsi:nil="true"/>'
    if isinstance(value, dict):
        attributes = value.get("attributes") or {}
        inner = f"<type>{xml_text(attributes.get('type', ''))}</type>" if attributes else ""
        inner += "".join(_xml_value(k, v) for k, v in value.items() if k != "attributes")
        return f'<{key} xsi:type="sObject">{inner}</{key}>'
    return f"<{key}>{xml_text(value)}</{key}>"


def _csv(result: ResultSet, file: ResultFile) -> bytes:
    return result.csv_page(file.offset, file.count) if file.count else NO_RECORDS


def _following(job: Job, result_id: str) -> tuple[ResultSet, ResultFile] | None:
    """The result file a client reads after this one: the batch's next file, else the next batch's first."""
    files = [(b.result, f) for b in job.batches if b.state == "Completed" and b.result is not None
             for f in b.files]
    for i, (_, f) in enumerate(files[:-1]):
        if f.id == result_id:
            return files[i + 1]
    return None


def _csv_file(job: Job, result: ResultSet, file: ResultFile) -> bytes:
    """A CSV result file, rendered ahead if it was the one expected; starts rendering the next one,
    so that formatting overlaps with sending (clients read result files one after another)."""
    with job.lock:
        ahead, job.prefetched = job.prefetched, None
    body = ahead[1].result() if ahead is not None and ahead[0] == file.id else _csv(result, file)
    following = _following(job, file.id)
    if following is not None:
        rendering = _PREFETCH.submit(_csv, *following)
        with job.lock:
            job.prefetched = (following[1].id, rendering)
    return body


def result_file(org: EmulatedOrg, job: Job, batch: Batch, result_id: str) -> tuple[bytes, str]:
    """The body and content type of one result file, in the job's content type."""
    file = next((f for f in batch.files if f.id == result_id), None)
    if file is None or batch.result is None:
        raise async_error("InvalidBatch", f"Unable to find result for id: {result_id}", 404)
    if job.content_type == "CSV":
        return _csv_file(job, batch.result, file), "text/csv"
    records = _records(org, job, batch, file) if file.count else []
    if job.content_type == "JSON":
        return json.dumps(records, ensure_ascii=False).encode(), "application/json"
    body = "".join(_xml_value("records", r) for r in records)
    xml = f'{XML_DECL}<queryResult xmlns="{NS}" xmlns:xsi="{XSI}">{body}</queryResult>'
    return xml.encode(), "application/xml"
