"""The export job: a backup as of a run to CSV or SQL files or into an endpoint database, and change
files between two runs.

Flow: sources/snapshot (records as of a run, Arrow batches) -> a sink: sinks/sql (scripts), sinks/csv
(CSV) or sinks/endpoints (a database, by endpoint kind). The job resolves runs and objects, reads the
store and keeps the ledger; the sinks know nothing of the store. Every export and diff is recorded in
the store's main.exports before it writes a file and finished afterwards (what, when, where, which run
and objects), so a GDPR forget can find every copy that left the store.

Output layout of DIR (README "Exports"), by format name (FORMATS):
  csv: <Object>.csv per object; with attachments, files/<Object>/<Id>.<ext> (decrypted bodies)
  sql: <Object>.sql per object (DDL + data, see sinks/sql); with attachments, file bodies are inlined
       as BLOB values, without them the body column holds the body's blob id as text
  diff: <Object>_added.csv, <Object>_changed.csv (plus a _changed_fields column), <Object>_removed.csv
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from replicator.config import Config, EndpointSettings
from replicator.errors import InvalidInput
from replicator.history import diff as history_diff
from replicator.progress import Progress, Silent
from replicator.result import JobResult
from replicator.sinks.csv import write_csv
from replicator.sinks.endpoints.loader import EndpointError, EndpointReport, TableSource, target
from replicator.sinks.endpoints.registry import load
from replicator.sinks.sql.registry import DIALECTS
from replicator.sinks.sql.script import write_script
from replicator.sources.snapshot import attach_blobs, object_types, read_as_of, resolve_run
from replicator.store.blobs import BlobStore
from replicator.store.repository import Repository
from replicator.store.snapshot import SnapshotStore
from replicator.store.types import ColumnType

__all__ = ["FORMATS", "BadExport", "DiffRequest", "EndpointError", "EndpointResult", "ExportFormat",
           "ExportRequest", "ExportResult", "diff_files", "export", "export_to_endpoint", "load_endpoint",
           "run_diff", "run_export"]

# Where a file's extension is read from, per object with bodies; Attachment has it in its Name.
EXTENSION_FIELDS = {"ContentVersion": "FileExtension", "Document": "Type", "Attachment": "Name"}
_EXT = re.compile(r"[A-Za-z0-9]{1,16}")


class BadExport(InvalidInput, ValueError):
    """An export asked in a way no writer can carry out (unknown format, missing dialect, no target)."""


@dataclass
class ExportResult(JobResult):
    """Files written by an export or a diff, with the ledger id that recorded them."""

    export_id: int
    directory: Path
    run_id: int
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Ledger id, run, folder, rows per object and every file written."""
        return {"export_id": self.export_id, "run_id": self.run_id, "directory": str(self.directory),
                "rows": self.rows, "files": [str(f) for f in self.files]}

    def text(self) -> str:
        """One line: how much, as of which run, where."""
        return (f"export {self.export_id}: {sum(self.rows.values())} rows of {len(self.rows)} objects as of "
                f"run {self.run_id} in {self.directory} ({len(self.files)} files)")


@dataclass
class EndpointResult(JobResult):
    """An endpoint export: the loader's report (endpoint, target without password, rows per table)."""

    report: EndpointReport

    def to_json(self) -> dict[str, Any]:
        """Endpoint, target, run, rows per object and duration."""
        r = self.report
        return {"endpoint": r.endpoint, "target": r.target, "run_id": r.run_id,
                "rows": {t.object: t.rows for t in r.tables}, "seconds": round(r.seconds, 2)}

    def text(self) -> str:
        """One line: where, how much, as of which run, how long."""
        r = self.report
        return (f"endpoint {r.endpoint} ({r.target}): {r.rows} rows of {len(r.tables)} objects as of run "
                f"{r.run_id} in {r.seconds:.1f} s")


@dataclass(frozen=True)
class ExportRequest:
    """An export of the backup as of `run`: into files (`out`, by `format`) or an endpoint database."""

    run: str = "last"
    format: str = "csv"
    dialect: str | None = None
    objects: Sequence[str] | None = None
    include_attachments: bool = False
    out: Path | None = None
    endpoint: str | None = None
    force: bool = False  # write into a folder that already holds files (same names are overwritten)
    keep_formulas: bool = False  # CSV for machines: no apostrophe before =, +, -, @ (see sinks.csv)


@dataclass(frozen=True)
class DiffRequest:
    """Change files between two runs into `out`, optionally for some objects only."""

    from_run: str
    out: Path
    to_run: str = "last"
    objects: Sequence[str] | None = None
    force: bool = False
    keep_formulas: bool = False


