"""Turning query result rows (Arrow) into what Salesforce sends: REST JSON records and Bulk CSV pages.

Clients parse these bytes with their own assumptions (date formats, `null` lookups, nested
`attributes`, quoted CSV), so the formats follow sf_api.md §2.5 and §4.1 exactly. Value conversion
is done per column with Arrow compute; only the REST page (at most 2,000 rows) is assembled as
Python dicts, and Bulk CSV never touches a row in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

if TYPE_CHECKING:
    from sfemu.schema import Schema
    from sfemu.soql import Column, CompiledQuery

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
HELPER_KINDS = frozenset({"id", "parent"})  # the record's own Id; a child row's parent Id
NOT_IN_CSV = HELPER_KINDS | {"ref"}  # relationship ids only decide `null` and attributes


# --- value formats -------------------------------------------------------------------------


MS_PER_DAY = 86_400_000
MAX_DAY_SPAN = 200_000  # dates spanning more days than this are formatted one by one


@cache
def _clock_text() -> pa.Array:
    """"HH:MM:SS." for every second of a day: times are formatted by lookup, not per value."""
    return pa.array([f"{h:02d}:{m:02d}:{s:02d}." for h in range(24) for m in range(60) for s in range(60)])


@cache
def _millis_text(zone: str) -> pa.Array:
    return pa.array([f"{i:03d}{zone}" for i in range(1000)])


def _day_text(days: np.ndarray, suffix: str) -> pa.Array:
    """ISO dates for day numbers (days since 1970): the few distinct days are formatted once."""
    if not len(days):
        return pa.array([], pa.string())
    lo, hi = int(days.min()), int(days.max())
    if hi - lo >= MAX_DAY_SPAN:
        return pa.array(np.char.add(np.datetime_as_string(days.astype("datetime64[D]")), suffix))
    table = np.datetime_as_string(np.arange(lo, hi + 1).astype("datetime64[D]"))
    return pc.take(pa.array(np.char.add(table, suffix)), pa.array(days - lo))


def _clock_parts(ms_of_day: np.ndarray, zone: str) -> tuple[pa.Array, pa.Array]:
    """`HH:MM:SS.` and `mmm<zone>` for milliseconds since midnight, to be joined by the caller."""
    return (pc.take(_clock_text(), pa.array(ms_of_day // 1000)),
            pc.take(_millis_text(zone), pa.array(ms_of_day % 1000)))


def _with_nulls(text: pa.Array, original: pa.Array) -> pa.Array:
    if not original.null_count:
        return text
    return pc.if_else(pc.is_null(original), pa.scalar(None, pa.string()), text)


def _ints(array: pa.Array) -> np.ndarray:
    return pc.fill_null(array, 0).to_numpy(zero_copy_only=False)


def _time_text(array: pa.Array) -> pa.Array:
    """`13:00:00.000Z`: Salesforce prints times with milliseconds and a Z."""
    ms = _ints(pc.cast(pc.cast(array, pa.time32("ms")), pa.int32())).astype(np.int64)
    return _with_nulls(pc.binary_join_element_wise(*_clock_parts(ms, "Z"), ""), array)


def _date_text(array: pa.Array) -> pa.Array:
    return _with_nulls(_day_text(_ints(pc.cast(array, pa.int32())).astype(np.int64), ""), array)


def _timestamp_text(array: pa.Array, zone: str) -> pa.Array:
    """`2019-01-01T00:00:00.000<zone>` for naive-UTC timestamps, formatted by lookup tables."""
    ms = _ints(pc.cast(pc.cast(array, pa.timestamp("ms"), safe=False), pa.int64()))
    days, rest = np.divmod(ms, MS_PER_DAY)
    text = pc.binary_join_element_wise(_day_text(days, "T"), *_clock_parts(rest, zone), "")
    return _with_nulls(text, array)


def _plain_decimals(text: pa.Array, values: pa.Array) -> pa.Array:
    """Rewrite the rare `1e+20` / `1.5e-07` that Arrow prints for doubles as plain decimals."""
    scientific = pc.fill_null(pc.match_substring(text, "e"), False)
    if not pc.any(scientific).as_py():
        return text
    rare = pc.filter(values, scientific).to_pylist()
    return pc.replace_with_mask(text, scientific, pa.array([format(Decimal(repr(v)), "f") for v in rare]))


def csv_text(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One result column as Bulk CSV cell text (nulls stay null and are written as empty cells)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    t = array.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return array
    if pa.types.is_boolean(t):
        return pc.if_else(array, "true", "false")
    if pa.types.is_timestamp(t):
        return _timestamp_text(array, "Z")
    if pa.types.is_time(t):
        return _time_text(array)
    if pa.types.is_floating(t):
        return _plain_decimals(pc.cast(array, pa.string()), array)
    if pa.types.is_date(t):
        return _date_text(array)
    if pa.types.is_null(t):
        return pa.nulls(len(array), pa.string())
    return pc.cast(array, pa.string())  # integers, decimals (scale digits kept)


def json_values(array: pa.Array | pa.ChunkedArray) -> list[Any]:
    """One result column as REST JSON values, converted per column before rows are assembled."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    t = array.type
    if pa.types.is_timestamp(t):
        array = _timestamp_text(array, "+0000")
    elif pa.types.is_time(t):
        array = _time_text(array)
    elif pa.types.is_date(t):
        array = _date_text(array)
    elif pa.types.is_decimal(t):
        # currency/percent/double are JSON floats (3.0). Decimals go through their exact text so 816.9
        # stays 816.9, not the nearest binary neighbour of the scaled integer (816.9000000000001).
        if pa.types.is_decimal(array.type):
            array = pc.cast(array, pa.string())
        array = pc.cast(array, pa.float64())
    elif pa.types.is_struct(t):
        return [_compound(v) for v in array.to_pylist()]
    return array.to_pylist()


