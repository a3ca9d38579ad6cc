"""Emptying objects of a target org before a load (a seed's `clean_and_insert`).

Why children first: deleting a parent cascades to its master-detail children and would make their
own deletes fail as already deleted; deleting children first makes every outcome the record's own.
An object's Ids (2,000 per query page) are all read before the first delete, so deleting never
moves a query cursor under its feet; then 200 go per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from replicator.salesforce import soql
from replicator.salesforce.client import (
    COLLECTION_RECORDS,
    AuthenticationError,
    BudgetExceeded,
    OrgClient,
    OrgError,
)
from replicator.sinks.salesforce.model import Outcome

__all__ = ["CleanResult", "clean", "delete_calls"]

QUERY_PAGE = 2000


@dataclass(frozen=True)
class CleanResult:
    """Deleted and failed records per object, and the calls spent."""

    deleted: dict[str, int]
    failed: dict[str, int]
    api_calls: int


def delete_calls(count: int) -> int:
    """Calls to empty an object of `count` records: its Id query pages plus one delete per 200."""
    return max(1, -(-count // QUERY_PAGE)) + -(-count // COLLECTION_RECORDS)


def clean(client: OrgClient, sobjects: Sequence[str],
          record: Callable[[Sequence[Outcome]], None]) -> CleanResult:
    """Delete every record of `sobjects` (give them children first); each outcome goes to `record`."""
    start = client.ledger.calls
    deleted: dict[str, int] = {}
    failed: dict[str, int] = {}
    for sobject in sobjects:
        ids = [r["Id"] for page in client.query_pages(f"SELECT Id FROM {soql.name(sobject)}") for r in page]
        ok = bad = 0
        for at in range(0, len(ids), COLLECTION_RECORDS):
            part = ids[at:at + COLLECTION_RECORDS]
            try:
                answers = client.delete_records(part)
            except (AuthenticationError, BudgetExceeded):
                raise
            except OrgError as exc:
                answers = [{"success": False, "errors": [{"statusCode": exc.code or "CALL_FAILED",
                                                          "message": str(exc)}]}] * len(part)
            outcomes = []
            for target, answer in zip(part, answers, strict=True):
                if answer.get("success"):
                    ok += 1
                    outcomes.append(Outcome(sobject, target, target, "delete", "ok"))
                else:
                    bad += 1
                    error = (answer.get("errors") or [{}])[0]
                    outcomes.append(Outcome(sobject, target, target, "delete", "failed",
                                            error.get("statusCode"), error.get("message")))
            record(outcomes)
        deleted[sobject], failed[sobject] = ok, bad
    return CleanResult(deleted, failed, client.ledger.calls - start)
