"""The delete log behind /sobjects/X/deleted, and lookups cleared by a purge, through simple-salesforce.

Salesforce lists every deletion for 15 days whatever happens to the record afterwards (hard delete,
emptied recycle bin, removal with its parent); an undeleted record is no longer listed. A purge
clears lookups that pointed at the purged record without moving the referencing record's stamps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from simple_salesforce import Salesforce


@pytest.fixture(scope="module")
def sf(emulator: Any) -> Iterator[Salesforce]:
    yield emulator.sf()
    emulator.control("POST", "reset", {})  # the org as it was started, for the other modules


def now_of(emulator: Any) -> datetime:
    return datetime.fromisoformat(emulator.control("GET", "clock")["now"])


def deleted(sf: Salesforce, emulator: Any, obj: str) -> tuple[dict[str, str], dict[str, Any]]:
    """{id: deletedDate} over the last 14 days, and the whole answer (the clock moves a minute on
    first, since an answer covers whole minutes only)."""
    emulator.control("POST", "clock", {"advance_seconds": 61})
    now = now_of(emulator)
    result = getattr(sf, obj).deleted(now - timedelta(days=14), now + timedelta(minutes=2))
    return {r["id"]: r["deletedDate"] for r in result["deletedRecords"]}, result


def stamp(sf: Salesforce, obj: str, record_id: str) -> str:
    return getattr(sf, obj).get(record_id)["SystemModstamp"]


def assert_purged_between(answer: dict[str, Any], before: datetime, after: datetime) -> None:
    """earliestDateAvailable is the last physical deletion of the type, to the minute: the purge
    happened between two readings of the emulator clock (bounds, since the clock runs on)."""
    earliest = datetime.strptime(answer["earliestDateAvailable"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert before.replace(second=0, microsecond=0) <= earliest <= after


def assert_cleared_quietly(sf: Salesforce, obj: str, record_id: str, lookup: str, before: str) -> None:
    """The lookup to the purged record is null, and the referencing record's SystemModstamp did not move."""
    after = getattr(sf, obj).get(record_id)
    assert after[lookup] is None and after["SystemModstamp"] == before


def test_hard_deleted_records_and_their_cascaded_children_stay_listed(sf: Salesforce, emulator: Any) -> None:
    lead = sf.Lead.create({"LastName": "Gone", "Company": "Hard Delete Co"})["id"]
    note = sf.Note.create({"ParentId": lead, "Title": "goes with its lead"})["id"]
    task = sf.Task.create({"Subject": "Call", "WhoId": lead})["id"]
    task_stamp = stamp(sf, "Task", task)
    before_purge = now_of(emulator)
    (result,) = sf.bulk2.Lead.hard_delete(records=[{"Id": lead}], wait=0)
    after_purge = now_of(emulator)
    assert result["numberRecordsFailed"] == 0
    assert sf.query_all(f"SELECT Id FROM Lead WHERE Id = '{lead}'", include_deleted=True)["totalSize"] == 0
    leads, answer = deleted(sf, emulator, "Lead")
    notes, _ = deleted(sf, emulator, "Note")
    assert lead in leads and note in notes
    assert leads[lead] == notes[note]  # the child is deleted with, and when, its parent is
    assert_purged_between(answer, before_purge, after_purge)  # a Lead was physically deleted
    assert_cleared_quietly(sf, "Task", task, "WhoId", task_stamp)


def test_records_purged_from_the_recycle_bin_stay_listed(sf: Salesforce, emulator: Any) -> None:
    contact = sf.Contact.create({"LastName": "Binned"})["id"]
    boss = sf.Contact.create({"LastName": "Boss"})["id"]
    report = sf.Contact.create({"LastName": "Report", "ReportsToId": boss})["id"]
    report_stamp = stamp(sf, "Contact", report)
    for record in (contact, boss):
        assert sf.Contact.delete(record) == 204
    before, _ = deleted(sf, emulator, "Contact")
    assert {contact, boss} <= set(before)
    assert sf.Contact.get(report)["ReportsToId"] == boss  # the bin keeps the lookup
    before_purge = now_of(emulator)
    purged = emulator.control("POST", "recyclebin/empty", {})["purged"]
    after_purge = now_of(emulator)
    assert purged >= 2
    assert sf.query_all(f"SELECT Id FROM Contact WHERE Id IN ('{contact}', '{boss}')",
                        include_deleted=True)["totalSize"] == 0
    after, answer = deleted(sf, emulator, "Contact")
    assert after[contact] == before[contact] and after[boss] == before[boss]
    assert_purged_between(answer, before_purge, after_purge)
    assert_cleared_quietly(sf, "Contact", report, "ReportsToId", report_stamp)


def test_an_undeleted_record_is_no_longer_listed(sf: Salesforce, emulator: Any) -> None:
    account = sf.Account.create({"Name": "Back Again"})["id"]
    assert sf.Account.delete(account) == 204
    listed, _ = deleted(sf, emulator, "Account")
    assert account in listed
    emulator.control("POST", "churn", {"days": 1, "rates": {
        "update": 0, "insert": 0, "delete": 0, "undelete": 1.0, "objects": ["Account"]}})
    sf = emulator.sf()  # a simulated day later: the session has expired
    assert sf.Account.get(account)["IsDeleted"] is False
    listed, _ = deleted(sf, emulator, "Account")
    assert account not in listed


def test_start_older_than_the_log_is_refused(emulator: Any) -> None:
    sf, now = emulator.sf(), now_of(emulator)
    response = sf.session.get(
        f"{sf.base_url}sobjects/Account/deleted/",
        params={"start": (now - timedelta(days=16)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                "end": now.strftime("%Y-%m-%dT%H:%M:%S+00:00")},
        headers=sf.headers, timeout=60)
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
