"""Bulk API 2.0 ingest CSV: parsing an upload and writing the per-row result files.

Salesforce echoes each uploaded row exactly as it was sent after its `sf__` columns, so an upload
keeps two views of the same rows: the raw text of every record (split on line endings outside
quotes, with numpy, and held as a zero-copy Arrow string array over the upload) and the parsed
values (pyarrow.csv, every column a string, empty cells kept as ""). Result files are built column
by column with Arrow compute: no row ever becomes a Python object.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

BOM = b"\xef\xbb\xbf"
_QUOTE, _LF, _CR = ord('"'), ord("\n"), ord("\r")


class CsvError(ValueError):
    """Data that cannot be read as the job's CSV; the message is the job's errorMessage."""


@dataclass
class Upload:
    """One uploaded CSV file, parsed."""

    header: list[str]  # column names as uploaded
    raw_header: str  # the header record's text, with its line ending
    raw: pa.StringArray  # each data record's text, with its line ending
    values: pa.Table  # the parsed cells: one string column per header column, named f0, f1...

    @property
    def num_rows(self) -> int:
        return len(self.raw)

    def column(self, index: int) -> pa.ChunkedArray:
        return self.values.column(index)


def _records(data: bytes, line_ending: str) -> tuple[bytes, np.ndarray]:
    """The data (ending with a line ending) and the offsets of its records: record i is
    data[offsets[i]:offsets[i+1]], line ending included. A line ending inside quotes is part of a
    value: it is preceded by an odd number of quote characters."""
    if not data.endswith(b"\n"):
        data += line_ending.encode()
    buf = np.frombuffer(data, np.uint8)
    quotes = np.flatnonzero(buf == _QUOTE)
    newlines = np.flatnonzero(buf == _LF)
    ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0] + 1
    crlf = buf[ends - 2] == _CR if len(ends) else np.zeros(0, bool)
    if not crlf.all() if line_ending == "\r\n" else crlf.any():
        setting = "CRLF" if line_ending == "\r\n" else "LF"
        raise CsvError("ClientInputError : LineEnding is invalid on user data. "
                       f"Current LineEnding setting is {setting}")
    return data, np.concatenate([[0], ends]).astype(np.int64)


def parse(data: bytes, delimiter: str, line_ending: str) -> Upload:
    """Split and parse an upload; raises CsvError for data Salesforce would not read."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    data, offsets = _records(data, line_ending)
    if len(offsets) > 2**31 - 1 or len(data) > 2**31 - 1:
        raise CsvError("ClientInputError : the upload is too large")
    lengths = np.diff(offsets)
    blank = lengths <= len(line_ending)  # empty lines are skipped, as the CSV parser skips them
    raw_all = pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets.astype(np.int32)),
                                          pa.py_buffer(data))
    try:
        raw_all.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise CsvError("ClientInputError : the data is not valid UTF-8") from exc
    kept = raw_all.filter(pa.array(~blank)) if blank.any() else raw_all
    if not len(kept):
        raise CsvError("ClientInputError : No header row found in the uploaded data")
    raw_header = kept[0].as_py()
    header = next(csv.reader(io.StringIO(raw_header.rstrip("\r\n")), delimiter=delimiter))
    raw = kept.slice(1)
    types = {f"f{i}": pa.string() for i in range(len(header))}
    try:
        values = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, skip_rows=1,
                                           block_size=max(1 << 20, min(len(data) + 1, 1 << 28))),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False),
        ) if len(raw) else pa.table({name: pa.array([], pa.string()) for name in types})
    except pa.ArrowInvalid as exc:
        raise CsvError(f"ClientInputError : {exc}") from exc
    if values.num_columns != len(header) or values.num_rows != len(raw):
        raise CsvError(f"ClientInputError : every row must have the {len(header)} columns of the header")
    return Upload(header, raw_header, raw, values)


def quoted(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Values as always-quoted CSV cells (`sf__` columns are quoted in Salesforce's results)."""
    escaped = pc.replace_substring(pc.fill_null(values, ""), '"', '""')
    return pc.binary_join_element_wise('"', escaped, '"', "")


def _concat(values: pa.Array | pa.ChunkedArray) -> bytes:
    """All strings of an array back to back (the data buffer between the first and last offset)."""
    if isinstance(values, pa.ChunkedArray):
        return b"".join(_concat(chunk) for chunk in values.chunks)
    if not len(values):
        return b""
    values = values.cast(pa.string())
    offsets = np.frombuffer(values.buffers()[1], np.int32)[values.offset:values.offset + len(values) + 1]
    data = values.buffers()[2]
    return b"" if data is None else data.to_pybytes()[offsets[0]:offsets[-1]]


def result_csv(upload: Upload, rows: pa.Array, prefix: dict[str, pa.Array], delimiter: str) -> bytes:
    """A result file: `prefix` columns (quoted, named in the header) then the uploaded records `rows`."""
    names = delimiter.join(f'"{name}"' for name in prefix)
    head = (names + delimiter if names else "") + upload.raw_header
    raw = upload.raw.take(rows)
    if prefix:
        raw = pc.binary_join_element_wise(*[quoted(col) for col in prefix.values()], raw, delimiter)
    return head.encode() + _concat(raw)