@dataclass
class _ObjectExport:
    """What a format writer gets for one object: the store's reader and types, and where to write."""

    obj: str
    run_id: int
    reader: pa.RecordBatchReader
    types: list[ColumnType]
    out: Path
    dialect: str | None
    blobs: BlobStore | None
    result: ExportResult
    neutralise: bool = True


@dataclass(frozen=True)
class ExportFormat:
    """A file format by name: how it writes one object (returns the file and its row count)."""

    name: str
    write: Callable[[_ObjectExport], tuple[Path, int]]
    needs_dialect: bool = False


def _ledgered(store: SnapshotStore, kind: str, out: Path, objects: list[str], run_id: int,
              work, *, fmt: str | None = None, dialect: str | None = None,
              from_run: int | None = None, include_attachments: bool = False,
              keep_formulas: bool = False) -> ExportResult:
    """Run `work(result)` between a 'running' and a final ledger row."""
    out.mkdir(parents=True, exist_ok=True)
    with store.exports.recording(kind, fmt=fmt, dialect=dialect, run_id=run_id, from_run=from_run,
                                 objects=objects, destination=str(out.resolve()),
                                 include_attachments=include_attachments,
                                 keep_formulas=keep_formulas) as record:
        result = ExportResult(record.export_id, out, run_id, rows=record.rows)
        work(result)
    return result


def export_format(fmt: str, dialect: str | None) -> ExportFormat:
    """The writer of `fmt`, refused when unknown or when it needs a dialect that is not given."""
    if fmt not in FORMATS:
        raise BadExport(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    form = FORMATS[fmt]
    if form.needs_dialect and dialect not in DIALECTS:
        raise BadExport(f"the {fmt} format needs a SQL dialect (one of {', '.join(DIALECTS)})")
    return form


def _write_sql(job: _ObjectExport) -> tuple[Path, int]:
    """<Object>.sql: DDL and data in the dialect; file bodies inlined when blobs are given."""
    path = job.out / f"{job.obj}.sql"
    cols, batches = attach_blobs(job.reader, job.types, job.blobs)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        return path, write_script(fh, job.obj, job.run_id, cols, batches, job.dialect or "")


def _write_csv(job: _ObjectExport) -> tuple[Path, int]:
    """<Object>.csv; file bodies copied to files/<Object>/ when blobs are given."""
    path = job.out / f"{job.obj}.csv"
    batches = _copying_files(job.reader, job.types, job.obj, job.out, job.blobs, job.result)
    return path, write_csv(path, job.types, batches, job.reader.schema, neutralise=job.neutralise)


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("csv", _write_csv), ExportFormat("sql", _write_sql, needs_dialect=True))}


def export(store: SnapshotStore, out: Path, *, run: int | str = "last", fmt: str = "csv",
           dialect: str | None = None, objects: Sequence[str] | None = None,
           blobs: BlobStore | None = None, neutralise: bool = True) -> ExportResult:
    """Export the objects (default: all) as of `run` into `out`. `blobs` set = include attachments."""
    form = export_format(fmt, dialect)
    run_id = resolve_run(store, run)
    names = store.exports.resolve(store.reads.objects(), objects)

    def work(result: ExportResult) -> None:
        for obj in names:
            types = object_types(store, obj)  # before the reader: it streams from the store's connection
            reader = read_as_of(store, obj, run_id)
            job = _ObjectExport(obj, run_id, reader, types, out, dialect, blobs, result, neutralise)
            path, result.rows[obj] = form.write(job)
            result.files.append(path)

    return _ledgered(store, "export", out, names, run_id, work, fmt=fmt,
                     dialect=dialect if form.needs_dialect else None,
                     include_attachments=blobs is not None, keep_formulas=not neutralise)


def _copying_files(reader: pa.RecordBatchReader, types: list[ColumnType], obj: str, out: Path,
                   blobs: BlobStore | None, result: ExportResult) -> Iterator[pa.RecordBatch]:
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
               objects: Sequence[str] | None = None, neutralise: bool = True) -> ExportResult:
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
                count += write_csv(path, types, table.to_batches(), table.schema, neutralise=neutralise)
                result.files.append(path)
            result.rows[obj] = count

    return _ledgered(store, "diff", out, names, run_b, work, fmt="csv", from_run=run_a,
                     keep_formulas=not neutralise)


# -- endpoints ----------------------------------------------------------------------------------------


