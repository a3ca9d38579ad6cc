"""What every endpoint loader shares: the tables it is handed, its report, CSV conversion and DDL plans.

The sink takes, per object, its column types and a way to open its Arrow batches (`TableSource`); it
knows nothing of where they come from (the export job reads them from the store). Per object the target
table is created from our type model (the same types, identifier quoting and shortening as the SQL
scripts, via the dialect of the loader's kind) or evolved (new fields become new columns via ALTER TABLE
ADD COLUMN; columns are never dropped or retyped, so users' views keep working), then its rows are
replaced.

Why CSV bulk loads: pyarrow's C++ CSV writer turns each batch into CSV and the server's own bulk path
takes it (PostgreSQL COPY, MySQL LOAD DATA). No row-by-row INSERTs and no Python per record. CSV keeps
NULL apart from '' (strings are always quoted; NULL is the loader's unquoted null string) and needs no
escaping beyond doubled quotes. Each loader states its CSV conventions as data (`CsvLoader`).
"""

from __future__ import annotations

import contextlib
import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from replicator.config import EndpointSettings
from replicator.errors import ReplicatorError
from replicator.sinks.sql.dialect import SqlDialect
from replicator.sinks.sql.registry import dialect
from replicator.sinks.sql.tables import column_names, create_table
from replicator.store.types import ColumnType

__all__ = ["CONNECT_TIMEOUT", "EndpointError", "EndpointReport", "Loader", "TableLoad", "TableSource",
           "target"]

CONNECT_TIMEOUT = 15
# Largest slice of a batch converted to CSV at once: keeps the CSV buffer around 10-50 MB.
CSV_ROWS = 100_000


class EndpointError(ReplicatorError):
    """An endpoint export failed; the message names the endpoint and never holds its password."""

    http_status = 502
    kind = "endpoint"


@dataclass
class TableSource:
    """One object to load: its name, its type model and how to open its batches (columns by name)."""

    name: str
    columns: list[ColumnType]
    open: Callable[[], Iterable[pa.RecordBatch]]


@dataclass
class TableLoad:
    """What one object's export did to its table."""

    object: str
    table: str
    rows: int = 0
    created: bool = False
    added_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class EndpointReport:
    """The result of one endpoint export (also what the exports ledger records)."""

    endpoint: str
    kind: str
    target: str  # kind://user@host:port/database[/schema], no password
    run_id: int
    tables: list[TableLoad] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def target(ep: EndpointSettings) -> str:
    """The endpoint as a URL without its password, for messages and the ledger."""
    schema = f"/{ep.schema}" if ep.schema else ""
    return f"{ep.kind}://{ep.user}@{ep.host}:{ep.port}/{ep.database}{schema}"


class Loader(ABC):
    """Loads tables into one kind of database. Subclasses give the kind, its CSV conventions and
    the load itself (connection, DDL, bulk path, transaction)."""

    kind: ClassVar[str]  # the endpoint kind, also the SQL dialect of its DDL
    null_string: ClassVar[str]  # NULL in the CSV (unquoted)
    blob_prefix: ClassVar[str]  # before the hex of a file body
    datetime_suffix: ClassVar[str]  # after the UTC wall-clock text of a datetime
    text_nul: ClassVar[str | None] = None  # what U+0000 becomes, if the server cannot store it
    bool_type: ClassVar[pa.DataType | None] = None  # booleans cast to this, if the server wants numbers

    @property
    def dialect(self) -> SqlDialect:
        return dialect(self.kind)

    @abstractmethod
    def load(self, ep: EndpointSettings, tables: list[TableSource], report: EndpointReport) -> None:
        """Load every table in one data transaction, appending a TableLoad per table to `report`."""

    # -- Arrow batch -> CSV bytes -----------------------------------------------------------------------

    def csv_column(self, arr: pa.Array, col: ColumnType) -> pa.Array:
        """A column as the server's CSV loader reads it exactly."""
        if col.kind == "text":
            arr = arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())
            return arr if self.text_nul is None else pc.replace_substring(arr, "\x00", self.text_nul)
        if col.kind == "double":
            return pc.if_else(pc.is_finite(arr), arr, pa.scalar(None, arr.type))
        if col.kind == "blob":
            # Blobs are few and small per row set, so a Python pass is acceptable here.
            if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
                arr = pc.cast(arr, pa.binary())
            return pa.array([None if b is None else self.blob_prefix + b.hex() for b in arr.to_pylist()],
                            pa.string())
        if col.kind == "datetime":
            # UTC wall-clock text. (Arrow's CSV writer formats zoned timestamps ~40x slower than this
            # cast: it was half the export time.)
            wall = pc.cast(pc.cast(arr, pa.timestamp("ms", tz="UTC"), safe=False), pa.timestamp("ms"))
            return pc.binary_join_element_wise(pc.cast(wall, pa.string()), self.datetime_suffix, "")
        if col.kind == "bool" and self.bool_type is not None:
            return pc.cast(arr, self.bool_type)
        return arr

    def csv_bytes(self, batch: pa.RecordBatch, cols: list[ColumnType]) -> bytes:
        """A batch (columns in type-model order) as CSV without a header."""
        arrays = [self.csv_column(batch.column(i), c) for i, c in enumerate(cols)]
        table = pa.RecordBatch.from_arrays(arrays, names=[f"c{i}" for i in range(len(cols))])
        options = pacsv.WriteOptions(include_header=False, null_string=self.null_string,
                                     quoting_style="needed", batch_size=8192)
        sink = io.BytesIO()
        pacsv.write_csv(table, sink, options)
        return sink.getvalue()

    def csv_chunks(self, source: TableSource) -> Iterator[tuple[int, bytes]]:
        """(rows, CSV bytes) per slice of the table's batches, columns in type-model order."""
        names = [c.name for c in source.columns]
        for batch in source.open():
            batch = batch.select(names)
            for start in range(0, batch.num_rows, CSV_ROWS):
                part = batch.slice(start, CSV_ROWS)
                yield part.num_rows, self.csv_bytes(part, source.columns)

    # -- table shape -------------------------------------------------------------------------------------

    def plan_ddl(self, source: TableSource,
                 existing: list[str] | None) -> tuple[list[str], TableLoad, list[str]]:
        """DDL statements that make the table fit the object, the load record, and the column names.

        `existing`: the table's current column names, None if it does not exist. Names are shortened
        over the object's whole column list, so a field keeps its column name across exports.
        """
        d = self.dialect
        names = column_names([c.name for c in source.columns], d)
        load = TableLoad(object=source.name, table=d.short_name(source.name))
        if existing is None:
            load.created = True
            return [create_table(source.name, source.columns, d).sql(dialect=d.sqlglot)], load, names
        have = {n.casefold() for n in existing}
        statements = []
        for name, dtype in zip(names, d.column_types(source.columns), strict=True):
            if name.casefold() not in have:
                load.added_columns.append(name)
                statements.append(f"ALTER TABLE {d.quote(load.table)} ADD COLUMN "
                                  f"{d.quote(name)} {dtype.sql(dialect=d.sqlglot)}")
        return statements, load, names

    # -- errors --------------------------------------------------------------------------------------------

    @staticmethod
    def error(ep: EndpointSettings, what: str, exc: BaseException) -> EndpointError:
        """A driver error as an EndpointError; the password is masked should a driver ever echo it."""
        message = str(exc).strip() or type(exc).__name__
        with contextlib.suppress(Exception):
            secret = ep.password.reveal()
            if secret:
                message = message.replace(secret, "***")
        return EndpointError(f"endpoint {ep.name!r} ({target(ep)}): {what}: {message}")

