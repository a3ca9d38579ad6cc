"""Read records back from the snapshot store as of a run: the source of exports (and later restore/seed).

Records come as Arrow batches typed as the store keeps them (metadata columns dropped), so an export
of any size runs in flat memory. `object_types` is the type model every SQL/CSV sink sizes its columns
by: the store's column type decides the kind, the describe recorded with the runs (main.field_types)
gives VARCHAR lengths, widened to the longest value the history holds (a field an admin shortened
still fits its old values).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyarrow as pa

from replicator.errors import InvalidInput, NotFound
from replicator.store.blobs import BlobStore
from replicator.store.snapshot import SnapshotStore
from replicator.store.types import ColumnType

__all__ = ["BadRun", "ColumnType", "UnknownRun", "attach_blobs", "object_types", "read_as_of", "resolve_run"]

BATCH_ROWS = 10_000
SHA_LENGTH = 64
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_KINDS = {"BOOLEAN": "bool", "INTEGER": "int", "BIGINT": "bigint", "DOUBLE": "double", "DATE": "date",
          "TIMESTAMP WITH TIME ZONE": "datetime", "TIME": "time"}
_NOT_TEXT = {"boolean", "int", "long", "double", "percent", "currency", "date", "datetime", "time"}
APPLIED = ("completed", "partial")


class BadRun(InvalidInput, ValueError):
    """A run named neither 'last' nor by its number."""


class UnknownRun(NotFound, ValueError):
    """A run the store does not have (or, for 'last', no run that committed versions yet)."""


def resolve_run(store: SnapshotStore, run: int | str) -> int:
    """A run id from `last` (the newest run that committed versions) or a number; checks it exists."""
    if isinstance(run, str) and run != "last":
        if not run.isdigit():
            raise BadRun(f"a run is 'last' or a run number, not {run!r}")
        run = int(run)
    if run == "last":
        applied = [r["run_id"] for r in store.ledger.runs() if r["status"] in APPLIED]
        if not applied:
            raise UnknownRun("no completed or partial run in the store yet")
        return applied[-1]
    if store.ledger.run(int(run)) is None:
        raise UnknownRun(f"run {run} does not exist")
    return int(run)


def object_types(store: SnapshotStore, obj: str) -> list[ColumnType]:
    """The type model of an object's columns, in table order (see the module docstring).

    A base64 field (a file body) has kind "blob": the store holds its sha256, `attach_blobs` turns
    it into bytes or keeps the reference as text.
    """
    columns = store.reads.column_types(obj)
    described = store.reads.field_types(obj)
    longest = store.reads.longest_text(obj, [name for name, t in columns.items() if t == "VARCHAR"])
    types = []
    for name, sql_type in columns.items():
        info = described.get(name, {})
        ftype = info.get("type")
        if (m := _DECIMAL.fullmatch(sql_type)) is not None:
            types.append(ColumnType(name, "decimal", precision=int(m.group(1)), scale=int(m.group(2))))
        elif sql_type in _KINDS:
            types.append(ColumnType(name, _KINDS[sql_type]))
        elif ftype == "base64":
            types.append(ColumnType(name, "blob"))
        else:
            length = (info.get("length") or 0) if ftype not in _NOT_TEXT else 0
            if name == "Id":
                length = length or 18
            if length:
                length = max(length, longest.get(name, 0))
            types.append(ColumnType(name, "text", length=length))
    return types


def read_as_of(store: SnapshotStore, obj: str, run_id: int, *,
               batch_rows: int = BATCH_ROWS) -> pa.RecordBatchReader:
    """The records of `obj` as of run `run_id` (not deleted), ordered by Id, as streamed Arrow batches."""
    return store.reads.as_of(obj, run_id, batch_rows)


def attach_blobs(reader: pa.RecordBatchReader, types: list[ColumnType],
                 blobs: BlobStore | None) -> tuple[list[ColumnType], Iterator[pa.RecordBatch]]:
    """Blob columns as their bytes (read and decrypted from `blobs`), or, with `blobs` None, as the
    sha256 text the store keeps. Returns the adjusted types and batches."""
    blob_cols = [i for i, t in enumerate(types) if t.kind == "blob"]
    if blobs is None:
        text = [ColumnType(t.name, "text", SHA_LENGTH) if t.kind == "blob" else t for t in types]
        return text, iter(reader)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            arrays = list(batch.columns)
            for i in blob_cols:
                shas = arrays[i].to_pylist()
                arrays[i] = pa.array([None if s is None else blobs.get(s) for s in shas], pa.large_binary())
            yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    return types, batches()
