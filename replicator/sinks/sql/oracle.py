"""Oracle, safe before 23ai: no BOOLEAN, no IF [NOT] EXISTS, no multi-row VALUES.

Booleans are NUMBER(1) with a CHECK, times of day text 'HH:MM:SS.fff', VARCHAR2(n CHAR) only up to 1000
characters (4000 bytes at 4 bytes per character) else CLOB, and '' is NULL (Oracle cannot keep an empty
string apart from NULL). Identifiers are limited to 30 bytes so scripts also run before 12.2. Scripts
are for SQL*Plus / SQLcl: one INSERT per row with one value per line (line limits); text over 1000
characters goes in TO_CLOB pieces (a literal holds 4000 bytes); file bodies longer than a RAW literal's
2000 bytes are inserted as EMPTY_BLOB() and appended by a PL/SQL block in 2000-byte pieces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from replicator.sinks.sql.dialect import SqlDialect
from replicator.store.types import ColumnType

__all__ = ["Oracle"]

RAW_BYTES = 2000  # longest RAW a HEXTORAW literal may produce in SQL
CHUNK_CHARS = 1000  # an Oracle string literal holds at most 4000 bytes
TS_MASK = "YYYY-MM-DD HH24:MI:SS.FF3 TZH:TZM"


class Oracle(SqlDialect):
    """Oracle 11g and later, run with SQL*Plus or SQLcl."""

    name = "oracle"
    title = "Oracle (pre-23ai safe)"
    sqlglot = "oracle"
    name_limit = 30
    text_sizes = ((CHUNK_CHARS, "VARCHAR2({n} CHAR)"), (0, "CLOB"))
    decimal = "NUMBER({p}, {s})"
    types: ClassVar[dict[str, str]] = {
        "bool": "NUMBER(1)",
        "int": "NUMBER(10)",
        "bigint": "NUMBER(19)",
        "double": "DOUBLE PRECISION",
        "date": "DATE",
        "datetime": "TIMESTAMP(3) WITH TIME ZONE",
        "time": "VARCHAR2(12 CHAR)",
        "blob": "BLOB",
    }
    type_notes: ClassVar[dict[str, str]] = {
        "bool": " CHECK IN (0, 1)",
        "datetime": f", `TO_TIMESTAMP_TZ(..., '{TS_MASK}')`",
        "time": " 'HH:MM:SS.fff'",
        "blob": ", `HEXTORAW('..')`; bodies over 2000 bytes: `EMPTY_BLOB()` then a PL/SQL block appending "
                  "2000-byte pieces with `DBMS_LOB.WRITEAPPEND`",
    }

    # SQL*Plus / SQLcl settings: no &-substitution, blank lines allowed inside string literals.
    session = ("SET DEFINE OFF", "SET SQLBLANKLINES ON")
    begin = None
    note = ("Oracle stores '' as NULL, so empty strings come back as NULL. Booleans are NUMBER(1) 1/0, "
            "datetimes TIMESTAMP(3) WITH TIME ZONE in UTC, times of day text 'HH:MM:SS.fff'. "
            "Run with SQL*Plus or SQLcl.")
    drops_table = False
    rerun_note = "Run it into a schema without this table (no DROP: IF EXISTS needs Oracle 23ai)."
    rows_per_insert = 1
    value_separator = ",\n  "

    # Line breaks spliced in as CHR(10): a value line `/` or `.` would end the statement in SQL*Plus,
    # `@x` would run a script and `#...` a command (SQLPREFIX), so no line of a value stands alone.
    string_escapes = (("'", "''"), ("\x00", "' || CHR(0) || '"), ("\r", "' || CHR(13) || '"),
                      ("\n", "' || CHR(10) || '"))
    datetime_open = "TO_TIMESTAMP_TZ('"
    datetime_close = f" +00:00', '{TS_MASK}')"

    def constraints(self, col: ColumnType, name: str) -> list[exp.ColumnConstraint]:
        """Booleans: NUMBER(1) CHECK (x IN (0, 1))."""
        if col.kind != "bool":
            return []
        check = exp.In(this=exp.column(name, quoted=True),
                       expressions=[exp.Literal.number(0), exp.Literal.number(1)])
        return [exp.ColumnConstraint(kind=exp.CheckColumnConstraint(this=check))]

    def text_literals(self, arr: pa.Array) -> pa.Array:
        """Literals; text over CHUNK_CHARS as TO_CLOB pieces joined with ||, one piece per line."""
        arr = pc.cast(arr, pa.string())
        out = super().text_literals(arr)
        long_ = pc.greater(pc.utf8_length(arr), CHUNK_CHARS)
        if not pc.any(long_).as_py():
            return out
        rendered = out.to_pylist()
        for i, (text, is_long) in enumerate(zip(arr.to_pylist(), long_.to_pylist(), strict=True)):
            if is_long:
                pieces = pa.array([text[k:k + CHUNK_CHARS] for k in range(0, len(text), CHUNK_CHARS)])
                rendered[i] = "\n|| ".join(f"TO_CLOB({p})" for p in super().text_literals(pieces).to_pylist())
        return pa.array(rendered, pa.string())

    def blob_literal(self, hex_upper: str) -> str:
        """HEXTORAW up to RAW_BYTES ('' is NULL, so an empty body too is EMPTY_BLOB()); longer bodies
        start from EMPTY_BLOB() and are appended by after_rows."""
        return f"HEXTORAW('{hex_upper}')" if 0 < len(hex_upper) <= 2 * RAW_BYTES else "EMPTY_BLOB()"

    def after_rows(self, table: str, names: Sequence[str], cols: Sequence[ColumnType],
                   batch: pa.RecordBatch) -> list[list[str]] | None:
        """Per row, PL/SQL blocks appending file bodies too long for one HEXTORAW literal."""
        blob_cols = [i for i, c in enumerate(cols) if c.kind == "blob"]
        if not blob_cols:
            return None
        ids = batch.column([c.name for c in cols].index("Id")).to_pylist()
        blocks: list[list[str]] = [[] for _ in range(batch.num_rows)]
        for i in blob_cols:
            for row, data in enumerate(batch.column(i).to_pylist()):
                if data is None or len(data) <= RAW_BYTES:
                    continue
                key = super().text_literals(pa.array([ids[row]])).to_pylist()[0]
                lines = ["DECLARE", "  b BLOB;", "BEGIN",
                         f"  SELECT {self.quote(names[i])} INTO b FROM {self.quote(table)} "
                         f'WHERE "Id" = {key} FOR UPDATE;']
                for k in range(0, len(data), RAW_BYTES):
                    piece = data[k:k + RAW_BYTES]
                    hex_upper = piece.hex().upper()
                    lines.append(f"  DBMS_LOB.WRITEAPPEND(b, {len(piece)}, HEXTORAW('{hex_upper}'));")
                lines += ["END;", "/"]
                blocks[row] += lines
        return blocks