def _compound(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Address/location object: Salesforce sorts the keys; an all-empty compound is null."""
    if value is None or all(v is None for v in value.values()):
        return None
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in sorted(value.items())}


# --- REST JSON -----------------------------------------------------------------------------


@dataclass
class _Node:
    """Keys of one JSON object in SELECT order: leaves are column indexes, others nested lookups."""

    ref: int | None = None  # column holding the related record's Id ("ref"), None at the top
    items: dict[str, int | _Node] = field(default_factory=dict)
    types: dict[str, tuple[str, ...]] = field(default_factory=dict)  # TYPEOF leaves: key -> sObject types


def _plan(columns: list[Column], aggregate: bool) -> _Node:
    root = _Node()
    for index, col in enumerate(columns):
        if col.kind in HELPER_KINDS:
            continue
        path = col.path[-1:] if aggregate else col.path
        node = root
        for key in path[:-1]:
            child = node.items.setdefault(key, _Node())
            assert isinstance(child, _Node), f"column path {col.path} crosses a field"
            node = child
        if col.kind == "ref":
            child = node.items.setdefault(path[-1], _Node())
            assert isinstance(child, _Node)
            child.ref = index
        else:
            node.items[path[-1]] = index
            if col.types:
                node.types[path[-1]] = col.types
    return root


class JsonRenderer:
    """Builds REST `records` for one compiled query (and, recursively, its child subqueries)."""

    def __init__(self, compiled: CompiledQuery, schema: Schema, api_version: str) -> None:
        self.compiled = compiled
        self.schema = schema
        self.base = f"/services/data/v{api_version}"
        self.plan = _plan(compiled.columns, compiled.aggregate)
        self.children = [(c.relationship, JsonRenderer(c.query, schema, api_version))
                         for c in compiled.children]
        self._types: dict[str, str] = {}

    def _type_of(self, record_id: str) -> str:
        prefix = record_id[:3]
        name = self._types.get(prefix)
        if name is None:
            obj = self.schema.by_prefix(prefix)
            name = self._types[prefix] = obj.name if obj else self.compiled.sobject.name
        return name

    def _columns(self, table: pa.Table) -> list[list[Any]]:
        out = []
        for col in self.compiled.columns:
            values = json_values(table.column(col.name))
            if col.kind == "blob":
                fname = col.field.name if col.field else col.path[-1]
                values = [None if v is None else f"{self.base}/sobjects/{self._type_of(v)}/{v}/{fname}"
                          for v in values]
            out.append(values)
        return out

    def _object(self, node: _Node, cols: list[list[Any]], i: int, rtype: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in node.items.items():
            if isinstance(item, int):
                if key not in node.types or rtype in node.types[key]:
                    out[key] = cols[item][i]
                continue
            ref = cols[item.ref][i] if item.ref is not None else None
            if item.ref is not None and ref is None:
                out[key] = None
                continue
            sub: dict[str, Any] = {}
            sub_type = None
            if ref is not None:
                sub_type = self._type_of(ref)
                sub["attributes"] = {"type": sub_type, "url": f"{self.base}/sobjects/{sub_type}/{ref}"}
            sub.update(self._object(item, cols, i, sub_type))
            out[key] = sub
        return out

    def records(self, table: pa.Table, cursor: Any = None) -> list[dict[str, Any]]:
        """The JSON records of `table`; child subqueries run once for all parents of the page."""
        cols = self._columns(table)
        n = table.num_rows
        if self.compiled.aggregate:
            return [{"attributes": {"type": "AggregateResult"}, **self._object(self.plan, cols, i)}
                    for i in range(n)]
        ids = table.column("__id").to_pylist()
        obj = self.compiled.sobject.name
        records = []
        for i in range(n):
            rec = {"attributes": {"type": obj, "url": f"{self.base}/sobjects/{obj}/{ids[i]}"}}
            rec.update(self._object(self.plan, cols, i))
            records.append(rec)
        for name, renderer in self.children:
            nested = renderer.child_results(cursor, ids) if ids else {}
            for rec, rid in zip(records, ids, strict=True):
                rec[name] = nested.get(rid)
        return records

    def child_results(self, cursor: Any, parent_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Parent id -> {totalSize, done, records} for one child subquery over a page of parents."""
        q = self.compiled
        table = cursor.execute(q.sql, [*q.params, parent_ids]).to_arrow_table()
        groups: dict[str, list[dict[str, Any]]] = {}
        for parent, rec in zip(table.column("__parent").to_pylist(), self.records(table, cursor),
                               strict=True):
            groups.setdefault(parent, []).append(rec)
        return {p: {"totalSize": len(r), "done": True, "records": r} for p, r in groups.items()}


# --- Bulk CSV ------------------------------------------------------------------------------


def csv_columns(columns: list[Column]) -> list[Column]:
    """The columns a Bulk CSV file shows, in SELECT order."""
    return [c for c in columns if c.kind not in NOT_IN_CSV]


def csv_bytes(table: pa.Table, columns: list[Column], delimiter: str = ",", line_ending: str = "\n") -> bytes:
    """A Bulk 2.0 results page: quoted header row plus every non-null value double-quoted."""
    shown = csv_columns(columns)
    arrays = [csv_text(table.column(c.name)) for c in shown]
    out = pa.table(arrays, names=[c.header for c in shown]) if shown else pa.table({})
    sink = pa.BufferOutputStream()
    options = pacsv.WriteOptions(include_header=True, delimiter=delimiter, eol=line_ending,
                                 quoting_style="all_valid", batch_size=8192)
    pacsv.write_csv(out, sink, options)
    return sink.getvalue().to_pybytes()
