"""CSV files from the same type model as the SQL scripts (exports and change files).

Format (README "Exports"): UTF-8 without BOM, a header row with the Salesforce field names, RFC 4180
quoting with CRLF line ends; every text value is quoted, so an empty string is `""` while NULL is an
empty unquoted field. Booleans are true/false, datetimes ISO 8601 in UTC with milliseconds
(2024-05-01T12:34:56.123Z, as Salesforce writes them), dates 2024-05-01, times 12:34:56.123Z,
decimals with their scale, file bodies as the blob id of the body (the bytes go to files/ with
--include-attachments). Written batch by batch: memory stays flat.

Files meant for people are opened in spreadsheets, which run a cell starting with =, +, -, @, tab or
carriage return as a formula (CSV injection). With `neutralise` (the default), such text values get
a leading apostrophe, as OWASP recommends; machine round-trips turn it off (`--keep-formulas`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from replicator.store.types import ColumnType

__all__ = ["csv_batch", "write_csv"]

WRITE_OPTIONS = pacsv.WriteOptions(include_header=True, eol="\r\n", quoting_style="needed")
FORMULA_START = r"^[=+\-@\t\r]"


def neutralised(arr: pa.Array) -> pa.Array:
    """Text values a spreadsheet would run as formulas, prefixed with an apostrophe (OWASP)."""
    risky = pc.fill_null(pc.match_substring_regex(arr, FORMULA_START), False)
    return pc.if_else(risky, pc.binary_join_element_wise("'", arr, ""), arr)


def _as_text(arr: pa.Array, col: ColumnType) -> pa.Array:
    if col.kind == "datetime":
        ms = pc.cast(arr, pa.timestamp("ms", tz="UTC"), safe=False)
        return pc.binary_join_element_wise(pc.strftime(ms, "%Y-%m-%dT%H:%M:%S"), "Z", "")
    if col.kind == "time":
        text = pc.cast(pc.cast(arr, pa.time32("ms"), safe=False), pa.string())
        return pc.binary_join_element_wise(text, "Z", "")
    if col.kind == "date":
        return pc.cast(arr, pa.string())
    return arr


def csv_batch(batch: pa.RecordBatch, cols: Sequence[ColumnType], *,
              neutralise: bool = False) -> pa.RecordBatch:
    """A store batch with temporal columns spelled as Salesforce does (other types write as they
    are); with `neutralise`, text that would run as a formula is defused."""
    by_name = {c.name: c for c in cols}
    arrays = [_as_text(batch.column(i), by_name[name]) if name in by_name else batch.column(i)
              for i, name in enumerate(batch.schema.names)]
    if neutralise:
        arrays = [neutralised(a) if pa.types.is_string(a.type) or pa.types.is_large_string(a.type) else a
                  for a in arrays]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def write_csv(path: Path, cols: Sequence[ColumnType], batches: Iterable[pa.RecordBatch],
              schema: pa.Schema, *, neutralise: bool = True) -> int:
    """Write batches of `schema` (store types) to `path`; returns the number of rows."""
    first = csv_batch(pa.RecordBatch.from_pylist([], schema=schema), cols)
    total = 0
    with pacsv.CSVWriter(str(path), first.schema, write_options=WRITE_OPTIONS) as writer:
        for batch in batches:
            writer.write_batch(csv_batch(batch, cols, neutralise=neutralise))
            total += batch.num_rows
    return total
