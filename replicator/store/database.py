"""The store's database connection, shared by the parts of the store that read and write it.

Why one object: the history writer, the ledgers and the readers all work on the same DuckDB file
through one connection, and compaction swaps that connection for a fresh one under all of them.
Holding it here (not in each part) keeps the swap in one place. The store's fixed tables are
created here too, on every writable open, so a store written by an older version gains new
ledger tables without a migration step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from replicator.store.lock import WriterLock
from replicator.store.schema import HELPER_MACROS

__all__ = ["Database", "now", "rows"]

FORMAT_VERSION = "1"
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
    # Source Id -> Id in a target org, per target (restore, replicate, seed): a second load reuses it.
    """CREATE TABLE IF NOT EXISTS main.id_map (target VARCHAR NOT NULL, sobject VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL, target_id VARCHAR NOT NULL, mapped_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (target, source_id))""",
)


# What an analyst's query must not reach: files (read_csv, read_text, glob, COPY, ATTACH) and extensions.
SEALED = {"enable_external_access": False, "autoinstall_known_extensions": False,
          "autoload_known_extensions": False}


def now() -> datetime:
    """The current instant at millisecond precision (what the ledgers record)."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def rows(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """A result as dicts by column name (ledger rows are few and read by name)."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class Database:
    """The open DuckDB file: one connection, reopened after compaction; holds the writer lock if any."""

    def __init__(self, path: Path, *, read_only: bool, memory_limit: str, lock: WriterLock | None,
                 sealed: bool = False) -> None:
        """`sealed`: for analysts' SQL — no file, extension or setting reachable beyond the store's own
        tables (DuckDB's external access off and its configuration locked; read-only only)."""
        if sealed and not read_only:
            raise ValueError("only a read-only store can be sealed")
        self.path = Path(path)
        self.read_only = read_only
        self.sealed = sealed
        self.memory_limit = memory_limit
        self._lock = lock
        self.con = self.connect()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A new connection (the fixed tables and macros created when writable)."""
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        config = SEALED if self.sealed else {}
        con = duckdb.connect(str(self.path), read_only=self.read_only, config=config)
        # GLOBAL, so every cursor of this connection (readers use their own) answers in UTC too.
        con.execute("SET GLOBAL TimeZone = 'UTC'")
        con.execute("SET memory_limit = ?", [self.memory_limit])
        if self.sealed:
            con.execute("SET lock_configuration = true")
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

    def execute(self, query: str, params: Iterable[Any] = ()) -> duckdb.DuckDBPyConnection:
        """Run one statement on the store's connection."""
        return self.con.execute(query, list(params))

    def rows(self, query: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """A query's rows as dicts."""
        return rows(self.execute(query, params))

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """BEGIN ... COMMIT, rolled back on any exception (a run's versions land together or not at all)."""
        self.con.execute("BEGIN")
        try:
            yield self.con
            self.con.execute("COMMIT")
        except BaseException:
            with suppress(duckdb.Error):  # a failed COMMIT (a full disk) already ended it: keep its error
                self.con.execute("ROLLBACK")
            raise

    def reopen(self) -> None:
        """A fresh connection after a failed write (DuckDB may have invalidated the old one), so a run
        can still record why it failed once the storage takes writes again."""
        with suppress(duckdb.Error):  # an invalidated connection may refuse even to close
            self.con.close()
        self.con = self.connect()

    def has_table(self, name: str) -> bool:
        """False for a store written before the table existed and opened read-only (no DDL ran)."""
        return bool(self.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = ?", [name]).fetchone()[0])

    def require_writable(self) -> None:
        """Refuse a write on a store opened read-only (a programming error, not a user's)."""
        if self.read_only:
            raise ValueError("the store is open read-only")

    def close(self) -> None:
        """Close the connection, then let the next writer in (when this store holds the lock)."""
        try:
            self.con.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
