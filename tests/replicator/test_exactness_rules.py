"""The rules that decide when a run reads an object whole: a changed schema, a periodic full read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from replicator.backup.exactness import full_due, schema_changes
from replicator.salesforce.catalog import FieldPlan, ObjectPlan

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def plan(*fields: FieldPlan) -> ObjectPlan:
    return ObjectPlan("Account", True, cursor="SystemModstamp", fields=list(fields))


def recorded(ftype: str, length: int = 0, precision: int = 0, scale: int = 0) -> dict:
    return {"type": ftype, "length": length, "precision": precision, "scale": scale}


def test_schema_changes_name_added_and_retyped_fields_only() -> None:
    fields = (FieldPlan("Id", "id", True, length=18), FieldPlan("Is_Partner__c", "boolean", True),
              FieldPlan("Name", "string", True, length=255), FieldPlan("Rev__c", "currency", True,
                                                                     precision=18, scale=2),
              FieldPlan("Formula__c", "string", False, length=10))
    before = {"Id": recorded("id", 18), "Name": recorded("string", 80),
              "Rev__c": recorded("currency", 0, 16, 2), "Gone__c": recorded("string", 5)}
    assert schema_changes(before, plan(*fields)) == [
        "Is_Partner__c added", "Name changed from string(80) to string(255)",
        "Rev__c changed from currency(16,2) to currency(18,2)"]
    assert schema_changes({}, plan(*fields)) == []  # never recorded: the first read is whole anyway
    same = {"Id": recorded("id", 18), "Name": recorded("string", 255)}
    assert schema_changes(same, plan(fields[0], fields[2])) == []


def run(run_id: int, started: datetime, *, full: bool = False, status: str = "completed",
        job: str = "daily") -> dict:
    return {"run_id": run_id, "job": job, "status": status, "full": full, "started_at": started}


def test_a_full_read_is_due_every_n_days_counting_from_the_last_whole_read() -> None:
    days = timedelta(days=1)
    assert not full_due([], "daily", 7, NOW)  # the first run reads everything anyway
    first = run(1, NOW - 8 * days)
    assert full_due([first], "daily", 7, NOW)  # the first run was the last whole read
    assert not full_due([first, run(2, NOW - 3 * days, full=True)], "daily", 7, NOW)
    assert full_due([first, run(2, NOW - 7 * days, full=True)], "daily", 7, NOW)
    assert not full_due([first], "daily", 0, NOW)  # switched off
    assert not full_due([first], "hourly", 7, NOW)  # another job's runs do not count
    failed_full = run(2, NOW - days, full=True, status="failed")
    assert full_due([first, failed_full], "daily", 7, NOW)  # only applied runs count
