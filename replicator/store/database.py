"""The store's database connection, shared by the parts of the store that read and write it.

Why one object: the history writer, the ledgers and the readers all work on the same DuckDB file
through one connection, and compaction swaps that connection for a fresh one under all of them.
Holding it here (not in each part) keeps the swap in one place. The store's fixed tables are
created here too, on every writable open, so a store written by an older version gains new
ledger tables without a migration step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from replicator.config import Secret
from replicator.errors import ConfigProblem, Locked
from replicator.store import encryption
from replicator.store.lock import WriterLock
from replicator.store.schema import HELPER_MACROS

__all__ = ["Database", "StoreInUse", "StoreUnusable", "now", "rows"]

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
    # The options a file was written with: a GDPR rewrite of it must write exactly what the export did
    # (added later: stores written before them get the columns, their old rows NULL).
    "ALTER TABLE main.exports ADD COLUMN IF NOT EXISTS include_attachments BOOLEAN",
    "ALTER TABLE main.exports ADD COLUMN IF NOT EXISTS keep_formulas BOOLEAN",
    # Source Id -> Id in a target org, per target (restore, replicate, seed): a second load reuses it.
    """CREATE TABLE IF NOT EXISTS main.id_map (target VARCHAR NOT NULL, sobject VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL, target_id VARCHAR NOT NULL, mapped_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (target, source_id))""",
)


# What an analyst's query must not reach: files (read_csv, read_text, glob, COPY, ATTACH) and extensions.
SEALED = {"enable_external_access": False, "autoinstall_known_extensions": False,
          "autoload_known_extensions": False}


class StoreUnusable(ConfigProblem):
    """The store's database file cannot be used as it is (not a DuckDB file, damaged, or not ours)."""


class StoreInUse(Locked):
    """Another process has the database file open for writing (a backup or another writer)."""


def unusable(path: Path, exc: duckdb.Error) -> ConfigProblem | Locked:
    """DuckDB's complaint about opening `path`, as one sentence saying what is wrong and what to do
    (its own text names no remedy, spans lines and, for locks, a link)."""
    text = str(exc)
    if "Could not set lock" in text:
        holder = re.search(r"\(PID (\d+)\)", text)
        by = f" by process {holder.group(1)}" if holder else ""
        return StoreInUse(f"the store {path} is open for writing{by} (a backup or another writer): "
                          "try again when it has finished")
    if "not a valid DuckDB database" in text:
        return StoreUnusable(f"{path} is not a DuckDB database (empty, overwritten or another kind of "
                             "file): restore it from a copy or point storage.path at the right folder")
    first = text.splitlines()[0].removeprefix("IO Error: ") if text else type(exc).__name__
    return StoreUnusable(f"{path} is damaged and cannot be opened ({first}): restore it from a copy")


def foreign(path: Path) -> StoreUnusable:
    """A DuckDB database that Replicator did not create: never add our tables to someone's data."""
    return StoreUnusable(f"{path} is a DuckDB database but not a Replicator store: nothing was "
                         "written to it; point storage.path at a store folder or an empty one")


def now() -> datetime:
    """The current instant at millisecond precision (what the ledgers record)."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _is_store(con: duckdb.DuckDBPyConnection) -> bool:
    """Ours, or empty (a store being created): a database with tables but no store_info is not."""
    tables, ours = con.execute(
        "SELECT count(*), count(*) FILTER (schema_name = 'main' AND table_name = 'store_info') "
        "FROM duckdb_tables() WHERE database_name = current_database()").fetchone()
    return not tables or bool(ours)


def rows(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """A result as dicts by column name (ledger rows are few and read by name)."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class Database:
    """The open DuckDB file: one connection, reopened after compaction; holds the writer lock if any."""

    def __init__(self, path: Path, *, read_only: bool, memory_limit: str, lock: WriterLock | None,
                 sealed: bool = False, key: Secret | None = None) -> None:
        """`sealed`: for analysts' SQL — no file, extension or setting reachable beyond the store's own
        tables (DuckDB's external access off and its configuration locked; read-only only).
        `key`: the store's encryption key (store.encryption); None for a plain store."""
        if sealed and not read_only:
            raise ValueError("only a read-only store can be sealed")
        self.path = Path(path)
        self.read_only = read_only
        self.sealed = sealed
        self.memory_limit = memory_limit
        self.key = key
        self._lock = lock
        self.con = self.connect()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A new connection (the fixed tables and macros created when writable)."""
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        config = SEALED if self.sealed else {}
        try:
            con = encryption.connect(self.path, self.key, read_only=self.read_only, config=config)
        except duckdb.Error as exc:
            raise unusable(self.path, exc) from None
        if not _is_store(con):
            con.close()
            raise foreign(self.path)
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

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own (for a reader that streams or registers Arrow tables), opened on the
        store's database: an encrypted store is an attached catalog, and a bare cursor would start
        in DuckDB's in-memory default instead."""
        cur = self.con.cursor()
        if self.key is not None:
            cur.execute(f"USE {encryption.catalog(self.path)}")
        return cur

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
