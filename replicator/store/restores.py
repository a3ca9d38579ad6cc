"""The restores ledger: every restore, replicate and retry, and every record's outcome in it.

Why in the store: `restore retry N` must know exactly which records failed and why (Salesforce's
statusCode and message), and an auditor must find which backed-up record became which Id in which
org. The tables are created on first write, so stores from before restores existed stay readable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa

from replicator.errors import NotFound
from replicator.store.database import Database, now

__all__ = ["RestoresLedger", "UnknownRestore"]

_DDL = (
    """CREATE TABLE IF NOT EXISTS main.restores (restore_id INTEGER NOT NULL, kind VARCHAR NOT NULL,
        target VARCHAR NOT NULL, run_id INTEGER, retry_of INTEGER, started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ, status VARCHAR NOT NULL, predicted_calls BIGINT, api_calls BIGINT,
        counts JSON, message VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS main.restore_records (restore_id INTEGER NOT NULL, sobject VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL, target_id VARCHAR, action VARCHAR NOT NULL, status VARCHAR NOT NULL,
        error_code VARCHAR, error_message VARCHAR)""",
)
_OUTCOME = pa.schema([("restore_id", pa.int32()), ("sobject", pa.string()), ("source_id", pa.string()),
                      ("target_id", pa.string()), ("action", pa.string()), ("status", pa.string()),
                      ("error_code", pa.string()), ("error_message", pa.string())])


class Outcome(Protocol):
    """One record's fate as the loader reports it (sinks.salesforce.model.Outcome)."""

    sobject: str
    source_id: str
    target_id: str | None
    action: str
    status: str
    error_code: str | None
    error_message: str | None


class UnknownRestore(NotFound, ValueError):
    """A restore number the ledger does not have."""


class RestoresLedger:
    """main.restores and main.restore_records of one store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(self, kind: str, target: str, run_id: int | None, predicted_calls: int,
              retry_of: int | None = None) -> int:
        """A 'running' entry, written before the first record is sent; its number."""
        self.db.require_writable()
        for ddl in _DDL:
            self.db.execute(ddl)
        restore_id = self.db.execute(
            "SELECT coalesce(max(restore_id), 0) + 1 FROM main.restores").fetchone()[0]
        self.db.execute("INSERT INTO main.restores (restore_id, kind, target, run_id, retry_of, started_at, "
                        "status, predicted_calls) VALUES (?, ?, ?, ?, ?, ?, 'running', ?)",
                        [restore_id, kind, target, run_id, retry_of, now(), predicted_calls])
        return int(restore_id)

    def record(self, restore_id: int, outcomes: Sequence[Outcome]) -> None:
        """Keep a chunk's outcomes (one row per record and action)."""
        if not outcomes:
            return
        table = pa.table({
            "restore_id": [restore_id] * len(outcomes), "sobject": [o.sobject for o in outcomes],
            "source_id": [o.source_id for o in outcomes], "target_id": [o.target_id for o in outcomes],
            "action": [o.action for o in outcomes], "status": [o.status for o in outcomes],
            "error_code": [o.error_code for o in outcomes],
            "error_message": [o.error_message for o in outcomes],
        }, schema=_OUTCOME)
        self.db.con.register("_restore_outcomes", table)
        try:
            self.db.execute("INSERT INTO main.restore_records SELECT * FROM _restore_outcomes")
        finally:
            self.db.con.unregister("_restore_outcomes")

    def finish(self, restore_id: int, status: str, api_calls: int, counts: dict[str, dict[str, int]],
               message: str | None = None) -> None:
        """Close the entry with its status, the calls spent and the counts per object."""
        self.db.execute("UPDATE main.restores SET status = ?, finished_at = ?, api_calls = ?, counts = ?, "
                        "message = ? WHERE restore_id = ?",
                        [status, now(), api_calls, json.dumps(counts), message, restore_id])

    def entries(self) -> list[dict[str, Any]]:
        """Every restore, oldest first."""
        if not self.db.has_table("restores"):
            return []
        return [_decoded(r) for r in self.db.rows("SELECT * FROM main.restores ORDER BY restore_id")]

    def entry(self, restore_id: int) -> dict[str, Any]:
        """One restore; UnknownRestore if there is none."""
        found = self.db.rows("SELECT * FROM main.restores WHERE restore_id = ?", [restore_id]) \
            if self.db.has_table("restores") else []
        if not found:
            raise UnknownRestore(f"restore {restore_id} does not exist")
        return _decoded(found[0])

    def outcomes(self, restore_id: int, *, failed_only: bool = False) -> list[dict[str, Any]]:
        """The records of one restore (only the failed ones if asked), in the order they were sent."""
        self.entry(restore_id)
        extra = " AND status = 'failed'" if failed_only else ""
        return self.db.rows("SELECT sobject, source_id, target_id, action, status, error_code, error_message "
                            f"FROM main.restore_records WHERE restore_id = ?{extra}", [restore_id])


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("counts"), str):
        row["counts"] = json.loads(row["counts"])
    return row
