"""Rebuilding the store's DuckDB file into a fresh one and swapping it in atomically.

Why a fresh file: DuckDB never zeroes freed blocks, so a DELETE or UPDATE leaves the old values in
the file after CHECKPOINT, VACUUM or a CTAS rebuild (stack.md §5b). Only a new file written from the
surviving rows, renamed over the old one, makes deleted bytes really go: compaction needs it to
shrink the file, and a GDPR forget or rectify needs it so no byte of the erased values remains.

Crash safety: the old file is checkpointed (no WAL left) and only read; the new one is written next
to it, fsynced, and renamed over it (one atomic rename), then the folder is fsynced. A process killed
at any moment leaves either the old file or the new one, never a mix; a half-written fresh file is
removed by the next rebuild. An erasure never edits the old file first, so killed half way the store
is exactly as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from replicator.store import encryption
from replicator.store.database import Database
from replicator.store.schema import literal, quote

__all__ = ["Erasure", "Rectification", "leftovers", "rebuild", "remove_leftovers", "rewrite_mapped",
           "rewrite_without"]

SOURCE, TARGET = "src", "dst"
MAPPING = "_rewrite_mapping"  # the old -> new values of a rewrite_mapped, registered on its connection
SUFFIXES = ("compact", "rewrite", "rekey")  # fresh files of compaction, GDPR rewrites, key rotation


def leftovers(path: Path) -> list[Path]:
    """Half-written fresh files a killed rebuild or re-key left next to the store at `path` (they may
    hold the very values an erasure was removing, or, from a killed decrypt, plain values). Only
    leftovers while no writer holds the lock: a running rebuild's file is its work in progress."""
    fresh = [path.with_name(f"{path.name}.{suffix}") for suffix in SUFFIXES]
    return [f for name in fresh for f in (name, name.with_name(name.name + ".wal")) if f.exists()]


def remove_leftovers(path: Path) -> None:
    """Delete the fresh files a killed rebuild left (`leftovers`). Call only while holding the writer lock."""
    for leftover in leftovers(path):
        leftover.unlink(missing_ok=True)


@dataclass(frozen=True)
class Rectification:
    """One field of one record set to a new value in every version (None: empty).

    `derived`: text fields built from this one (Salesforce's compound Name holds FirstName and
    LastName), in which each version's old value is replaced by the new one.
    """

    object: str
    record_id: str
    field: str
    value: Any
    sql_type: str
    derived: tuple[str, ...] = ()


@dataclass
class Erasure:
    """What a rewrite leaves out or changes: every version of `drop[object]` Ids, id-map rows of
    those Ids, and the `rectify` values."""

    drop: dict[str, list[str]] = field(default_factory=dict)
    rectify: list[Rectification] = field(default_factory=list)

    def dropped_ids(self) -> list[str]:
        """Every Id that goes, whatever its object."""
        return [i for ids in self.drop.values() for i in ids]


def rebuild(db: Database, fill: Callable[[duckdb.DuckDBPyConnection], None], suffix: str) -> None:
    """Checkpoint and close the store, let `fill` write `dst` from `src` (both attached to a scratch
    connection), then swap the fresh file in; the store's connection is reopened in every case."""
    db.require_writable()
    path = db.path
    db.execute("CHECKPOINT")
    db.con.close()
    wal = path.with_name(path.name + ".wal")
    fresh = path.with_name(f"{path.name}.{suffix}")
    try:
        remove_leftovers(path)
        if wal.exists():
            raise RuntimeError(f"{wal} still exists after a checkpoint; not rewriting")
        with duckdb.connect(config={"autoinstall_known_extensions": False,
                                    "autoload_known_extensions": False}) as con:
            con.execute("SET memory_limit = ?", [db.memory_limit])
            con.execute(f"SET temp_directory = {literal(str(path.with_name(path.name + '.tmp')))}")
            # An encrypted store stays encrypted under its key, spill files included.
            encryption.attach(con, path, SOURCE, db.key, read_only=True)
            encryption.attach(con, fresh, TARGET, db.key)
            if db.key is not None:
                con.execute("SET temp_file_encryption = true")
            fill(con)
            con.execute(f"DETACH {TARGET}")
            con.execute(f"DETACH {SOURCE}")
        with open(fresh, "rb+") as f:
            os.fsync(f.fileno())
        encryption.swap(fresh, path)
    finally:
        db.con = db.connect()


def _tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
                       "ORDER BY schema_name, table_name", [SOURCE]).fetchall()


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
        "AND table_name = ? ORDER BY column_index", [SOURCE, schema, table]).fetchall()]


def _word_replaced(text_sql: str, old_sql: str) -> str:
    """SQL replacing the first whole-word occurrence of `old_sql`'s value in `text_sql` by the bound
    parameter (backslashes kept literal): "Anna An" with An -> X gives "Anna X", not "Xna X"."""
    pattern = r"'(^|\s)' || regexp_escape(" + old_sql + r"::VARCHAR) || '(\s|$)'"
    replacement = r"'\1' || replace(coalesce(CAST(? AS VARCHAR), ''), '\', '\\') || '\2'"
    return f"trim(regexp_replace({text_sql}, {pattern}, {replacement}))"