def load_endpoint(store: SnapshotStore, endpoint: EndpointSettings, run_id: int, objects: Sequence[str],
                  blobs: BlobStore | None = None) -> EndpointReport:
    """Load `objects` as of `run_id` from the open store into the endpoint (one data transaction).

    File bodies go in as bytes when `blobs` is given, else blob columns hold the sha256 the store keeps.
    """
    tables = []
    for name in objects:
        types = object_types(store, name)

        def batches(name: str = name, types: list[ColumnType] = types) -> Iterable[pa.RecordBatch]:
            return attach_blobs(read_as_of(store, name, run_id), types, blobs)[1]

        # attach_blobs decides the exported types (blob -> sha256 text without `blobs`); no reading yet.
        tables.append(TableSource(name, attach_blobs(iter(()), types, blobs)[0], batches))
    return load(endpoint, run_id, tables)


def export_to_endpoint(config: Config, endpoint_name: str, run: int | str = "last",
                       objects: Sequence[str] | None = None, *, blobs: BlobStore | None = None,
                       store: SnapshotStore | None = None) -> EndpointReport:
    """Resolve run and objects, load, and keep it on the exports ledger (recorded before loading, so a
    failed load that left rows behind is on the ledger too).

    `store`: an already open, writable store (else the config's store is opened and closed here).
    """
    endpoint = config.endpoint(endpoint_name)
    endpoint.password.reveal()  # an unset variable fails before anything else happens
    if store is None:
        with Repository.for_storage(config.storage).open_write("export") as opened:
            return _export_endpoint(opened, endpoint, run, objects, blobs)
    return _export_endpoint(store, endpoint, run, objects, blobs)


def _export_endpoint(store: SnapshotStore, endpoint: EndpointSettings, run: int | str,
                     objects: Sequence[str] | None, blobs: BlobStore | None) -> EndpointReport:
    run_id = resolve_run(store, run)
    names = store.exports.resolve(store.reads.objects(), objects)
    with store.exports.recording("endpoint", fmt=endpoint.kind, dialect=endpoint.kind, run_id=run_id,
                                 from_run=None, objects=names,
                                 destination=f"{endpoint.name} {target(endpoint)}",
                                 include_attachments=blobs is not None) as record:
        report = load_endpoint(store, endpoint, run_id, names, blobs)
        record.rows.update({t.object: t.rows for t in report.tables})
    return report


# -- the jobs -----------------------------------------------------------------------------------------


def run_export(config: Config, request: ExportRequest,
               progress: Progress = Silent()) -> ExportResult | EndpointResult:
    """Export into files or an endpoint, holding the store's writer lock (the ledger is written)."""
    if (request.out is None) == (request.endpoint is None):
        raise BadExport("an export goes into an output folder or into an endpoint: name exactly one")
    repository = Repository.for_storage(config.storage)
    blobs = repository.blobs() if request.include_attachments else None
    objects = list(request.objects) if request.objects else None
    progress.phase("export")
    if request.endpoint is not None:
        with repository.open_write("export") as store:
            return EndpointResult(export_to_endpoint(config, request.endpoint, request.run, objects,
                                                     blobs=blobs, store=store))
    assert request.out is not None
    export_format(request.format, request.dialect)
    check_out(request.out, request.force)
    with repository.open_write("export") as store:
        return export(store, request.out, run=request.run, fmt=request.format, dialect=request.dialect,
                      objects=objects, blobs=blobs, neutralise=not request.keep_formulas)


def run_diff(config: Config, request: DiffRequest, progress: Progress = Silent()) -> ExportResult:
    """Change files between two runs, holding the writer lock (the exports ledger records them)."""
    progress.phase("diff")
    check_out(request.out, request.force)
    with Repository.for_storage(config.storage).open_write("diff") as store:
        return diff_files(store, request.out, request.from_run, request.to_run,
                          objects=list(request.objects) if request.objects else None,
                          neutralise=not request.keep_formulas)


def check_out(out: Path, force: bool) -> None:
    """Refuse, before anything is written, an output folder that is a file, lies under a file, or
    already holds files (an export would overwrite same-named ones without a word) unless `force`."""
    for place in (out, *out.parents):
        if place.exists() and not place.is_dir():
            raise BadExport(f"cannot write into {out}: {place} is a file, not a folder")
        if place.exists():
            break
    if out.is_dir() and any(out.iterdir()) and not force:
        raise BadExport(f"{out} is not empty: choose an empty or new folder, or add --force to "
                        "overwrite files of the same names")
