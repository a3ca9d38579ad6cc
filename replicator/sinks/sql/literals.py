"""Values as SQL literals in a dialect: a whole column at once (the scripts) or one value (PL/SQL keys,
tests). The spelling rules live in the dialect classes."""

from __future__ import annotations

import math

import pyarrow as pa

from replicator.sinks.sql.dialect import SqlDialect
from replicator.sinks.sql.registry import dialect
from replicator.store.types import ColumnType

__all__ = ["render_column", "render_literal"]

_VALUE_TYPES = {"text": pa.string(), "bool": pa.bool_(), "int": pa.int32(), "bigint": pa.int64(),
                "double": pa.float64(), "date": pa.date32(), "datetime": pa.timestamp("ms", tz="UTC"),
                "time": pa.time32("ms"), "blob": pa.binary()}


def render_column(arr: pa.Array | pa.ChunkedArray, col: ColumnType,
                  dialect_name: str | SqlDialect) -> pa.Array:
    """SQL literal text for every value of a column (NULL for nulls), vectorised with Arrow compute."""
    return dialect(dialect_name).render_column(arr, col)


def render_literal(value: object, col: ColumnType, dialect_name: str | SqlDialect) -> str:
    """One Python value as a SQL literal (same rules as render_column)."""
    if value is None:
        return "NULL"
    if col.kind == "decimal":
        arr = pa.array([value], pa.decimal128(col.precision or 38, col.scale))
    else:
        if col.kind == "double" and isinstance(value, float) and not math.isfinite(value):
            return "NULL"
        arr = pa.array([value], _VALUE_TYPES[col.kind])
    return render_column(arr, col, dialect_name)[0].as_py()
