"""The emulated org's records: one DuckDB table per sObject.

Each table has the object's stored fields (typed from the schema, named with their canonical API
names) plus one hidden column, `_DeletedAt`, set while a record sits in the recycle bin. Formula
and compound fields are not stored; SOQL computes them. Two bookkeeping tables sit beside them:
`_DeleteLog` (every deletion, whatever happens to the record afterwards: what `/deleted` and
getDeleted read) and `_PhysicalDeletes` (when records of an object were last removed for good:
getDeleted's earliestDateAvailable). DuckDB keeps a million-record org on disk
with flat memory and answers the SQL that the SOQL compiler emits.

Thread model: the HTTP server runs handlers in a thread pool; every thread gets its own cursor on
the one database, and writes are serialised by `write_lock`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from sfemu.clock import Clock
from sfemu.ids import counter_of, make_id
from sfemu.schema import Field, Schema, SObject

DELETED_AT = "_DeletedAt"
DELETE_LOG = "_DeleteLog"
PHYSICAL_DELETES = "_PhysicalDeletes"
RECYCLE_BIN_DAYS = 15
# DuckDB checkpoints (rewrites changed row groups and the Id index) whenever the write-ahead log
# passes this size. At the default 16 MB a Bulk load checkpointed every ~50,000 Accounts, which
# cost more than the writes themselves; 256 MB (~800,000 Accounts) keeps memory bounded.
CHECKPOINT_THRESHOLD = "256MB"


def quote(name: str) -> str:
    """Quote a DuckDB identifier (schema names only, never user text)."""
    return '"' + name.replace('"', '""') + '"'


class Store:
    """All records of one org, with id minting, recycle-bin bookkeeping and thread-local cursors."""

    def __init__(self, schema: Schema, clock: Clock, path: str | Path = ":memory:") -> None:
        self.schema = schema
        self.clock = clock
        self.path = str(path)
        self._con = duckdb.connect(self.path, config={"checkpoint_threshold": CHECKPOINT_THRESHOLD})
        self._local = threading.local()
        self.write_lock = threading.RLock()
        self._counters: dict[str, int] = {}
        self._create_tables()

    # --- connections ---------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the org database."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
        return cur

    def close(self) -> None:
        self._con.close()

    # --- tables --------------------------------------------------------------------------

    @staticmethod
    def table(obj: SObject | str) -> str:
        """Quoted table name of an object."""
        return quote(obj.name if isinstance(obj, SObject) else obj)

    @staticmethod
    def column(f: Field | str) -> str:
        return quote(f.name if isinstance(f, Field) else f)

    def _create_tables(self) -> None:
        cur = self.cursor()
        existing = {r[0].lower() for r in cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        for obj in self.schema:
            if obj.name.lower() not in existing:
                cols = [f"{quote(f.name)} {f.sql_type}" for f in obj.stored_fields]
                cols.append(f"{quote(DELETED_AT)} TIMESTAMP")
                cur.execute(f"CREATE TABLE {self.table(obj)} ({', '.join(cols)}, "
                            f"PRIMARY KEY ({quote('Id')}))")
            last = cur.execute(f"SELECT max({quote('Id')}) FROM {self.table(obj)}").fetchone()[0]
            self._counters[obj.name.lower()] = counter_of(last) if last else 0
        cur.execute(f'CREATE TABLE IF NOT EXISTS {quote(DELETE_LOG)} ("Object" VARCHAR, "Id" VARCHAR, '
                    f'"DeletedDate" TIMESTAMP)')
        cur.execute(f'CREATE TABLE IF NOT EXISTS {quote(PHYSICAL_DELETES)} ("Object" VARCHAR PRIMARY KEY, '
                    f'"At" TIMESTAMP)')

    # --- ids -----------------------------------------------------------------------------

    def new_ids(self, obj: SObject, count: int) -> list[str]:
        """Reserve `count` fresh ids for an object, in ascending (creation) order."""
        if not obj.key_prefix:
            raise ValueError(f"{obj.name} has no key prefix and cannot hold records")
        with self.write_lock:
            start = self._counters[obj.name.lower()] + 1
            self._counters[obj.name.lower()] = start + count - 1
        return [make_id(obj.key_prefix, n) for n in range(start, start + count)]

    def id_range(self, obj: SObject, count: int) -> tuple[int, int]:
        """Reserve counters [first, first+count) without materialising ids (bulk generation)."""
        with self.write_lock:
            first = self._counters[obj.name.lower()] + 1
            self._counters[obj.name.lower()] = first + count - 1
        return first, first + count

    # --- bulk writes (data generator, churn) ---------------------------------------------

    def append(self, obj: SObject, batches: Iterable[pa.RecordBatch | pa.Table]) -> int:
        """Append Arrow data whose columns are a subset of the object's stored fields.

        Columns are matched by name; absent ones become NULL. Returns the number of rows written.
        """
        cur = self.cursor()
        total = 0
        with self.write_lock:
            for batch in batches:
                names = [quote(n) for n in batch.schema.names]
                cur.register("_incoming", batch)
                try:
                    cur.execute(f"INSERT INTO {self.table(obj)} ({', '.join(names)}) "
                                f"SELECT {', '.join(names)} FROM _incoming")
                finally:
                    cur.unregister("_incoming")
                total += batch.num_rows
        return total

    # --- reads ---------------------------------------------------------------------------

    def count(self, obj: SObject, include_deleted: bool = False) -> int:
        where = "" if include_deleted else f" WHERE {quote(DELETED_AT)} IS NULL"
        return self.cursor().execute(f"SELECT count(*) FROM {self.table(obj)}{where}").fetchone()[0]

    def counts(self) -> dict[str, int]:
        """Live (not deleted) record count of every object, canonical names."""
        return {obj.name: self.count(obj) for obj in self.schema}

    # --- recycle bin ---------------------------------------------------------------------

    def purge_recycle_bin(self, now: datetime | None = None, *, cutoff: datetime | None = None) -> int:
        """Drop records deleted before `cutoff` (default: 15 days before `now`), as Salesforce empties
        its recycle bin; delete-log entries older than 15 days go too, as the log keeps 15 days."""
        now = (now or self.clock.now()).replace(tzinfo=None)
        horizon = now - timedelta(days=RECYCLE_BIN_DAYS)
        cutoff = horizon if cutoff is None else cutoff.replace(tzinfo=None)
        purged = 0
        cur = self.cursor()
        with self.write_lock:
            for obj in self.schema:
                n = cur.execute(
                    f"DELETE FROM {self.table(obj)} WHERE {quote(DELETED_AT)} < ?", [cutoff]
                ).fetchone()[0]
                if n:
                    self.mark_physical_delete(obj, now)
                purged += n
            cur.execute(f'DELETE FROM {quote(DELETE_LOG)} WHERE "DeletedDate" < ?', [horizon])
        return purged

    # --- delete log ------------------------------------------------------------------------

    def log_deletions(self, obj: SObject, rows: str) -> None:
        """Write (Id, ts) rows of the SQL relation `rows` to the delete log of `obj`."""
        self.cursor().execute(f'INSERT INTO {quote(DELETE_LOG)} SELECT ?, r."Id", r."ts" FROM {rows} r',
                              [obj.name])

    def unlog_deletions(self, obj: SObject, rows: str) -> None:
        """Forget the log entries of undeleted records (Id column of the SQL relation `rows`)."""
        self.cursor().execute(f'DELETE FROM {quote(DELETE_LOG)} WHERE "Object" = ? AND "Id" IN '
                              f'(SELECT r."Id" FROM {rows} r)', [obj.name])

    def mark_physical_delete(self, obj: SObject, at: datetime) -> None:
        """Remember that records of `obj` were removed for good at `at` (earliestDateAvailable)."""
        self.cursor().execute(
            f'INSERT INTO {quote(PHYSICAL_DELETES)} VALUES (?, ?) ON CONFLICT ("Object") '
            f'DO UPDATE SET "At" = greatest("At", excluded."At")', [obj.name, at.replace(tzinfo=None)])

    def last_physical_delete(self, obj: SObject) -> datetime | None:
        row = self.cursor().execute(f'SELECT "At" FROM {quote(PHYSICAL_DELETES)} WHERE "Object" = ?',
                                    [obj.name]).fetchone()
        return row[0] if row else None
