"""Salesforce result pages -> Arrow tables typed by the plan (catalog.arrow_schema).

Bulk CSV pages are parsed by pyarrow.csv straight into typed columns; REST JSON pages (at most
2,000 records) are turned into one Python list per column. Both paths give identical tables for
the same records, so an object may switch between REST and Bulk from one run to the next.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

_EPOCH_DAY = "1970-01-01T"
_CSV_BLOCK = 2 << 20


def _time_of_day(text: pa.Array) -> pa.Array:
    """`13:00:00.000Z` strings -> time32[ms] (Arrow cannot cast strings to times directly)."""
    stamps = pc.binary_join_element_wise(_EPOCH_DAY, pc.utf8_rtrim(text, characters="Z"), "")
    millis = stamps.cast(pa.timestamp("ms")).cast(pa.int64()).cast(pa.int32())
    return millis.cast(pa.time32("ms"))


def _from_text(text: pa.Array, target: pa.DataType) -> pa.Array:
    """Salesforce's text form of a value (CSV cell, JSON string) -> the target type."""
    if pa.types.is_time(target):
        return _time_of_day(text)
    if pa.types.is_integer(target):
        return text.cast(pa.float64()).cast(target)  # Bulk may write integers as "3.0"
    return text.cast(target)


def _json_column(values: list[Any], target: pa.DataType) -> pa.Array:
    if pa.types.is_string(target):
        text = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
        return pa.array(text, pa.string())
    if pa.types.is_timestamp(target) or pa.types.is_date(target) or pa.types.is_time(target):
        return _from_text(pa.array(values, pa.string()), target)
    if pa.types.is_decimal(target) or pa.types.is_integer(target):
        return pa.array(values, pa.float64()).cast(target)
    return pa.array(values, target)


def rest_table(records: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """A REST query page as a table of the schema's columns (attributes and other keys dropped).

    JSON numbers of floating fields are rounded to the field's scale (schema metadata), as Salesforce
    stores them, so 816.9000000000001 from a float conversion stages as 816.9, like Bulk's "816.9".
    """
    columns = []
    for f in schema:
        values = [r.get(f.name) for r in records]
        scale = (f.metadata or {}).get(b"scale")
        if scale is not None and pa.types.is_floating(f.type):  # Python's round is exact; Arrow's is not
            values = [None if v is None else round(v, int(scale)) for v in values]
        columns.append(_json_column(values, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _csv_read_type(target: pa.DataType) -> pa.DataType:
    """What pyarrow.csv parses a column as; times and integers go through text/float first."""
    if pa.types.is_time(target):
        return pa.string()
    if pa.types.is_integer(target):
        return pa.float64()
    return target


def csv_table(data: bytes, schema: pa.Schema) -> pa.Table:
    """A Bulk 2.0 CSV results page (header row, empty cell = null) as a table of the schema.

    The page is read in place (no copy of its bytes) in blocks small enough that both cores parse:
    with 8 MB blocks a 45 MB page was mostly parsed by one thread.
    """
    if not data or data.isspace():
        return schema.empty_table()
    convert = pacsv.ConvertOptions(
        column_types={f.name: _csv_read_type(f.type) for f in schema}, include_columns=schema.names,
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True)
    table = pacsv.read_csv(pa.BufferReader(data), read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK),
                           convert_options=convert)
    columns = []
    for f in schema:
        column = table.column(f.name)
        columns.append(column if column.type == f.type else _from_text(column, f.type) if
                       pa.types.is_time(f.type) else column.cast(f.type))
    return pa.Table.from_arrays(columns, schema=schema)
