"""The base of every SQL dialect we export to: behaviour as tables, the few real differences as methods.

Why classes with data instead of `if dialect == ...` branches (as sqlglot's own dialect classes do): a
dialect's rules (type table, identifier limit, literal spellings, script settings) sit together in one
small module, the README's type table and the CLI's choices are read from the same data, and a new
dialect is one class in the registry. Everything here is vectorised with Arrow compute: a column of a
batch becomes a column of SQL literal text in one pass.

Shared choices (the per-dialect ones are in each dialect's module):
- identifiers are always quoted; names longer than the dialect's limit keep a prefix plus "_" and the
  first 8 hex digits of the name's sha1, so the same field always gets the same column name;
- datetimes keep milliseconds and UTC;
- types come from the Salesforce describe (kept with the runs), built as sqlglot DataType ASTs, never by
  transpiling DuckDB DDL (DuckDB drops VARCHAR lengths, see shared/stack.md section 6). Every entry of a
  type table is spelled as sqlglot prints it back, so the table says what the scripts contain.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from replicator.store.types import ColumnType

__all__ = ["SqlDialect", "TextSize"]

# (longest length in characters, type template with {n}); the first that fits a column is used, and a
# final entry with limit 0 takes every other length (and unknown ones).
TextSize = tuple[int, str]


def _wrap(arr: pa.Array, before: str, after: str) -> pa.Array:
    return pc.binary_join_element_wise(before, arr, after, "")


def _str(arr: pa.Array) -> pa.Array:
    return pc.cast(arr, pa.string())


class SqlDialect(ABC):
    """One SQL dialect: what a script or a table in it looks like. Subclasses fill in the tables."""

    name: ClassVar[str]  # our name: the CLI's choice and the endpoint kind
    title: ClassVar[str]  # the README's column heading
    sqlglot: ClassVar[str]  # sqlglot's dialect name
    name_limit: ClassVar[int]  # longest identifier, in bytes
    types: ClassVar[dict[str, str]]  # kind -> type, for kinds with a fixed type
    text_sizes: ClassVar[tuple[TextSize, ...]]  # kind "text" by length, see TextSize
    decimal: ClassVar[str] = "DECIMAL({p}, {s})"
    # kind -> what the README adds after the type (literals, caveats), with its own leading space or comma
    type_notes: ClassVar[dict[str, str]] = {}

    # -- script ------------------------------------------------------------------------------------
    session: ClassVar[tuple[str, ...]]  # settings that make the literals mean what they say
    begin: ClassVar[str | None]  # the statement opening the data transaction
    note: ClassVar[str]  # the header line on how values are represented
    drops_table: ClassVar[bool] = True  # DROP TABLE IF EXISTS before CREATE TABLE
    rerun_note: ClassVar[str] = "Run it into an empty schema: it drops and recreates the table."
    rows_per_insert: ClassVar[int] = 500  # rows in one INSERT's VALUES list
    value_separator: ClassVar[str] = ", "  # between the values (and column names) of a row

    # -- literals ------------------------------------------------------------------------------------
    # Applied in order inside '...'. Every dialect spells a carriage return as a function call or an
    # escape: clients such as psql and sqlcmd normalise CRLF line ends in script files, which would
    # silently drop a CR inside a literal.
    string_escapes: ClassVar[tuple[tuple[str, str], ...]]
    string_open: ClassVar[str] = "'"
    booleans: ClassVar[tuple[str, str]] = ("1", "0")
    date_open: ClassVar[str] = "DATE '"
    time_open: ClassVar[str] = "'"
    # datetime literal: strftime format (milliseconds are appended by Arrow), text before and after
    datetime_format: ClassVar[str] = "%Y-%m-%d %H:%M:%S"
    datetime_open: ClassVar[str] = "'"
    datetime_close: ClassVar[str] = "'"

    # -- identifiers -----------------------------------------------------------------------------------

    def short_name(self, name: str) -> str:
        """`name` if it fits the identifier limit (bytes), else a prefix + "_" + 8 hex of its sha1."""
        if len(name.encode()) <= self.name_limit:
            return name
        suffix = "_" + hashlib.sha1(name.encode()).hexdigest()[:8]
        prefix = name.encode()[:self.name_limit - len(suffix)].decode(errors="ignore")
        return prefix + suffix

    def quote(self, name: str) -> str:
        """A quoted identifier in the dialect's syntax (the name must already be shortened)."""
        return exp.to_identifier(name, quoted=True).sql(self.sqlglot)

    # -- types -----------------------------------------------------------------------------------------

    def text_type(self, length: int, *, inline: bool = True) -> str:
        """The text type for `length` characters (0: unknown). `inline=False` skips VARCHAR types, for
        columns past a row-size budget (MySQL)."""
        for limit, template in self.text_sizes:
            if not inline and template.startswith("VARCHAR("):
                continue
            if limit == 0 or 0 < length <= limit:
                return template.format(n=length)
        raise AssertionError(f"{self.name}: text_sizes lacks a final entry with limit 0")

    def type_text(self, col: ColumnType, *, inline: bool = True) -> str:
        """The column's type as the script spells it."""
        if col.kind == "text":
            return self.text_type(col.length, inline=inline)
        if col.kind == "decimal":
            p = col.precision if 0 < col.precision <= 38 else 38
            return self.decimal.format(p=p, s=min(max(col.scale, 0), p))
        return self.types[col.kind]

    def column_types(self, cols: Sequence[ColumnType]) -> list[exp.DataType]:
        """Types for a whole table, in column order, as sqlglot ASTs."""
        return [exp.DataType.build(self.type_text(c), dialect=self.sqlglot) for c in cols]

    def constraints(self, col: ColumnType, name: str) -> list[exp.ColumnConstraint]:
        """Constraints a column needs beyond its type (the primary key is added by create_table)."""
        return []

    def table_properties(self) -> exp.Properties | None:
        """CREATE TABLE properties (engine, character set), if the dialect needs any."""
        return None

    # -- literals --------------------------------------------------------------------------------------

    def text_literals(self, arr: pa.Array) -> pa.Array:
        """String values as literals: escapes applied in order, then quoted."""
        out = _str(arr)
        for old, new in self.string_escapes:
            out = pc.replace_substring(out, old, new)
        return _wrap(out, self.string_open, "'")

    @abstractmethod
    def blob_literal(self, hex_upper: str) -> str:
        """A file body (as upper-case hex) as a literal."""

    def datetime_literals(self, arr: pa.Array) -> pa.Array:
        """Timestamps as literals in UTC with milliseconds."""
        ms = pc.cast(arr, pa.timestamp("ms", tz="UTC"), safe=False)
        return _wrap(pc.strftime(ms, self.datetime_format), self.datetime_open, self.datetime_close)

    def render_column(self, arr: pa.Array | pa.ChunkedArray, col: ColumnType) -> pa.Array:
        """SQL literal text for every value of a column (NULL for nulls).

        `arr` is typed as the store reads it (string, bool, int, decimal, double, date32, timestamp,
        time) or binary for blobs.
        """
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        kind = col.kind
        if kind == "text":
            out = self.text_literals(arr)
        elif kind == "bool":
            out = pc.if_else(arr, *self.booleans)
        elif kind in ("int", "bigint", "decimal"):
            out = _str(arr)
        elif kind == "double":  # Salesforce has no NaN/Infinity; none of the targets shares a spelling
            out = _str(pc.if_else(pc.is_finite(arr), arr, pa.scalar(None, arr.type)))
        elif kind == "date":
            out = _wrap(_str(arr), self.date_open, "'")
        elif kind == "datetime":
            out = self.datetime_literals(arr)
        elif kind == "time":
            out = _wrap(_str(pc.cast(arr, pa.time32("ms"), safe=False)), self.time_open, "'")
        else:
            hexes = [None if b is None else b.hex().upper() for b in arr.to_pylist()]
            out = pa.array([None if h is None else self.blob_literal(h) for h in hexes], pa.string())
        return pc.fill_null(out, "NULL")

    # -- script ----------------------------------------------------------------------------------------

    def header(self, obj: str, run_id: int, table: str) -> list[str]:
        """The script's comment lines: what it holds and how values are represented."""
        return [
            f"-- Replicator export of {obj} as of backup run {run_id}, {self.name} dialect (table {table}).",
            "-- NULL is a missing value; '' is an empty string (distinct from NULL).",
            f"-- {self.note}",
            f"-- {self.rerun_note}",
        ]

    def after_rows(self, table: str, names: Sequence[str], cols: Sequence[ColumnType],
                   batch: pa.RecordBatch) -> list[list[str]] | None:
        """Per row of `batch`, script lines to run after the INSERT holding it (None: no row needs any)."""
        return None
