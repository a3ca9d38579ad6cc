"""The GDPR request ledger: every forget and rectify, who asked, when, what, and how it ended.

Why in the store: a request is recorded in the same rewritten file that carries out the erasure
(store.rewrite `finish`), so the store either shows the request done or shows neither. The ledger
holds no personal data: a forgotten record appears only as the start of its keyed hash
(store.forgotten), a rectification names the field but never keeps the new value.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from replicator.store.database import Database, now
from replicator.store.schema import quote

__all__ = ["GdprRequest", "GdprRequests", "requester"]

TABLE = "gdpr_requests"
DDL = (f"CREATE TABLE IF NOT EXISTS {{db}}.main.{TABLE} (request_id INTEGER NOT NULL, kind VARCHAR NOT NULL, "
       "object VARCHAR NOT NULL, record_ref VARCHAR NOT NULL, field VARCHAR, comment VARCHAR, "
       "requested_by VARCHAR, requested_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ, "
       "status VARCHAR NOT NULL, versions BIGINT, related BIGINT, details JSON)")


@dataclass(frozen=True)
class GdprRequest:
    """A request as it is written into the rewritten store."""

    kind: str  # forget | rectify
    object: str
    record_ref: str
    field: str | None
    comment: str | None
    requested_by: str
    requested_at: datetime


def requester() -> str:
    """Who makes a request: the login of the person at the terminal (the service will name its user)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class GdprRequests:
    """main.gdpr_requests of one open store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def next_id(self) -> int:
        """The id the next request gets."""
        if not self.db.has_table(TABLE):
            return 1
        return self.db.execute(f"SELECT coalesce(max(request_id), 0) + 1 FROM main.{TABLE}").fetchone()[0]

    @staticmethod
    def write(con: duckdb.DuckDBPyConnection, database: str, request_id: int, request: GdprRequest,
              versions: int, related: int) -> None:
        """Record the request as 'erased' in `database` (the fresh file, inside the rewrite)."""
        con.execute(DDL.format(db=quote(database)))
        con.execute(
            f"INSERT INTO {quote(database)}.main.{TABLE} (request_id, kind, object, record_ref, field, "
            "comment, requested_by, requested_at, status, versions, related) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'erased', ?, ?)",
            [request_id, request.kind, request.object, request.record_ref, request.field, request.comment,
             request.requested_by, request.requested_at, versions, related])

    def get(self, request_id: int) -> dict[str, Any] | None:
        """One request, or None."""
        found = [r for r in self.entries() if r["request_id"] == request_id]
        return found[0] if found else None

    def lift(self, forget: dict[str, Any], request: GdprRequest, subjects: int) -> int:
        """Record the lifting of a forget request (inside the caller's transaction); the new request's id."""
        request_id = self.next_id()
        database = self.db.execute("SELECT current_database()").fetchone()[0]
        self.write(self.db.con, database, request_id, request, 0, subjects)
        lifted = forget["request_id"]
        self.db.execute(f"UPDATE main.{TABLE} SET status = 'completed', finished_at = ?, details = ? "
                        "WHERE request_id = ?", [now(), json.dumps({"lifts": lifted}), request_id])
        self.db.execute(f"UPDATE main.{TABLE} SET status = 'lifted' WHERE request_id = ?", [lifted])
        return request_id

    def finish(self, request_id: int, status: str, details: dict[str, Any]) -> None:
        """The outcome once exports and files were handled too ('completed', or 'incomplete' when
        some copies are outside our reach)."""
        self.db.execute(f"UPDATE main.{TABLE} SET status = ?, finished_at = ?, details = ? "
                        "WHERE request_id = ?",
                        [status, now(), json.dumps(details), request_id])
        self.db.execute("CHECKPOINT")

    def entries(self) -> list[dict[str, Any]]:
        """Every request, oldest first (empty for a store that never had one)."""
        if not self.db.has_table(TABLE):
            return []
        found = self.db.rows(f"SELECT * FROM main.{TABLE} ORDER BY request_id")
        for row in found:
            row["details"] = json.loads(row["details"]) if row["details"] else {}
        return found
