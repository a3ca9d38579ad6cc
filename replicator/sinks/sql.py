"""SQL scripts per dialect: one self-contained script per object with DDL and data.

Layout of a script: a header comment (object, run, dialect, how NULL and empty strings and times are
represented), session settings that make the literals mean what they say, DROP + CREATE TABLE
(sqlglot ASTs from our type model, see sql_types), then the data as INSERT statements in one
transaction. Data rows are rendered column-wise with Arrow compute and written batch by batch, so
memory stays flat whatever the object's size.

Per dialect:
- postgresql, mysql: multi-row INSERTs of up to ROWS_PER_INSERT rows (and about 1 MB of text);
- mssql: multi-row INSERTs of at most 1000 rows (SQL Server's limit for a VALUES list);
- oracle: one INSERT per row, one value per line (SQL*Plus line limits; multi-row VALUES is 23ai
  only), no DROP (IF EXISTS is 23ai only); file bodies longer than a RAW literal's 2000 bytes are
  inserted as EMPTY_BLOB() and appended by a PL/SQL block with DBMS_LOB.WRITEAPPEND in 2000-byte pieces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from replicator.sinks.sql_types import (
    DIALECTS,
    ORACLE_RAW_BYTES,
    column_names,
    create_table,
    quote,
    render_column,
    render_literal,
    short_name,
)
from replicator.store.types import ColumnType

__all__ = ["ROWS_PER_INSERT", "write_script"]

ROWS_PER_INSERT = 500
MSSQL_ROWS_PER_INSERT = 1000
STATEMENT_BYTES = 1 << 20

_SESSION = {
    "postgresql": ["SET client_encoding = 'UTF8';", "SET standard_conforming_strings = on;",
                   "SET TIME ZONE 'UTC';"],
    # mysqldump-style: backslash escapes must be on for the '\\' and '\0' in the literals below.
    "mysql": ["SET NAMES utf8mb4;",
              "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '');",
              "SET time_zone = '+00:00';"],
    "mssql": ["SET NOCOUNT ON;", "SET XACT_ABORT ON;"],
    # SQL*Plus / SQLcl settings: no &-substitution, blank lines allowed inside string literals.
    "oracle": ["SET DEFINE OFF", "SET SQLBLANKLINES ON"],
}
_BEGIN = {"postgresql": "BEGIN;", "mysql": "START TRANSACTION;", "mssql": "BEGIN TRANSACTION;",
          "oracle": None}
_NOTES = {
    "postgresql": "Datetimes are TIMESTAMPTZ(3) in UTC.",
    "mysql": "Datetimes are DATETIME(3) holding UTC (MySQL has no type with a time zone); text is utf8mb4.",
    "mssql": "Datetimes are DATETIMEOFFSET(3) in UTC; text is NVARCHAR with N'' literals.",
    "oracle": ("Oracle stores '' as NULL, so empty strings come back as NULL. Booleans are NUMBER(1) 1/0, "
               "datetimes TIMESTAMP(3) WITH TIME ZONE in UTC, times of day text 'HH:MM:SS.fff'. "
               "Run with SQL*Plus or SQLcl."),
}


def header(obj: str, run_id: int, dialect: str, table: str) -> list[str]:
    lines = [
        f"-- Replicator export of {obj} as of backup run {run_id}, {dialect} dialect (table {table}).",
        "-- NULL is a missing value; '' is an empty string (distinct from NULL).",
        f"-- {_NOTES[dialect]}",
        "-- Run it into an empty schema: it drops and recreates the table.",
    ]
    if dialect == "oracle":
        lines[-1] = "-- Run it into a schema without this table (no DROP: IF EXISTS needs Oracle 23ai)."
    return lines


def _insert_prefix(table: str, names: Sequence[str], dialect: str, sep: str) -> str:
    cols = sep.join(quote(n, dialect) for n in names)
    return f"INSERT INTO {quote(table, dialect)} ({cols}) VALUES"


def _oracle_blob_blocks(table: str, names: Sequence[str], cols: Sequence[ColumnType],
                        batch: pa.RecordBatch, ids: list[str]) -> list[list[str]]:
    """Per row, PL/SQL blocks appending file bodies too long for one HEXTORAW literal."""
    blocks: list[list[str]] = [[] for _ in range(batch.num_rows)]
    for i, c in enumerate(cols):
        if c.kind != "blob":
            continue
        for row, data in enumerate(batch.column(i).to_pylist()):
            if data is None or len(data) <= ORACLE_RAW_BYTES:
                continue
            key = render_literal(ids[row], ColumnType("Id", "text", 18), "oracle")
            lines = ["DECLARE", "  b BLOB;", "BEGIN",
                     f'  SELECT {quote(names[i], "oracle")} INTO b FROM {quote(table, "oracle")} '
                     f'WHERE "Id" = {key} FOR UPDATE;']
            for k in range(0, len(data), ORACLE_RAW_BYTES):
                piece = data[k:k + ORACLE_RAW_BYTES]
                lines.append(f"  DBMS_LOB.WRITEAPPEND(b, {len(piece)}, HEXTORAW('{piece.hex().upper()}'));")
            lines += ["END;", "/"]
            blocks[row] += lines
    return blocks


def _rows(batch: pa.RecordBatch, cols: Sequence[ColumnType], dialect: str, sep: str) -> list[str]:
    rendered = [render_column(batch.column(i), c, dialect) for i, c in enumerate(cols)]
    joined = pc.binary_join_element_wise(*rendered, sep) if len(rendered) > 1 else rendered[0]
    return pc.binary_join_element_wise("(", joined, ")", "").to_pylist()


def write_script(out: TextIO, obj: str, run_id: int, cols: Sequence[ColumnType],
                 batches: Iterable[pa.RecordBatch], dialect: str) -> int:
    """Write one object's script to `out`; returns the number of rows written."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (choose from {', '.join(DIALECTS)})")
    table = short_name(obj, dialect)
    names = column_names([c.name for c in cols], dialect)
    sg = DIALECTS[dialect]
    for line in [*header(obj, run_id, dialect, table), *_SESSION[dialect]]:
        out.write(line + "\n")
    out.write("\n")
    if dialect != "oracle":
        target = exp.Table(this=exp.to_identifier(table, quoted=True))
        drop = exp.Drop(tables=[target], kind="TABLE", exists=True)
        out.write(drop.sql(sg) + ";\n")
    out.write(create_table(obj, cols, dialect).sql(sg, identify=True, pretty=True) + ";\n\n")
    if _BEGIN[dialect]:
        out.write(_BEGIN[dialect] + "\n")
    oracle = dialect == "oracle"
    sep = ",\n  " if oracle else ", "
    prefix = _insert_prefix(table, names, dialect, sep)
    per_insert = MSSQL_ROWS_PER_INSERT if dialect == "mssql" else ROWS_PER_INSERT
    id_index = [c.name for c in cols].index("Id") if oracle and any(c.kind == "blob" for c in cols) else None
    total = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        rows = _rows(batch, cols, dialect, sep)
        total += len(rows)
        if oracle:
            blocks = ([[]] * len(rows) if id_index is None else
                      _oracle_blob_blocks(table, names, cols, batch, batch.column(id_index).to_pylist()))
            for row, block in zip(rows, blocks, strict=True):
                out.write(f"{prefix}\n{row};\n")
                for line in block:
                    out.write(line + "\n")
            continue
        _write_multirow(out, prefix, rows, per_insert)
    out.write("COMMIT;\n")
    return total


def _write_multirow(out: TextIO, prefix: str, rows: list[str], per_insert: int) -> None:
    """Multi-row INSERTs of at most `per_insert` rows and about STATEMENT_BYTES of text each."""
    start = 0
    while start < len(rows):
        size, end = 0, start
        while end < len(rows) and end - start < per_insert and (end == start or size < STATEMENT_BYTES):
            size += len(rows[end])
            end += 1
        out.write(prefix + "\n" + ",\n".join(rows[start:end]) + ";\n")
        start = end
