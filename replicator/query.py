"""Read-only jobs over the snapshot store: the runs ledger, one run, analyst SQL, one record's history,
and the exports ledger.

None of them takes the writer lock, so they answer while a backup runs. Results hold plain rows
(JSON values as `--json` has always shown them: anything not a JSON scalar becomes its `str`); the
CLI draws them as tables, the service returns them as they are.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from replicator.config import Config
from replicator.errors import InvalidInput, NotFound
from replicator.history import Version, record_history
from replicator.progress import Progress, Silent
from replicator.result import JobResult
from replicator.store.repository import Repository

__all__ = ["ExportsRequest", "ExportsResult", "HistoryRequest", "HistoryResult", "LedgerResult",
           "RunDetail", "RunRequest", "RunsRequest", "RunsResult", "SqlRequest", "SqlResult",
           "exports_ledger", "history", "plain", "run_show", "runs", "sql"]


def plain(value: Any) -> Any:
    """JSON values from ledger rows and query results: containers kept, other non-scalars as `str`."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _text_rows(columns: list[str], rows: list[list[Any]]) -> str:
    """Rows as tab-separated text with a header: the terminal-free rendering of a table result."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue().rstrip("\n")


@dataclass
class LedgerResult(JobResult):
    """Ledger rows (runs or exports) and the columns a person reads them by."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        """The rows as the ledger holds them."""
        return self.rows

    def columns(self) -> list[str]:
        """The table's headings."""
        raise NotImplementedError

    def cells(self) -> list[list[str]]:
        """One list of strings per row, in `columns()` order."""
        raise NotImplementedError

    def text(self) -> str:
        """The table as tab-separated text."""
        return _text_rows(self.columns(), self.cells())


# --- runs --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunsRequest:
    """Every run of the store (no filters yet)."""


class RunsResult(LedgerResult):
    """The runs ledger, newest first."""

    def columns(self) -> list[str]:
        """Run, job, kind, start, status and message."""
        return ["Run", "Job", "Kind", "Started", "Status", "Message"]

    def cells(self) -> list[list[str]]:
        """One row per run."""
        return [[str(r["run_id"]), str(r.get("job")), str(r.get("kind")), str(r.get("started_at")),
                 str(r["status"]), str(r.get("message") or "")] for r in self.rows]


def runs(config: Config, request: RunsRequest, progress: Progress = Silent()) -> RunsResult:
    """Every backup run, newest first; NotFound (no backups yet) before the first one."""
    with Repository.for_storage(config.storage).open_read() as store:
        rows = [plain(r) for r in store.ledger.runs()]
    rows.sort(key=lambda r: r["run_id"], reverse=True)
    return RunsResult(rows)


@dataclass(frozen=True)
class RunRequest:
    """One run by its number."""

    run_id: int


SECTION_COLUMNS = {"Object": "object", "Status": "status", "Items": "items", "Ins": "inserted",
                   "Upd": "updated", "Del": "deleted", "API": "api_calls", "Method": "method",
                   "Org": "org_count", "Store": "store_count", "Message": "message"}


@dataclass
class RunDetail(JobResult):
    """One run's ledger row and, per object, what was backed up and what failed."""

    run: dict[str, Any]
    sections: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The run and its sections as the ledger holds them."""
        return {"run": self.run, "sections": self.sections}

    def headline(self) -> str:
        """Run, job, status and message in one line."""
        return f"run {self.run['run_id']} ({self.run.get('job')}): {self.run['status']} " \
               f"{self.run.get('message') or ''}"

    def cells(self) -> list[list[str]]:
        """One row per object, in SECTION_COLUMNS order (empty for unknown values)."""
        return [[str(s.get(k) if s.get(k) is not None else "") for k in SECTION_COLUMNS.values()]
                for s in self.sections]

    def text(self) -> str:
        """The headline, then the sections as tab-separated text."""
        return f"{self.headline()}\n{_text_rows(list(SECTION_COLUMNS), self.cells())}"


def run_show(config: Config, request: RunRequest, progress: Progress = Silent()) -> RunDetail:
    """One run and its sections; NotFound for a run the store does not have."""
    with Repository.for_storage(config.storage).open_read() as store:
        run = store.ledger.run(request.run_id)
        if run is None:
            raise NotFound(f"no run {request.run_id}")
        return RunDetail(plain(run), [plain(s) for s in store.ledger.sections(request.run_id)])


# --- sql ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlRequest:
    """One analyst SELECT; `as_of` (a run number or an ISO timestamp) makes object views show that
    moment's state."""

    query: str
    as_of: str | None = None

    def moment(self) -> int | datetime | None:
        """`as_of` as a run number or a timestamp; InvalidInput when it is neither."""
        if self.as_of is None:
            return None
        try:
            return int(self.as_of) if self.as_of.isdigit() else datetime.fromisoformat(self.as_of)
        except ValueError:
            raise InvalidInput(f"as of {self.as_of!r}: give a run number or an ISO timestamp",
                               key="as_of") from None