def _copy_sql(schema: str, table: str, columns: Sequence[str], erasure: Erasure) -> tuple[str, list[Any]]:
    """INSERT ... SELECT copying one table without the erased rows and with the rectified values."""
    where, params = "true", []
    if schema == "hist" and erasure.drop.get(table):
        where, params = 'NOT list_contains(?, "Id")', [erasure.drop[table]]
    elif (schema, table) == ("main", "id_map") and erasure.dropped_ids():
        where, params = "NOT list_contains(?, source_id)", [erasure.dropped_ids()]
    replaced, replace_params = [], []
    for fix in erasure.rectify:
        if schema == "hist" and fix.object == table and fix.field in columns:
            replaced.append(f'CASE WHEN "Id" = ? THEN CAST(? AS {fix.sql_type}) ELSE {quote(fix.field)} END '
                            f"AS {quote(fix.field)}")
            replace_params += [fix.record_id, fix.value]
            old = quote(fix.field)
            for name in (quote(d) for d in fix.derived if d in columns):
                replaced.append(f"CASE WHEN \"Id\" = ? AND coalesce({old}, '') <> '' THEN "
                                f"{_word_replaced(name, old)} ELSE {name} END AS {name}")
                replace_params += [fix.record_id, fix.value]
    select = f"* REPLACE ({', '.join(replaced)})" if replaced else "*"
    name = f"{quote(schema)}.{quote(table)}"
    return (f"INSERT INTO {TARGET}.{name} SELECT {select} FROM {SOURCE}.{name} WHERE {where}",
            replace_params + params)


CopySql = Callable[[str, str, list[str]], tuple[str, list[Any]]]  # (schema, table, columns) -> INSERT


def _copy_tables(con: duckdb.DuckDBPyConnection, copy_sql: CopySql,
                 between: Callable[[str], None]) -> dict[tuple[str, str], int]:
    """Create every table, view and macro in the fresh file, then fill each table by `copy_sql`;
    rows copied per (schema, table). `between("copying")` is called half way (a test seam)."""
    con.execute(f"COPY FROM DATABASE {SOURCE} TO {TARGET} (SCHEMA)")
    tables = _tables(con)
    copied: dict[tuple[str, str], int] = {}
    for n, (schema, table) in enumerate(tables):
        if n == len(tables) // 2:
            between("copying")
        sql, params = copy_sql(schema, table, _columns(con, schema, table))
        copied[(schema, table)] = con.execute(sql, params).fetchone()[0]
    return copied


def rewrite_without(db: Database, erasure: Erasure,
                    finish: Callable[[duckdb.DuckDBPyConnection, str, Mapping[str, int]], None],
                    between: Callable[[str], None] = lambda _phase: None) -> Mapping[str, int]:
    """Rebuild the store without the erased rows and values; rows left out per history table.

    `finish(con, "dst", dropped)` writes into the fresh file last (the request ledger, forgotten
    hashes), so the record of the request and the erasure appear together or not at all. `between(phase)` is
    called at "copying" (half the tables written) and "rewritten" (before the swap): a test seam.
    """
    dropped: dict[str, int] = {}

    def fill(con: duckdb.DuckDBPyConnection) -> None:
        copied = _copy_tables(con, lambda schema, table, columns: _copy_sql(schema, table, columns, erasure),
                              between)
        for table in erasure.drop:
            if ("hist", table) in copied:
                total = con.execute(f"SELECT count(*) FROM {SOURCE}.hist.{quote(table)}").fetchone()[0]
                dropped[table] = total - copied[("hist", table)]
        finish(con, TARGET, dropped)
        between("rewritten")

    rebuild(db, fill, "rewrite")
    return dropped


def rewrite_mapped(db: Database, columns: Mapping[str, Sequence[str]], mapping: pa.Table,
                   finish: Callable[[duckdb.DuckDBPyConnection, str], None]) -> None:
    """Rebuild the store with the values of history columns (object -> its column names) replaced
    through `mapping` (Arrow columns `old` and `new`; a value it does not list stays). A fresh file
    rather than an UPDATE, so no old value survives in a freed block; `finish(con, "dst")` writes
    into it last, so the change and its record land together or not at all."""
    def copy_sql(schema: str, table: str, names: list[str]) -> tuple[str, list[Any]]:
        name = f"{quote(schema)}.{quote(table)}"
        mapped = [quote(c) for c in columns.get(table, ()) if c in names] if schema == "hist" else []
        replaced = ", ".join(f"coalesce((SELECT m.new FROM {MAPPING} m WHERE m.old = t.{c}), t.{c}) AS {c}"
                             for c in mapped)
        select = f"* REPLACE ({replaced})" if mapped else "*"
        return f"INSERT INTO {TARGET}.{name} SELECT {select} FROM {SOURCE}.{name} t", []

    def fill(con: duckdb.DuckDBPyConnection) -> None:
        con.register(MAPPING, mapping)
        _copy_tables(con, copy_sql, lambda _phase: None)
        finish(con, TARGET)

    rebuild(db, fill, "rewrite")
