"""The Salesforce source: one dlt pipeline per run stages every planned object's changes.

Per object one dlt resource yields Arrow tables (never per-record dicts through dlt) of the
records whose cursor field (SystemModstamp) is >= the store's cursor, read with queryAll so
deletions arrive as rows with IsDeleted = true. Large objects go through Bulk API 2.0, small ones
through REST; Bulk refusals fall back to REST, QUERY_TIMEOUT splits the cursor window in halves.
One object failing never stops the others: its staged rows are dropped and its Section says why,
so the store applies only complete objects and its cursor cannot skip records.

Staging layout (read by sinks/snapshot.py and sources/files.py): DuckDB file `staging`, schema
STAGING_DATASET, one table per object named exactly like it (columns = catalog.arrow_schema), plus
"<Object>__deleted"(Id, deleted_at) with ids from /sobjects/X/deleted (purged from the recycle bin
too) when the cursor is recent enough for that resource.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dlt
import duckdb
import pyarrow as pa
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from replicator.config import Secret
from replicator.salesforce import soql
from replicator.salesforce.catalog import ObjectPlan, arrow_schema
from replicator.salesforce.client import AuthenticationError, BudgetExceeded, OrgClient, OrgError
from replicator.sources.prefetch import prefetched
from replicator.sources.records import csv_table, rest_table
from replicator.sources.staging_destination import attached_destination
from replicator.store import encryption
from replicator.store.schema import quote

log = logging.getLogger("replicator.sources.salesforce")

STAGING_DATASET = "salesforce"  # never the file's stem (staging.duckdb): DuckDB calls that ambiguous
DELETED_SUFFIX = "__deleted"
DELETED_SCHEMA = pa.schema([pa.field("Id", pa.string()),
                            pa.field("deleted_at", pa.timestamp("ms", tz="UTC"))])
MAX_SPLITS = 6  # QUERY_TIMEOUT: halve the window at most this many times (1/64 of it)
FILTER_CHUNK = 200  # ids per IN (...) for objects that must be queried by parent id
DELETED_WINDOW = timedelta(days=14)  # /deleted covers 15 days; keep a day of margin
EARLIEST = datetime(1999, 1, 1, tzinfo=UTC)  # before any Salesforce org existed: the first split's start
FATAL = (BudgetExceeded, AuthenticationError)  # stop the whole run, not just one object
# dlt's staging connection: DuckDB's default cap is 80% of RAM, so a 1M-row parquet load took 1.5 GB.
# Capped, it spills to the run folder instead (256 MB: ~340 MB of RSS, 10-20% slower than 512 MB).
# Insertion order is kept (DuckDB's default) although it costs a second per million rows: the store
# appends in staging order, and history lookups prune on its `_key` zonemaps only when the rows
# arrive in Id order as Bulk returns them.
STAGING_MEMORY_LIMIT = "256MB"


@dataclass
class Section:
    """One object's extract outcome, a row of the store's `sections` ledger (extract's columns)."""

    object: str
    status: str = "ok"  # ok | failed | skipped
    message: str | None = None
    items: int = 0  # rows staged (changed + deleted records)
    deleted_ids: int = 0  # ids staged from /deleted
    api_calls: int = 0
    bulk_batches: int = 0  # Bulk 2.0 query jobs
    method: str | None = None  # rest | bulk (rest after a Bulk fallback)
    seconds: float = 0.0
    org_count: int | None = None


class _Extract:
    """State shared by the resources of one run: client, cursors, the run's moment, sections."""

    def __init__(self, client: OrgClient, cursors: Mapping[str, datetime | None], run_ts: datetime,
                 full: bool) -> None:
        self.client = client
        self.cursors = cursors
        self.run_ts = run_ts if run_ts.tzinfo else run_ts.replace(tzinfo=UTC)
        self.full = full
        self.sections: dict[str, Section] = {}
        self.fatal: OrgError | None = None

    def resource(self, plan: ObjectPlan) -> Iterator[pa.Table]:
        """The object's tables, metered into its Section; any failure is caught and reported.

        Calls are metered by scope (OrgClient.scoped), not by ledger deltas: Bulk pages are fetched
        by a worker thread while dlt writes, and dlt interleaves the resources (round robin).
        """
        section = self.sections[plan.name]
        ledger = self.client.ledger
        calls, jobs = ledger.scoped_calls[plan.name], ledger.scoped_jobs[plan.name]
        items = self._tables(plan, section)
        while True:
            started = time.monotonic()
            try:
                with self.client.scoped(plan.name):
                    table = next(items)
            except StopIteration:
                return
            except Exception as exc:  # one object's failure must not stop the run
                self._fail(section, exc)
                return
            finally:
                section.api_calls = ledger.scoped_calls[plan.name] - calls
                section.bulk_batches = ledger.scoped_jobs[plan.name] - jobs
                section.seconds += time.monotonic() - started
            yield table

    def _fail(self, section: Section, exc: Exception) -> None:
        code = getattr(exc, "code", None)
        section.status = "failed"
        section.message = f"{code}: {exc}" if code else f"{type(exc).__name__}: {exc}"
        log.warning("extract of %s failed: %s", section.object, section.message)
        if isinstance(exc, FATAL):
            self.fatal = exc

    def _tables(self, plan: ObjectPlan, section: Section) -> Iterator[pa.Table]:
        if self.fatal is not None:
            section.status, section.message = "skipped", f"run stopped: {self.fatal.code}: {self.fatal}"
            return
        schema = arrow_schema(plan)
        start = None if self.full else self.cursors.get(plan.name)
        rows = 0
        for table in self._query(plan, schema, start, section):
            rows += table.num_rows
            yield table
        section.items = rows
        if rows == 0:  # the table still exists, typed, so the store sees new fields of quiet objects
            yield schema.empty_table()
        if start is not None and plan.filter_by is None:
            yield from self._deleted(plan, start, section)

    def _query(self, plan: ObjectPlan, schema: pa.Schema, start: datetime | None,
               section: Section) -> Iterator[pa.Table]:
        if plan.filter_by is not None:
            yield from self._filtered(plan, schema, start)
            return
        if plan.method == "bulk":
            rows = 0
            try:
                for table in self._window(plan, schema, start, None, 0, bulk=True):
                    rows += table.num_rows
                    yield table
                return
            except FATAL:
                raise
            except OrgError as exc:
                if rows or exc.code == "QUERY_TIMEOUT":
                    raise
                section.method = "rest"
                section.message = f"Bulk API refused ({exc.code}: {exc}); read through REST"
                log.info("%s: %s", plan.name, section.message)
        yield from self._window(plan, schema, start, None, 0, bulk=False)

    def _window(self, plan: ObjectPlan, schema: pa.Schema, start: datetime | None, end: datetime | None,
                depth: int, *, bulk: bool, where: str | None = None) -> Iterator[pa.Table]:
        """Records of [start, end); on QUERY_TIMEOUT before any row, the two halves in order."""
        text = soql.window_query(plan, start, end, where=where, order=not bulk)
        pages = self._bulk_pages(text, schema) if bulk else self._rest_pages(text, schema)
        yielded = False
        try:
            for table in pages:
                yielded = True
                yield table
        except OrgError as exc:
            if exc.code != "QUERY_TIMEOUT" or yielded or depth >= MAX_SPLITS or plan.cursor is None:
                raise
            low, high = start or EARLIEST, end or self.run_ts
            if high <= low:
                raise
            middle = low + (high - low) / 2
            log.info("%s: QUERY_TIMEOUT on [%s, %s); splitting at %s", plan.name, start, end, middle)
            yield from self._window(plan, schema, start, middle, depth + 1, bulk=bulk, where=where)
            yield from self._window(plan, schema, middle, end, depth + 1, bulk=bulk, where=where)

    def _rest_pages(self, text: str, schema: pa.Schema) -> Iterator[pa.Table]:
        for records in self.client.query_pages(text, include_deleted=True):
            if records:
                yield rest_table(records, schema)

    def _bulk_pages(self, text: str, schema: pa.Schema) -> Iterator[pa.Table]:
        """Bulk pages as tables, fetched and parsed one page ahead of dlt (see prefetch.py).

        Each page's CSV bytes are dropped once parsed, so at most three pages are alive at a time
        whatever the object's size.
        """
        def tables() -> Iterator[pa.Table]:
            with closing(self.client.bulk_query(text, include_deleted=True)) as pages:
                for page in pages:
                    table = csv_table(page, schema)
                    del page
                    if table.num_rows:
                        yield table

        yield from prefetched(tables, name="bulk-pages")

    def _filtered(self, plan: ObjectPlan, schema: pa.Schema, start: datetime | None) -> Iterator[pa.Table]:
        """Objects Salesforce only queries with a parent filter (ContentDocumentLink): per parent id batch.

        Parents come from queryAll, so links of documents in the recycle bin are read (and seen deleted).
        """
        assert plan.filter_by is not None
        field, parent = (soql.name(n) for n in plan.filter_by)
        ids: list[str] = []
        for records in self.client.query_pages(f"SELECT Id FROM {parent}", include_deleted=True):
            ids.extend(r["Id"] for r in records)
        for at in range(0, len(ids), FILTER_CHUNK):
            where = f"{field} IN {soql.id_list(ids[at:at + FILTER_CHUNK])}"
            yield from self._window(plan, schema, start, None, 0, bulk=False, where=where)

    def _deleted(self, plan: ObjectPlan, start: datetime, section: Section) -> Iterator[pa.Table]:
        """Ids deleted since the cursor per /deleted (catches records already purged from the bin)."""
        since = start.replace(second=0, microsecond=0)
        if since < self.run_ts - DELETED_WINDOW or since >= self.run_ts:
            return
        try:
            answer = self.client.deleted(plan.name, since, self.run_ts)
        except FATAL:
            raise
        except OrgError as exc:  # e.g. INVALID_TYPE: queryAll still brought the recycle bin's rows
            log.info("%s: /deleted not available (%s: %s)", plan.name, exc.code, exc)
            return
        records = answer.get("deletedRecords") or []
        if records:
            ids = pa.array([r["id"] for r in records], pa.string())
            when = pa.array([r["deletedDate"] for r in records], pa.string())
            when = when.cast(DELETED_SCHEMA.field("deleted_at").type)
            section.deleted_ids = len(records)
            yield dlt.mark.with_table_name(pa.Table.from_arrays([ids, when], schema=DELETED_SCHEMA),
                                           plan.name + DELETED_SUFFIX)


def _silence_timestamp_precision_warning(record: logging.LogRecord) -> bool:
    # dlt warns for every tz-aware ms column that DuckDB keeps timezone rather than precision: expected.
    return "does not support both timezone and precision" not in record.getMessage()


def extract(client: OrgClient, plans: list[ObjectPlan], cursors: Mapping[str, datetime | None],
            staging: Path, *, run_ts: datetime, full: bool = False, key: Secret | None = None
            ) -> list[Section]:
    """Stage the changes of every included object into `staging`; one Section per included object.

    `cursors` maps object -> the store's cursor (None or absent: read everything); `full` ignores
    them. dlt's working folder lives beside the staging file and is removed afterwards, since its
    load packages would keep raw rows. A budget or authentication failure stops the remaining
    objects (Section status "skipped"); the caller decides the run's status from the sections.
    `key`: the store's encryption key; the staging file is then encrypted with it too.
    """
    staging = Path(staging)
    work = staging.parent / "dlt"
    run = _Extract(client, cursors, run_ts, full)
    included = [p for p in plans if p.included]
    for plan in included:
        run.sections[plan.name] = Section(object=plan.name, method=plan.method, org_count=plan.records)

    schema = dlt.Schema("salesforce", normalizers={"names": "direct"})  # keep Salesforce's names verbatim

    @dlt.source(schema=schema)
    def salesforce():  # type: ignore[no-untyped-def]
        for plan in included:
            yield dlt.resource(run.resource(plan), name=plan.name, write_disposition="append")

    # an encrypted staging file is attached to a connection of ours, which dlt then borrows
    if key is not None:
        staging.parent.mkdir(parents=True, exist_ok=True)
    attached = connect_staging(staging, key) if key is not None else None
    if attached is None:
        destination = dlt.destinations.duckdb(
            DuckDbCredentials(str(staging), global_config=_staging_settings(staging)))
    else:
        destination = attached_destination(attached, staging.stem)
    pipeline = dlt.pipeline(pipeline_name="salesforce", pipelines_dir=str(work),
                            destination=destination, dataset_name=STAGING_DATASET)
    dlt_log = logging.getLogger("dlt")
    dlt_log.addFilter(_silence_timestamp_precision_warning)
    try:
        if included:
            # run() in its three steps, so the pages' Arrow memory (mimalloc keeps freed pages) goes back
            # to the OS before DuckDB loads the parquet files: the run's peak is then one step's, not two.
            pipeline.extract(salesforce(), loader_file_format="parquet")
            pa.default_memory_pool().release_unused()
            pipeline.normalize()
            pipeline.load()
        elif attached is None:  # nothing to read: still leave a (empty) staging file for the store
            staging.parent.mkdir(parents=True, exist_ok=True)
            connect_staging(staging).close()
    finally:
        dlt_log.removeFilter(_silence_timestamp_precision_warning)
        shutil.rmtree(work, ignore_errors=True)
        if attached is not None:
            attached.close()
    _drop_incomplete(staging, [s.object for s in run.sections.values() if s.status != "ok"], key)
    return [run.sections[p.name] for p in included]


def _drop_incomplete(staging: Path, objects: list[str], key: Secret | None) -> None:
    """Remove what failed objects staged before failing, so nothing of them reaches the store."""
    if not objects or not staging.exists():
        return
    con = connect_staging(staging, key)
    try:
        for obj in objects:
            for table in (obj, obj + DELETED_SUFFIX):
                con.execute(f"DROP TABLE IF EXISTS {quote(STAGING_DATASET)}.{quote(table)}")
    finally:
        con.close()


def _staging_settings(staging: Path) -> dict[str, str]:
    return {"memory_limit": STAGING_MEMORY_LIMIT, "temp_directory": str(staging.parent / "staging.tmp")}


def connect_staging(staging: Path, key: Secret | None = None) -> duckdb.DuckDBPyConnection:
    """A connection to a run's staging file, capped like dlt's (spills into the run folder);
    encrypted with `key` (the store's) when one is configured."""
    return encryption.connect(staging, key, read_only=False, config=_staging_settings(staging))



def stage_ids(client: OrgClient, plan: ObjectPlan, ids: list[str], staging: Path,
              key: Secret | None = None) -> int:
    """Stage the named records of `plan` (queryAll by Id, 200 per query) into the run's staging file.

    For records Salesforce changed without a stamp, found by the run itself (a lookup cleared when
    its target was purged): they are read again by Id and appended to the object's staging table,
    which is created with the plan's schema when the extract did not stage the object.
    """
    schema = arrow_schema(plan)
    con = connect_staging(staging, key)
    staged = 0
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(STAGING_DATASET)}")
        table = f"{quote(STAGING_DATASET)}.{quote(plan.name)}"
        con.register("_empty", schema.empty_table())
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM _empty")
        con.unregister("_empty")
        for at in range(0, len(ids), FILTER_CHUNK):
            where = f"Id IN {soql.id_list(ids[at:at + FILTER_CHUNK])}"
            text = soql.window_query(plan, None, None, where=where, order=False)
            for records in client.query_pages(text, include_deleted=True):
                if records:
                    con.register("_rows", rest_table(records, schema))
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
                    con.unregister("_rows")
                    staged += len(records)
    finally:
        con.close()
    return staged