@dataclass
class SqlResult(JobResult):
    """The query's rows as an Arrow table (the CLI also writes it as CSV)."""

    table: pa.Table

    def to_json(self) -> list[dict[str, Any]]:
        """One object per row."""
        return plain(self.table.to_pylist())

    def cells(self) -> list[list[str]]:
        """One list of strings per row, None as empty."""
        return [["" if v is None else str(v) for v in row.values()] for row in self.table.to_pylist()]

    def text(self) -> str:
        """The rows as tab-separated text."""
        return _text_rows(self.table.column_names, self.cells())


def sql(config: Config, request: SqlRequest, progress: Progress = Silent()) -> SqlResult:
    """Run the query read-only over the store's tables only; DuckDB's message (not a traceback) when
    it fails, e.g. a query that tries to read a file."""
    moment = request.moment()
    with Repository.for_storage(config.storage).open_query() as store:
        try:
            return SqlResult(store.reads.sql(request.query, moment))
        except (duckdb.Error, ValueError) as exc:  # the analyst's SQL, or a run that does not exist
            raise InvalidInput(str(exc).strip().splitlines()[0]) from None  # one line, no hints


# --- history -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRequest:
    """One record of one object."""

    object: str
    record_id: str


@dataclass
class HistoryResult(JobResult):
    """Every backed-up version of the record, oldest first."""

    versions: list[Version] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        """Per version: run, validity, tombstone, changed fields and values."""
        return [plain({"run_id": v.run_id, "valid_from": v.valid_from, "valid_to": v.valid_to,
                       "deleted": v.deleted, "changed": v.changed, "values": v.values})
                for v in self.versions]

    def text(self) -> str:
        """Per version a line, then the fields it changed."""
        lines = []
        for v in self.versions:
            state = "deleted" if v.deleted else "version"
            lines.append(f"run {v.run_id}: {state} valid {v.valid_from} .. {v.valid_to or 'now'}")
            lines += [f"    {name}: {v.values.get(name)!r}" for name in v.changed]
        return "\n".join(lines)


def history(config: Config, request: HistoryRequest, progress: Progress = Silent()) -> HistoryResult:
    """The record's versions; NotFound for an object not in the backup or a record without versions."""
    with Repository.for_storage(config.storage).open_read() as store:
        objects = store.reads.objects()
        if request.object not in objects:
            raise NotFound(f"{request.object} is not in the backup (objects: {', '.join(objects)})")
        versions = record_history(store, request.object, request.record_id)
    if not versions:
        raise NotFound(f"no versions of {request.object} {request.record_id} in the backup")
    return HistoryResult(versions)


# --- exports ledger ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportsRequest:
    """Only exports that contain this object (None: all)."""

    object: str | None = None


class ExportsResult(LedgerResult):
    """The exports ledger: every export and change-file download, what, when and where."""

    def columns(self) -> list[str]:
        """What a person checks an export by."""
        return ["Id", "At", "Kind", "Format", "Run", "Objects", "Rows", "Status", "Destination"]

    def cells(self) -> list[list[str]]:
        """One row per export; format with its dialect, diffs as a run range."""
        out = []
        for r in self.rows:
            fmt = r["format"] + (f"/{r['dialect']}" if r.get("dialect") else "")
            run = f"{r['from_run']}..{r['run_id']}" if r.get("from_run") else str(r["run_id"])
            out.append([str(r["export_id"]), str(r["exported_at"]), r["kind"], fmt, run,
                        ", ".join(r.get("objects") or []), str(r.get("rows") or 0), r["status"],
                        r["destination"]])
        return out


def exports_ledger(config: Config, request: ExportsRequest, progress: Progress = Silent()) -> ExportsResult:
    """The exports ledger, optionally only entries holding one object."""
    with Repository.for_storage(config.storage).open_read() as store:
        return ExportsResult([plain(r) for r in store.exports.entries(request.object)])
