"""`gdpr requests`: every forget and rectify, in the shape of OwnBackup's GDPR routes.

Why that shape: users who scripted OwnBackup's `POST .../gdpr/forget` and `.../gdpr/rectify`
(record_id, table_name, field, value, comment -> {"id"}) read the same names back here, plus who
asked, when, and how the request ended. The new value of a rectification is never kept (it is
personal data), and a forgotten record's Id is shown only as the start of its keyed hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from replicator.config import Config
from replicator.result import JobResult, jsonable
from replicator.store.gdpr_requests import GdprRequests
from replicator.store.repository import Repository

__all__ = ["RequestsResult", "list_requests"]


def _route_shape(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["request_id"], "type": row["kind"], "table_name": row["object"],
            "record_id": row["record_ref"], "field": row["field"], "comment": row["comment"],
            "user": row["requested_by"], "created_at": row["requested_at"], "finished_at": row["finished_at"],
            "status": row["status"], "versions": row["versions"], "records": row["related"],
            "details": row["details"]}


@dataclass
class RequestsResult(JobResult):
    """Every GDPR request, oldest first."""

    requests: list[dict[str, Any]]

    def to_json(self) -> list[dict[str, Any]]:
        """A JSON list, one object per request (the route shape)."""
        return jsonable(self.requests)

    def columns(self) -> list[str]:
        """Table columns for the terminal."""
        return ["id", "type", "table_name", "record_id", "field", "user", "created_at", "status", "versions"]

    def cells(self) -> list[list[str]]:
        """Table rows for the terminal."""
        return [["" if r[c] is None else str(r[c]) for c in self.columns()] for r in self.requests]


def list_requests(config: Config) -> RequestsResult:
    """The request ledger, read-only."""
    with Repository.for_storage(config.storage).open_read() as store:
        return RequestsResult([_route_shape(r) for r in GdprRequests(store.db).entries()])
