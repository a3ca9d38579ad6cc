"""Export a backup as of a run to CSV or SQL files, and write change files between two runs.

Flow: sources/snapshot (records as of a run, Arrow batches) -> sinks/sql (scripts) or sinks/sql_csv
(CSV). Every export and diff is recorded in the store's main.exports before it writes a file and
finished afterwards (what, when, where, which run and objects), so a GDPR forget can find every copy
that left the store.

Output layout of DIR (README "Exports"):
  csv: <Object>.csv per object; with attachments, files/<Object>/<Id>.<ext> (decrypted bodies)
  sql: <Object>.sql per object (DDL + data, see sinks/sql); with attachments, file bodies are inlined
       as BLOB values, without them the body column holds the sha256 of the body as text
  diff: <Object>_added.csv, <Object>_changed.csv (plus a _changed_fields column), <Object>_removed.csv
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from replicator.history import diff as history_diff
from replicator.sinks.sql import write_script
from replicator.sinks.sql_csv import write_csv
from replicator.sinks.sql_types import DIALECTS
from replicator.sources.snapshot import attach_blobs, object_types, read_as_of, resolve_run
from replicator.store.blobs import BlobStore
from replicator.store.snapshot import SnapshotStore
from replicator.store.types import ColumnType

__all__ = ["FORMATS", "ExportResult", "diff_files", "export"]

FORMATS = ("csv", "sql")
# Where a file's extension is read from, per object with bodies; Attachment has it in its Name.
EXTENSION_FIELDS = {"ContentVersion": "FileExtension", "Document": "Type", "Attachment": "Name"}
_EXT = re.compile(r"[A-Za-z0-9]{1,16}")


@dataclass
class ExportResult:
    export_id: int
    directory: Path
    run_id: int
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def _ledgered(store: SnapshotStore, kind: str, out: Path, objects: list[str], run_id: int,
              work, *, fmt: str | None = None, dialect: str | None = None,
              from_run: int | None = None) -> ExportResult:
    """Run `work(result)` between a 'running' and a final ledger row."""
    out.mkdir(parents=True, exist_ok=True)
    with store.exports.recording(kind, fmt=fmt, dialect=dialect, run_id=run_id, from_run=from_run,
                                 objects=objects, destination=str(out.resolve())) as record:
        result = ExportResult(record.export_id, out, run_id, rows=record.rows)
        work(result)
    return result


def export(store: SnapshotStore, out: Path, *, run: int | str = "last", fmt: str = "csv",
           dialect: str | None = None, objects: Sequence[str] | None = None,
           blobs: BlobStore | None = None) -> ExportResult:
    """Export the objects (default: all) as of `run` into `out`. `blobs` set = include attachments."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "sql" and dialect not in DIALECTS:
        raise ValueError(f"--format sql needs --dialect ({', '.join(DIALECTS)})")
    run_id = resolve_run(store, run)
    names = store.exports.resolve(store.reads.objects(), objects)

    def work(result: ExportResult) -> None:
        for obj in names:
            types = object_types(store, obj)
            reader = read_as_of(store, obj, run_id)
            if fmt == "sql":
                path = out / f"{obj}.sql"
                cols, batches = attach_blobs(reader, types, blobs)
                with open(path, "w", encoding="utf-8", newline="\n") as fh:
                    result.rows[obj] = write_script(fh, obj, run_id, cols, batches, dialect or "")
            else:
                path = out / f"{obj}.csv"
                batches = _copying_files(reader, types, obj, out, blobs, result)
                result.rows[obj] = write_csv(path, types, batches, reader.schema)
            result.files.append(path)

    return _ledgered(store, "export", out, names, run_id, work, fmt=fmt,
                     dialect=dialect if fmt == "sql" else None)


def _copying_files(reader: pa.RecordBatchReader, types: list[ColumnType], obj: str, out: Path,
                   blobs: BlobStore | None, result: ExportResult):
    """Pass batches through, writing each record's file body to files/<Object>/<Id>.<ext> on the way."""
    blob_cols = [t.name for t in types if t.kind == "blob"]
    for batch in reader:
        if blobs is not None and blob_cols:
            _write_bodies(batch, blob_cols[0], obj, out / "files" / obj, blobs, result)
        yield batch


def _write_bodies(batch: pa.RecordBatch, column: str, obj: str, folder: Path, blobs: BlobStore,
                  result: ExportResult) -> None:
    ext_field = EXTENSION_FIELDS.get(obj)
    names = batch.schema.names
    exts = batch.column(names.index(ext_field)).to_pylist() if ext_field in names else [None] * batch.num_rows
    for rid, sha, ext in zip(batch.column(names.index("Id")).to_pylist(),
                             batch.column(names.index(column)).to_pylist(), exts, strict=True):
        if sha is None:
            continue
        if ext and obj == "Attachment":
            ext = ext.rsplit(".", 1)[1] if "." in ext else None
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{rid}.{ext if ext and _EXT.fullmatch(ext) else 'bin'}"
        with open(path, "wb") as fh:
            for chunk in blobs.chunks(sha):
                fh.write(chunk)
        result.files.append(path)


def diff_files(store: SnapshotStore, out: Path, from_run: int | str, to_run: int | str, *,
               objects: Sequence[str] | None = None) -> ExportResult:
    """<Object>_added/_changed/_removed.csv between two runs (history.diff), one set per object."""
    run_a, run_b = resolve_run(store, from_run), resolve_run(store, to_run)
    names = store.exports.resolve(store.reads.objects(), objects)

    def work(result: ExportResult) -> None:
        for obj in names:
            types = object_types(store, obj)
            found = history_diff(store, obj, run_a, run_b)
            changed = found.changed
            if "_changed_fields" in changed.column_names:
                i = changed.column_names.index("_changed_fields")
                changed = changed.set_column(i, "_changed_fields", pc.binary_join(changed.column(i), ";"))
            count = 0
            for suffix, table in (("added", found.added), ("changed", changed), ("removed", found.removed)):
                path = out / f"{obj}_{suffix}.csv"
                count += write_csv(path, types, table.to_batches(), table.schema)
                result.files.append(path)
            result.rows[obj] = count

    return _ledgered(store, "diff", out, names, run_b, work, fmt="csv", from_run=run_a)
