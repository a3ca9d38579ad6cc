"""The exports ledger: every export, change-file download and endpoint load, what, when and where.

Why it is written before any file: a GDPR forget must find every copy that left the store, even the
files of an export that crashed half way. `recording` is the one way to write it (a 'running' row
first, the final status and row count after), and `resolve` the one rule for object names in a
request (case-insensitive, as Salesforce API names are).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from replicator.errors import InvalidInput
from replicator.store.database import Database, now

__all__ = ["ExportRecord", "ExportsLedger", "UnknownObjects"]


class UnknownObjects(InvalidInput, ValueError):
    """A request named objects the store has no history of."""


@dataclass
class ExportRecord:
    """An export being recorded: its ledger id and the rows written so far, per object."""

    export_id: int
    rows: dict[str, int] = field(default_factory=dict)


class ExportsLedger:
    """main.exports of one open store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def resolve(known: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
        """The store's spelling of the wanted objects (all when none are named); UnknownObjects else."""
        if not wanted:
            return list(known)
        by_lower = {o.lower(): o for o in known}
        missing = [o for o in wanted if o.lower() not in by_lower]
        if missing:
            raise UnknownObjects(f"not in the backup: {', '.join(missing)} "
                                 f"(objects: {', '.join(known) or 'none'})")
        return [by_lower[o.lower()] for o in wanted]

    @contextmanager
    def recording(self, kind: str, *, fmt: str | None, dialect: str | None, run_id: int | None,
                  from_run: int | None, objects: list[str], destination: str,
                  include_attachments: bool = False, keep_formulas: bool = False) -> Iterator[ExportRecord]:
        """A 'running' row before the block, 'completed' or 'failed' (with the message) after it.

        The block adds its rows per object to the record as it writes them, so a failed export
        still says how much it wrote. The options are kept so a GDPR rewrite of the files writes
        exactly what the export wrote (bodies inlined, formulas kept or defused).
        """
        self.db.require_writable()
        export_id = self.db.execute("SELECT coalesce(max(export_id), 0) + 1 FROM main.exports").fetchone()[0]
        self.db.execute(
            "INSERT INTO main.exports (export_id, exported_at, kind, format, dialect, run_id, from_run, "
            "objects, destination, status, include_attachments, keep_formulas) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
            [export_id, now(), kind, fmt, dialect, run_id, from_run, objects, destination,
             include_attachments, keep_formulas])
        record = ExportRecord(export_id)
        try:
            yield record
        except BaseException as exc:
            self._finish(record, "failed", str(exc) or type(exc).__name__)
            raise
        self._finish(record, "completed", None)

    def _finish(self, record: ExportRecord, status: str, message: str | None) -> None:
        self.db.execute("UPDATE main.exports SET status = ?, rows = ?, message = ?, finished_at = ? "
                        "WHERE export_id = ?",
                        [status, sum(record.rows.values()), message, now(), record.export_id])

    def entries(self, obj: str | None = None) -> list[dict[str, Any]]:
        """The ledger, oldest first; with `obj`, only exports that contain that object."""
        if not self.db.has_table("exports"):
            return []
        return self.db.rows(
            "SELECT * FROM main.exports WHERE ? IS NULL OR list_contains(objects, ?) ORDER BY export_id",
            [obj, obj])
