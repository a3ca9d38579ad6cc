"""SQL scripts: one self-contained script per object with DDL and data, in any registered dialect.

Layout of a script: a header comment (object, run, dialect, how NULL and empty strings and times are
represented), session settings that make the literals mean what they say, DROP + CREATE TABLE (sqlglot
ASTs from our type model), then the data as INSERT statements in one transaction. Rows are rendered
column-wise with Arrow compute and written batch by batch, so memory stays flat whatever the object's
size. INSERTs hold up to the dialect's rows per INSERT (and about 1 MB of text); a dialect may add
lines after the INSERT holding a row (Oracle: PL/SQL appending long file bodies).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from replicator.sinks.sql.dialect import SqlDialect
from replicator.sinks.sql.registry import dialect
from replicator.sinks.sql.tables import column_names, create_table
from replicator.store.types import ColumnType

__all__ = ["STATEMENT_BYTES", "write_script"]

STATEMENT_BYTES = 1 << 20


def _rows(batch: pa.RecordBatch, cols: Sequence[ColumnType], d: SqlDialect) -> list[str]:
    rendered = [d.render_column(batch.column(i), c) for i, c in enumerate(cols)]
    sep = d.value_separator
    joined = pc.binary_join_element_wise(*rendered, sep) if len(rendered) > 1 else rendered[0]
    return pc.binary_join_element_wise("(", joined, ")", "").to_pylist()


def write_script(out: TextIO, obj: str, run_id: int, cols: Sequence[ColumnType],
                 batches: Iterable[pa.RecordBatch], dialect_name: str | SqlDialect) -> int:
    """Write one object's script to `out`; returns the number of rows written."""
    d = dialect(dialect_name)
    table = d.short_name(obj)
    names = column_names([c.name for c in cols], d)
    for line in [*d.header(obj, run_id, table), *d.session]:
        out.write(line + "\n")
    out.write("\n")
    if d.drops_table:
        target = exp.Table(this=exp.to_identifier(table, quoted=True))
        out.write(exp.Drop(tables=[target], kind="TABLE", exists=True).sql(d.sqlglot) + ";\n")
    out.write(create_table(obj, cols, d).sql(d.sqlglot, identify=True, pretty=True) + ";\n\n")
    if d.begin:
        out.write(d.begin + "\n")
    prefix = f"INSERT INTO {d.quote(table)} ({d.value_separator.join(d.quote(n) for n in names)}) VALUES"
    total = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        rows = _rows(batch, cols, d)
        total += len(rows)
        _write_inserts(out, prefix, rows, d.rows_per_insert, d.after_rows(table, names, cols, batch))
    out.write("COMMIT;\n")
    return total


def _write_inserts(out: TextIO, prefix: str, rows: list[str], per_insert: int,
                   after: list[list[str]] | None) -> None:
    """INSERTs of at most `per_insert` rows and about STATEMENT_BYTES of text each, each followed by
    the `after` lines of its rows."""
    start = 0
    while start < len(rows):
        size, end = 0, start
        while end < len(rows) and end - start < per_insert and (end == start or size < STATEMENT_BYTES):
            size += len(rows[end])
            end += 1
        out.write(prefix + "\n" + ",\n".join(rows[start:end]) + ";\n")
        for block in (after or [])[start:end]:
            for line in block:
                out.write(line + "\n")
        start = end
