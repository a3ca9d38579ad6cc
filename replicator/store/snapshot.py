"""The snapshot store: one DuckDB file holding every version of every backed-up record.

Layout (all names verbatim from Salesforce, always quoted):
  hist."<Object>"            fields + _valid_from, _valid_to (NULL = current), _run_id, _deleted, _key
  main."<Object>"            view: current, not deleted records, no metadata columns
  main."<Object>_as_of"(x)   table macro: records as of run id x (INTEGER) or instant x (timestamp/ISO text)
  main."<Object>_history"(id)  table macro: every version of one record, tombstones included, oldest first
  main.objects               view: per object current / deleted / version counts
  main.runs, main.sections, main.activity, main.tracked_objects   the run ledger
A version's validity is [_valid_from, _valid_to) in run timestamps (runs.run_ts, strictly increasing),
so "as of run N" is exactly the state right after run N committed.

Why one transaction per run: `apply` writes every object's versions, the sections and the run's final
status in ONE DuckDB transaction. A process killed before COMMIT leaves nothing of the run (DuckDB
writes the WAL at commit); the run row, committed earlier by `begin_run`, stays 'running' and the
next writer marks it 'aborted'. The cursor only moves with committed versions, so the next run
re-reads the same range and completes the work without duplicate or lost versions.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from replicator.salesforce.catalog import ObjectPlan
from replicator.store.merge import Counts, evolve, merge_object, staged_tables
from replicator.store.schema import (
    HELPER_MACROS,
    META_COLUMNS,
    as_of_select,
    literal,
    object_sql,
    objects_view,
    quote,
)

__all__ = ["Counts", "Section", "SnapshotStore"]

FORMAT_VERSION = "1"
FAILED = "failed"
LEDGER_DDL = (
    "CREATE SCHEMA IF NOT EXISTS hist",
    "CREATE TABLE IF NOT EXISTS main.store_info (key VARCHAR NOT NULL, value VARCHAR)",
    """CREATE TABLE IF NOT EXISTS main.runs (run_id INTEGER NOT NULL, job VARCHAR, org VARCHAR, kind VARCHAR,
        "full" BOOLEAN, status VARCHAR NOT NULL, message VARCHAR, run_ts TIMESTAMPTZ NOT NULL,
        started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ, pid INTEGER, host VARCHAR,
        items BIGINT, inserted BIGINT, updated BIGINT, deleted BIGINT, api_calls BIGINT, bulk_batches BIGINT,
        counters JSON)""",
    """CREATE TABLE IF NOT EXISTS main.sections (run_id INTEGER NOT NULL, object VARCHAR NOT NULL,
        status VARCHAR, message VARCHAR, items BIGINT, inserted BIGINT, updated BIGINT, deleted BIGINT,
        api_calls BIGINT, bulk_batches BIGINT, method VARCHAR, seconds DOUBLE, org_count BIGINT,
        store_count BIGINT)""",
    """CREATE TABLE IF NOT EXISTS main.activity (run_id INTEGER, object VARCHAR,
        logged_at TIMESTAMPTZ NOT NULL, status VARCHAR, message VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS main.tracked_objects (object VARCHAR NOT NULL, cursor_field VARCHAR,
        first_run INTEGER, last_run INTEGER)""",
    # Describe sizes of every field the store keeps (latest describe wins): exports size columns by them.
    """CREATE TABLE IF NOT EXISTS main.field_types (object VARCHAR NOT NULL, field VARCHAR NOT NULL,
        type VARCHAR, length INTEGER, precision INTEGER, scale INTEGER, run_id INTEGER)""",
    # Every export and change-file download: what, when, where (a GDPR forget must find the copies).
    """CREATE TABLE IF NOT EXISTS main.exports (export_id INTEGER NOT NULL,
        exported_at TIMESTAMPTZ NOT NULL, kind VARCHAR NOT NULL, format VARCHAR, dialect VARCHAR,
        run_id INTEGER, from_run INTEGER,
        objects VARCHAR[], destination VARCHAR, status VARCHAR NOT NULL, rows BIGINT,
        finished_at TIMESTAMPTZ, message VARCHAR)""",
)
# Compact when at least this share of the file's blocks (and this many 256 KiB blocks) are free.
# Measured (benchmarks/storage.py, 1M records, 30 runs at 1% churn): the used data is 1.40x one full
# snapshot; free blocks come on top until a compaction. 5% keeps the file under 1.5x at any moment,
# at the price of a 2-3 s compaction about every ten daily runs.
COMPACT_FREE_FRACTION = 0.05
COMPACT_MIN_FREE_BLOCKS = 16
RUN_TOTALS = ("items", "inserted", "updated", "deleted", "api_calls", "bulk_batches")


@dataclass
class Section:
    """What the backup did for one object in one run (the source fills it; apply adds the counts)."""

    object: str
    status: str  # "ok", "partial", "failed" (failed: its staged rows are not applied), ...
    message: str | None = None
    items: int = 0
    api_calls: int = 0
    bulk_batches: int = 0
    method: str | None = None
    seconds: float = 0.0
    org_count: int | None = None
    store_count: int | None = None  # None: apply fills in the current record count after the run


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def months_before(dt: datetime, months: int) -> datetime:
    """The same instant `months` calendar months earlier (the day clamped to the month's length)."""
    y, m = divmod(dt.year * 12 + dt.month - 1 - months, 12)
    m += 1
    for day in range(dt.day, 0, -1):
        try:
            return dt.replace(year=y, month=m, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class SnapshotStore:
    """The store file. Keep one instance open for a whole backup run (see mark_abandoned)."""

    def __init__(self, path: Path, *, read_only: bool = False, memory_limit: str = "512MB") -> None:
        """`memory_limit`: DuckDB's cap; beyond it, big loads spill to <path>.tmp (memory stays flat).

        512 MB keeps a run's peak RSS under ~700 MB whatever the object's size; a 1 GB cap would make
        the first load of 1M records x 53 fields ~3 s faster (no eviction) for ~200 MB more RSS.
        """
        self.path = Path(path)
        self.read_only = read_only
        self.memory_limit = memory_limit
        self._own_runs: set[int] = set()
        self._con = self._connect()
        if not read_only:
            self.mark_abandoned()

    # -- connection -------------------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.path), read_only=self.read_only)
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET memory_limit = ?", [self.memory_limit])
        if not self.read_only:
            con.execute("BEGIN")
            for ddl in LEDGER_DDL:
                con.execute(ddl)
            if not con.execute("SELECT count(*) FROM main.store_info").fetchone()[0]:
                con.execute("INSERT INTO main.store_info VALUES ('format', ?)", [FORMAT_VERSION])
            for ddl in HELPER_MACROS:
                con.execute(ddl)
            con.execute("COMMIT")
        return con

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, query: str, params: Iterable[Any] = ()) -> pa.Table:
        """Internal read helper for trusted SQL with bound parameters (history.py, backup checks)."""
        return self._con.execute(query, list(params)).to_arrow_table()

    def objects(self) -> list[str]:
        """Objects with a history table, by name."""
        return [r[0] for r in self._con.execute(
            "SELECT object FROM main.tracked_objects ORDER BY object").fetchall()]

    def fields(self, obj: str) -> list[str]:
        """The field columns of an object's history table (every field it ever had), in table order."""
        return [r[0] for r in self._con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'hist' AND table_name = ? AND NOT list_contains(?, column_name) "
            "ORDER BY column_index", [obj, list(META_COLUMNS)]).fetchall()]

    quote = staticmethod(quote)

    # -- runs ---------------------------------------------------------------------------------------

    def mark_abandoned(self) -> int:
        """Mark 'running' runs that no live store instance of this process owns as 'aborted'.

        Sound because DuckDB lets only one process open the file read-write: whoever began those
        runs has closed the store or died. Returns how many runs were marked.
        """
        return self._con.execute(
            "UPDATE main.runs SET status = 'aborted', finished_at = ?, "
            "message = coalesce(message, 'the process running it ended before the run finished') "
            "WHERE status = 'running' AND NOT list_contains(?, run_id)",
            [_now(), sorted(self._own_runs)]).fetchone()[0]

    def begin_run(self, job: str, org: str, kind: str, full: bool) -> int:
        """Register a run ('running', committed at once) with its run timestamp; returns its id."""
        self.mark_abandoned()
        now = _now()
        run_id, last_ts = self._con.execute(
            "SELECT coalesce(max(run_id), 0) + 1, max(run_ts) FROM main.runs").fetchone()
        run_ts = now if last_ts is None else max(now, last_ts + timedelta(milliseconds=1))
        self._con.execute(
            'INSERT INTO main.runs (run_id, job, org, kind, "full", status, run_ts, started_at, pid, host) '
            "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
            [run_id, job, org, kind, full, run_ts, now, os.getpid(), socket.gethostname()])
        self._own_runs.add(run_id)
        return run_id

    def runs(self) -> list[dict[str, Any]]:
        return _rows(self._con.execute("SELECT * FROM main.runs ORDER BY run_id"))

    def run(self, run_id: int) -> dict[str, Any] | None:
        rows = _rows(self._con.execute("SELECT * FROM main.runs WHERE run_id = ?", [run_id]))
        return rows[0] if rows else None

    def sections(self, run_id: int) -> list[dict[str, Any]]:
        return _rows(self._con.execute(
            "SELECT * FROM main.sections WHERE run_id = ? ORDER BY object", [run_id]))

    def activity(self, obj: str | None = None, run_id: int | None = None) -> list[dict[str, Any]]:
        """The activity log (what failed and why), newest first, optionally for one object or run."""
        return _rows(self._con.execute(
            "SELECT * FROM main.activity WHERE (? IS NULL OR object = ?) AND (? IS NULL OR run_id = ?) "
            "ORDER BY logged_at DESC, object", [obj, obj, run_id, run_id]))

    def log_activity(self, run_id: int | None, obj: str | None, status: str, message: str) -> None:
        self._con.execute("INSERT INTO main.activity VALUES (?, ?, ?, ?, ?)",
                          [run_id, obj, _now(), status, message])

    def _running(self, run_id: int) -> dict[str, Any]:
        run = self.run(run_id)
        if run is None:
            raise ValueError(f"run {run_id} does not exist")
        if run["status"] != "running":
            raise ValueError(f"run {run_id} is {run['status']}, not running")
        return run

    def finish_run(self, run_id: int, status: str, message: str | None = None,
                   counters: Mapping[str, Any] | None = None, sections: Iterable[Section] = ()) -> None:
        """Close a run that ends without apply (failed before staging, disabled org, ...)."""
        self._running(run_id)
        self._con.execute("BEGIN")
        try:
            self._close_run(run_id, status, message, counters, list(sections), {})
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._own_runs.discard(run_id)

    def _close_run(self, run_id: int, status: str, message: str | None, counters: Mapping[str, Any] | None,
                   sections: list[Section], counts: Mapping[str, Counts]) -> None:
        """Sections, activity and the run's final row (inside the caller's transaction)."""
        now = _now()
        totals = dict.fromkeys(RUN_TOTALS, 0)
        for s in sections:
            c = counts.get(s.object, Counts())
            self._con.execute(
                "INSERT INTO main.sections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, s.object, s.status, s.message, s.items, c.inserted, c.updated, c.deleted,
                 s.api_calls, s.bulk_batches, s.method, s.seconds, s.org_count, s.store_count])
            if s.status not in ("ok", "completed"):
                self._con.execute("INSERT INTO main.activity VALUES (?, ?, ?, ?, ?)",
                                  [run_id, s.object, now, s.status, s.message or s.status])
            for key, value in (("items", s.items), ("inserted", c.inserted), ("updated", c.updated),
                               ("deleted", c.deleted), ("api_calls", s.api_calls),
                               ("bulk_batches", s.bulk_batches)):
                totals[key] += value
        for key in RUN_TOTALS:
            if counters and key in counters:
                totals[key] = counters[key]
        if status == FAILED and message:
            self._con.execute("INSERT INTO main.activity VALUES (?, NULL, ?, ?, ?)",
                              [run_id, now, status, message])
        self._con.execute(
            "UPDATE main.runs SET status = ?, message = ?, finished_at = ?, items = ?, inserted = ?, "
            "updated = ?, deleted = ?, api_calls = ?, bulk_batches = ?, counters = ? WHERE run_id = ?",
            [status, message, now, *(totals[k] for k in RUN_TOTALS),
             json.dumps(dict(counters)) if counters else None, run_id])

    # -- apply --------------------------------------------------------------------------------------

    def apply(self, run_id: int, staging: Path, plans: list[ObjectPlan], sections: list[Section], *,
              status: str | None = None, message: str | None = None,
              counters: Mapping[str, Any] | None = None, checkpoint: bool = True) -> dict[str, Counts]:
        """Commit a run's staged records as versions, its sections and its final status: one transaction.

        Objects whose Section is 'failed' are left untouched (their staged rows may be an incomplete
        range, and the cursor must not move past unread records). `status` defaults to 'completed'
        when no section failed, 'failed' when all did, else 'partial'. `checkpoint`: end with
        checkpoint() (the default; benchmarks time it apart).
        """
        run_ts = self._running(run_id)["run_ts"]
        failed = {s.object for s in sections if s.status == FAILED}
        con = self._con
        con.execute(f"ATTACH {literal(str(staging))} AS _stg (READ_ONLY)")
        try:
            con.execute("BEGIN")
            try:
                tables = staged_tables(con, "_stg")
                counts: dict[str, Counts] = {}
                for plan in plans:
                    if not plan.included or plan.name in failed:
                        continue
                    columns = evolve(con, plan.name, plan)
                    counts[plan.name] = merge_object(con, plan, columns, tables.get(plan.name),
                                                     tables.get(plan.name + "__deleted"), run_id, run_ts)
                    self._track(plan, run_id)
                    self._record_field_types(plan, run_id)
                    for ddl in object_sql(plan.name):
                        con.execute(ddl)
                con.execute(objects_view(self.objects()))
                live = self._live_counts()
                sections = [s if s.store_count is not None or s.object not in live
                            else Section(**{**asdict(s), "store_count": live[s.object]}) for s in sections]
                if status is None:
                    status = ("completed" if not failed else
                              FAILED if sections and all(s.status == FAILED for s in sections) else "partial")
                self._close_run(run_id, status, message, counters, sections, counts)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.execute("DETACH _stg")
        self._own_runs.discard(run_id)
        if checkpoint:
            self.checkpoint()
        return counts

    def checkpoint(self) -> None:
        """Write the WAL into the file, then compact when free blocks pass COMPACT_FREE_FRACTION.

        DuckDB reuses free blocks but never shrinks the file, and its checkpoints merge the small row
        groups that daily appends create, which can leave a third of a 1M-record store free at once.
        Compacting then (seconds per million versions, every dozen runs or so) keeps the file near
        its used size.
        """
        self._con.execute("CHECKPOINT")
        total, free = self._con.execute(
            "SELECT total_blocks, free_blocks FROM pragma_database_size() "
            "WHERE database_name = current_database()").fetchone()
        if total and free >= COMPACT_MIN_FREE_BLOCKS and free >= total * COMPACT_FREE_FRACTION:
            self.compact()

    def _track(self, plan: ObjectPlan, run_id: int) -> None:
        updated = self._con.execute(
            "UPDATE main.tracked_objects SET cursor_field = ?, last_run = ? WHERE object = ?",
            [plan.cursor, run_id, plan.name]).fetchone()[0]
        if not updated:
            self._con.execute("INSERT INTO main.tracked_objects VALUES (?, ?, ?, ?)",
                              [plan.name, plan.cursor, run_id, run_id])

    def _live_counts(self) -> dict[str, int]:
        return dict(self._con.execute("SELECT object, records FROM main.objects").fetchall())

    # -- reads --------------------------------------------------------------------------------------

    def cursor(self, obj: str) -> datetime | None:
        """Largest cursor-field value among committed versions (tombstones included); None if none."""
        row = self._con.execute("SELECT cursor_field FROM main.tracked_objects WHERE object = ?",
                                [obj]).fetchone()
        if row is None or row[0] is None:
            return None
        return self._con.execute(f"SELECT max({quote(row[0])}) FROM hist.{quote(obj)}").fetchone()[0]

    def current_ids(self, obj: str) -> pa.Table:
        """Ids of the current, not deleted records (for a --full reconcile against the org)."""
        if obj not in self.objects():
            return pa.table({"Id": pa.array([], pa.string())})
        return self.read(f'SELECT "Id" FROM hist.{quote(obj)} WHERE _valid_to IS NULL AND NOT _deleted')

    def current_versions(self, obj: str, columns: list[str], ids: pa.Array) -> pa.Table:
        """Id plus the named columns (those the history table has) of the current, live versions of
        `ids`: e.g. the blob sha a file body had, so unchanged bodies are not downloaded again."""
        if obj not in self.objects():
            return pa.table({"Id": pa.array([], pa.string())})
        have = set(self.fields(obj))
        select = ", ".join(f"h.{quote(c)}" for c in columns if c in have and c != "Id")
        cur = self._con.cursor()
        try:
            cur.register("_wanted_ids", pa.table({"Id": ids}))
            return cur.execute(
                f'SELECT h."Id"{", " + select if select else ""} FROM hist.{quote(obj)} h '
                'WHERE h._valid_to IS NULL AND NOT h._deleted AND h."Id" IN (SELECT "Id" FROM _wanted_ids)'
            ).to_arrow_table()
        finally:
            cur.close()

    def current_counts(self) -> dict[str, int]:
        """Current (not deleted) record count per object."""
        if not self.objects():
            return {}
        return self._live_counts()

    def as_of_ts(self, as_of: int | datetime) -> datetime:
        """The instant a run id or timestamp stands for (a run's run_ts; naive datetimes are UTC)."""
        if isinstance(as_of, datetime):
            return as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        run = self.run(as_of)
        if run is None:
            raise ValueError(f"run {as_of} does not exist")
        return run["run_ts"]

    def sql(self, query: str, as_of: int | datetime | None = None) -> pa.Table:
        """Run one analyst SELECT, read-only; with `as_of`, object names mean their state at that run/time.

        The query runs on its own connection inside a transaction that is always rolled back, after a
        check that it is a single SELECT. With `as_of`, temporary views named like the objects shadow
        the current-state views (DuckDB resolves both "<Object>" and main."<Object>" to the temporary
        view first), so an unchanged query reads the past; the `_as_of` and `_history` macros stay
        available for comparing with other runs.
        """
        statements = self._con.extract_statements(query)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise ValueError("sql() runs exactly one SELECT statement")
        cur = self._con.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute("BEGIN")
            if as_of is not None:
                cur.execute("CREATE TEMP TABLE _as_of AS SELECT CAST(? AS TIMESTAMPTZ) AS ts",
                            [self.as_of_ts(as_of)])
                for obj in self.objects():
                    cur.execute(f"CREATE TEMP VIEW {quote(obj)} AS "
                                + as_of_select(obj, "(SELECT ts FROM temp._as_of)"))
            # The relation API hands DuckDB's result to Arrow about twice as fast as execute() (measured:
            # 0.23 s vs 0.49 s for 1M rows of 17 columns).
            result = cur.sql(query).to_arrow_table()
            cur.execute("ROLLBACK")
            return result
        finally:
            cur.close()

    # -- field types and the exports ledger (used by sources/snapshot.py and export.py) -------------

    def _record_field_types(self, plan: ObjectPlan, run_id: int) -> None:
        """Remember the describe type and sizes of the plan's stored fields (inside apply's transaction)."""
        rows = [(plan.name, name, f.type, f.length, f.precision, f.scale, run_id)
                for name, f in ((f.name, f) for f in plan.included_fields)]
        if plan.blob_field and all(r[1] != plan.blob_field for r in rows):
            rows.append((plan.name, plan.blob_field, "base64", 0, 0, 0, run_id))
        self._con.execute("DELETE FROM main.field_types WHERE object = ? AND list_contains(?, field)",
                          [plan.name, [r[1] for r in rows]])
        self._con.executemany("INSERT INTO main.field_types VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def _has_ledger_table(self, name: str) -> bool:
        """False for a store written before the table existed and opened read-only (no DDL ran)."""
        return bool(self._con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = ?", [name]).fetchone()[0])

    def field_types(self, obj: str) -> dict[str, dict[str, Any]]:
        """Field -> {type, length, precision, scale} as last described (empty for stores from before)."""
        if not self._has_ledger_table("field_types"):
            return {}
        rows = _rows(self._con.execute("SELECT field, type, length, precision, scale FROM main.field_types "
                                       "WHERE object = ?", [obj]))
        return {r.pop("field"): r for r in rows}

    def column_types(self, obj: str) -> dict[str, str]:
        """Field column -> DuckDB type of an object's history table."""
        return dict(self._con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'hist' AND table_name = ? AND NOT list_contains(?, column_name) "
            "ORDER BY column_index", [obj, list(META_COLUMNS)]).fetchall())

    def stream(self, query: str, params: Iterable[Any] = (),
               batch_rows: int = 10_000) -> pa.RecordBatchReader:
        """Trusted SQL with bound parameters, read as Arrow batches (memory stays flat)."""
        cur = self._con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        reader = cur.execute(query, list(params)).to_arrow_reader(batch_rows)

        def batches() -> Iterable[pa.RecordBatch]:
            try:
                yield from reader
            finally:
                cur.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def begin_export(self, kind: str, *, fmt: str | None, dialect: str | None, run_id: int | None,
                     from_run: int | None, objects: list[str], destination: str) -> int:
        """Record an export before it writes anything (status 'running'), so even a crashed export's
        files are on the ledger; returns its id."""
        if self.read_only:
            raise ValueError("the store is open read-only; exports must be recorded")
        export_id = self._con.execute(
            "SELECT coalesce(max(export_id), 0) + 1 FROM main.exports").fetchone()[0]
        self._con.execute(
            "INSERT INTO main.exports (export_id, exported_at, kind, format, dialect, run_id, from_run, "
            "objects, destination, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
            [export_id, _now(), kind, fmt, dialect, run_id, from_run, objects, destination])
        return export_id

    def finish_export(self, export_id: int, status: str, rows: int, message: str | None = None) -> None:
        self._con.execute("UPDATE main.exports SET status = ?, rows = ?, message = ?, finished_at = ? "
                          "WHERE export_id = ?", [status, rows, message, _now(), export_id])

    def exports(self, obj: str | None = None) -> list[dict[str, Any]]:
        """The exports ledger, oldest first; with `obj`, only exports that contain that object."""
        if not self._has_ledger_table("exports"):
            return []
        return _rows(self._con.execute(
            "SELECT * FROM main.exports WHERE ? IS NULL OR list_contains(objects, ?) ORDER BY export_id",
            [obj, obj]))

    # -- retention and compaction -------------------------------------------------------------------

    def prune(self, retention_months: int | None, *, now: datetime | None = None) -> int:
        """Delete versions no as-of at or after the cutoff (now - retention) can see; returns how many.

        Removed: versions retired at or before the cutoff, and tombstones of records deleted at or
        before it (the record is gone from every state inside the retention window). Current records
        are never touched. The file is compacted when a tenth of the versions went.
        """
        if retention_months is None:
            return 0
        cutoff = months_before(now or _now(), retention_months)
        con = self._con
        con.execute("BEGIN")
        try:
            pruned = total = 0
            for obj in self.objects():
                hist = f"hist.{quote(obj)}"
                pruned += con.execute(
                    f"DELETE FROM {hist} WHERE (_valid_to IS NOT NULL AND _valid_to <= ?) "
                    "OR (_valid_to IS NULL AND _deleted AND _valid_from <= ?)",
                    [cutoff, cutoff]).fetchone()[0]
                total += con.execute(f"SELECT count(*) FROM {hist}").fetchone()[0]
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if pruned and pruned * 10 >= pruned + total:
            self.compact()
        else:
            self.checkpoint()
        return pruned

    def compact(self) -> None:
        """Rewrite the file without free blocks or deleted rows: the only way deleted bytes really go.

        COPY FROM DATABASE into a fresh file, fsync, atomic rename over the store. A crash before the
        rename leaves the old file intact (the half-written copy is removed next time).
        """
        if self.read_only:
            raise ValueError("the store is open read-only")
        self._con.execute("CHECKPOINT")
        self._con.close()
        wal = self.path.with_name(self.path.name + ".wal")
        fresh = self.path.with_name(self.path.name + ".compact")
        try:
            for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
                leftover.unlink(missing_ok=True)
            if wal.exists():
                raise RuntimeError(f"{wal} still exists after a checkpoint; not compacting")
            with duckdb.connect() as con:
                con.execute(f"ATTACH {literal(str(self.path))} AS src (READ_ONLY)")
                con.execute(f"ATTACH {literal(str(fresh))} AS dst")
                con.execute("COPY FROM DATABASE src TO dst")
                con.execute("DETACH dst")
                con.execute("DETACH src")
            with open(fresh, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(fresh, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        finally:
            self._con = self._connect()
