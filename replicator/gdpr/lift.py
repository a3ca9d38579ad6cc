"""Lifting a forget request: its subjects may be backed up again.

Why it exists: a forget can be made in error, or the legal ground can end (a hold). Lifting only
drops the request's keyed hashes from the store, so backups, restores and seeds treat those records
like any other again; nothing erased comes back by itself, the next full backup reads them from the
org. The lift is a request of its own in the ledger, and the forget request shows 'lifted'.
"""

from __future__ import annotations

from dataclasses import dataclass

from replicator.config import Config
from replicator.errors import InvalidInput, NotFound
from replicator.gdpr.erase import resume
from replicator.result import JobResult
from replicator.store.database import now
from replicator.store.forgotten import lift
from replicator.store.gdpr_requests import GdprRequest, GdprRequests, requester
from replicator.store.repository import Repository
from replicator.store.snapshot import SnapshotStore

__all__ = ["LiftRequest", "LiftResult", "run_lift"]


class UnknownRequest(NotFound):
    """No GDPR request has that id."""


class NotLiftable(InvalidInput, ValueError):
    """The request is not a forget that is still in force."""


@dataclass(frozen=True)
class LiftRequest:
    """Lift forget request `request_id`."""

    request_id: int
    comment: str | None = None


@dataclass
class LiftResult(JobResult):
    """The lift's own request id, the forget it lifted, and how many records it concerned."""

    request_id: int
    lifted: int
    object: str
    record_ref: str
    records: int

    def text(self) -> str:
        """One line, saying what brings the records back."""
        return (f"request {self.request_id}: lifted forget request {self.lifted} ({self.object} "
                f"{self.record_ref}, {self.records} records): the next full backup reads them again")


def _forget_request(store: SnapshotStore, request_id: int) -> dict:
    found = GdprRequests(store.db).get(request_id)
    if found is None:
        raise UnknownRequest(f"there is no GDPR request {request_id} (see gdpr requests)")
    if found["kind"] != "forget" or found["status"] == "lifted":
        raise NotLiftable(f"request {request_id} is not a forget request in force "
                          f"(it is a {found['kind']} request, {found['status']})")
    return found


def run_lift(config: Config, request: LiftRequest) -> LiftResult:
    """Drop the forget request's keyed hashes and record the lift (one transaction)."""
    resume(config)
    repository = Repository.for_storage(config.storage)
    with repository.open_read() as store:  # bad input changes nothing on disk
        _forget_request(store, request.request_id)
    with repository.open_write("gdpr lift") as store:
        forget = _forget_request(store, request.request_id)
        entry = GdprRequest("lift", forget["object"], forget["record_ref"], None, request.comment,
                            requester(), now())
        with store.db.transaction():
            records = lift(store.db, request.request_id)
            request_id = GdprRequests(store.db).lift(forget, entry, records)
        store.db.execute("CHECKPOINT")
        return LiftResult(request_id, request.request_id, forget["object"], forget["record_ref"], records)
