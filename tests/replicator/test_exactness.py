"""Backups that equal the org: six runs over every kind of change, compared field by field.

The emulator's ground truth (`/_emulator/dump`, every stored field) is captured right after each run
and compared with the store's `<Object>_as_of(run)` for every field the store keeps; at the end every
earlier run is compared again with the truth of its moment, so time travel never rewrites the past.
Changes: a churned day (updates, inserts, deletes, undeletes), a Bulk hardDelete of Leads with their
feed, a FeedComment edit, a new checkbox with a default value (no SystemModstamp move), a Contact
purged from the recycle bin (Salesforce clears lookups to it without a stamp: found by an
incremental run), a replaced Attachment body of the same length, and a new ContentVersion. Every
run is incremental after the first.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_backup_e2e import backup, config_text, job_store, near_minute_end
from test_backup_e2e import org as restored_org  # noqa: F401  (the `org` fixture: restored afterwards)

from replicator.backup.run import BackupRequest, run_backup
from replicator.config import load_config
from replicator.store.snapshot import SnapshotStore

pytestmark = pytest.mark.usefixtures("restored_org")

OBJECTS = ["Account", "Contact", "Opportunity", "Case", "Lead", "Task", "FeedItem", "FeedComment",
           "Attachment", "ContentVersion"]
MS = "%Y-%m-%dT%H:%M:%S.%f"
BODIES = {"Attachment": "Body", "ContentVersion": "VersionData"}  # the store keeps a sha: checked elsewhere


def normal(value: Any) -> Any:
    """One spelling for both sides: datetimes as UTC ISO with ms, numbers as rounded floats."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(MS)[:-3]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        return round(float(value), 6)
    if isinstance(value, str) and len(value) == 24 and value.endswith("Z") and value[10] == "T":
        return datetime.fromisoformat(value).astimezone(UTC).strftime(MS)[:-3]
    return value


def truth(org: Any, obj: str) -> dict[str, dict[str, Any]]:
    """The org's live records of `obj`, by Id, every stored field."""
    text = org.http.get(f"{org.control_url}/dump/{obj}", params={"format": "jsonl"}, timeout=120).text
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {r["Id"]: r for r in rows if not r.get("_DeletedAt")}


def store_rows(path: Path, obj: str, run_id: int) -> dict[str, dict[str, Any]]:
    store = SnapshotStore(job_store(path), read_only=True)
    try:
        if obj not in store.reads.objects():
            return {}
        table = store.reads.sql(f'SELECT * FROM "{obj}_as_of"({int(run_id)})', None)
    finally:
        store.close()
    return {r["Id"]: r for r in table.to_pylist()}


def sections(path: Path, run_id: int) -> list[dict[str, Any]]:
    store = SnapshotStore(job_store(path), read_only=True)
    try:
        return store.ledger.sections(run_id)
    finally:
        store.close()


def differences(held: dict[str, dict], org: dict[str, dict], obj: str) -> list[str]:
    found = [f"{obj} {i}: only in the store" for i in held.keys() - org.keys()]
    found += [f"{obj} {i}: missing from the store" for i in org.keys() - held.keys()]
    for rid in held.keys() & org.keys():
        for name, value in held[rid].items():
            if name.startswith("_") or name == BODIES.get(obj) or name not in org[rid]:
                continue
            if normal(value) != normal(org[rid][name]):
                found.append(f"{obj} {rid}.{name}: store {value!r}, org {org[rid][name]!r}")
    return found


def test_six_runs_of_every_kind_of_change_equal_the_org_field_by_field(
        emulator: Any, tmp_config: Callable[..., Path]) -> None:
    org = emulator  # restored afterwards by the `restored_org` fixture (pytestmark)
    path = tmp_config(config_text(org, wait=True, selection=f"include = {json.dumps(OBJECTS)}"))
    truths: dict[int, dict[str, dict]] = {}

    def run_and_compare(label: str, **kwargs: Any) -> int:
        result = backup(path, **kwargs)
        assert result.status == "completed", f"{label}: {result.message}"
        now = truths[result.run_id] = {obj: truth(org, obj) for obj in OBJECTS}
        problems = [d for obj in OBJECTS
                    for d in differences(store_rows(path, obj, result.run_id), now[obj], obj)]
        assert not problems, f"{label}: {len(problems)} differences, e.g. {problems[:5]}"
        return result.run_id

    run_and_compare("first backup")

    org.control("POST", "churn", {"days": 1, "rates": {"update": 0.05, "insert": 0.02, "delete": 0.03,
                                                       "undelete": 0.5}})
    run_and_compare("a churned day")

    sf = org.sf()  # a fresh session after each simulated day
    leads = [r["Id"] for r in sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 5")["records"]]
    (hard,) = sf.bulk2.Lead.hard_delete(records=[{"Id": i} for i in leads], wait=0)
    assert hard["numberRecordsFailed"] == 0
    comment = sf.query("SELECT Id FROM FeedComment ORDER BY Id LIMIT 1")["records"][0]["Id"]
    sf.FeedComment.update(comment, {"CommentBody": "edited after the fact"})
    run_and_compare("hard-deleted Leads and an edited FeedComment")

    org.control("POST", "fields", {"object": "Account", "name": "Is_Partner__c", "type": "boolean",
                                   "default": False})
    run_and_compare("a new checkbox with a default value")

    sf = org.sf()
    tasks = sf.query("SELECT Id, WhoId FROM Task WHERE WhoId != null ORDER BY Id LIMIT 200")["records"]
    contact = next(t["WhoId"] for t in tasks if t["WhoId"].startswith("003"))
    sf.Contact.delete(contact)
    run_and_compare("a deleted Contact")
    org.control("POST", "recyclebin/empty", {})
    # Salesforce clears Task.WhoId without a stamp; the purge moves Contact's earliestDateAvailable,
    # so an incremental run compares Contact's ids and re-reads the Tasks that pointed at it
    purged = run_and_compare("the Contact purged")
    assert not any("whole" in (s["message"] or "") for s in sections(path, purged))

    sf = org.sf()
    attachment = sf.query("SELECT Id, BodyLength FROM Attachment WHERE BodyLength > 0 ORDER BY Id LIMIT 1")
    record = attachment["records"][0]
    sf.Attachment.update(record["Id"], {"Body": base64.b64encode(b"x" * record["BodyLength"]).decode()})
    sf.ContentVersion.create({"Title": "new", "PathOnClient": "new.txt",
                              "VersionData": base64.b64encode(b"a new file").decode()})
    org.control("POST", "churn", {"days": 1})
    last = run_and_compare("a replaced body, a new file and another day")

    for run_id, then in truths.items():  # the past is unchanged
        for obj in OBJECTS:
            assert not differences(store_rows(path, obj, run_id), then[obj], obj), (run_id, obj)
    assert last == max(truths)


def test_changes_made_seconds_before_a_run_are_in_it(emulator: Any, tmp_config: Callable[..., Path]) -> None:
    """An edit, a deletion and a hard delete made just before an incremental run, in the minute
    Salesforce's change log does not cover yet, are in that run, without re-reading anything whole."""
    org = emulator
    objects = ["Account", "Lead"]
    path = tmp_config(config_text(org, wait=True, selection=f"include = {json.dumps(objects)}"))
    assert backup(path).status == "completed"
    org.control("POST", "clock", {"advance_seconds": 60})  # a minute after the first run's windows end,
    near_minute_end(org)  # and the run starts in its last seconds: its windows end before the changes
    sf = org.sf()
    account = sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 1")["records"][0]["Id"]
    sf.Account.update(account, {"Name": "edited seconds before the run"})
    deleted, hard_deleted = [r["Id"] for r in sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 2")["records"]]
    sf.Lead.delete(deleted)
    (hard,) = sf.bulk2.Lead.hard_delete(records=[{"Id": hard_deleted}], wait=0)
    assert hard["numberRecordsFailed"] == 0

    result = run_backup(load_config(path), BackupRequest("daily"))  # right away: the clock is not moved
    assert result.status == "completed", result.message
    for obj in objects:
        assert not differences(store_rows(path, obj, result.run_id), truth(org, obj), obj), obj
    sections = {s.object: s for s in result.sections}
    messages = [sections[o].message or "" for o in objects]
    assert all("whole" not in m for m in messages), messages
    assert store_rows(path, "Account", result.run_id)[account]["Name"] == "edited seconds before the run"
    assert not {deleted, hard_deleted} & store_rows(path, "Lead", result.run_id).keys()


def test_feedcomment_is_compared_not_reread_and_its_edits_and_deletions_are_found(
        emulator: Any, tmp_config: Callable[..., Path]) -> None:
    """FeedComment has no SystemModstamp: a quiet run compares its COUNT() and newest CreatedDate and
    LastEditDate with the store's (no whole read), an edit moves LastEditDate, a deletion the count."""
    org = emulator
    path = tmp_config(config_text(org, wait=True, selection='include = ["FeedComment"]'))
    for _ in range(2):  # the first run reads everything; the second learns its windows
        assert backup(path).status == "completed"
    quiet = backup(path)
    (section,) = quiet.sections
    assert section.message == "unchanged since the previous run" and not section.items, section

    sf = org.sf()
    first, second = [r["Id"] for r in sf.query("SELECT Id FROM FeedComment ORDER BY Id LIMIT 2")["records"]]
    sf.FeedComment.update(first, {"CommentBody": "edited"})
    edited = sf.FeedComment.get(first)
    assert edited["LastEditDate"] and edited["LastEditById"]  # the emulator stamps edits like Salesforce
    result = backup(path)
    assert result.status == "completed" and result.sections[0].items, result.sections
    held = store_rows(path, "FeedComment", result.run_id)
    assert held[first]["CommentBody"] == "edited"
    assert not differences(held, truth(org, "FeedComment"), "FeedComment")

    sf.FeedComment.delete(second)
    result = backup(path)
    assert second not in store_rows(path, "FeedComment", result.run_id)
    assert not differences(store_rows(path, "FeedComment", result.run_id), truth(org, "FeedComment"),
                           "FeedComment")


def test_deletions_the_org_no_longer_lists_are_found_by_comparing_ids(
        emulator: Any, tmp_config: Callable[..., Path]) -> None:
    """A record deleted after a run and purged with its deletion-log entry (16 days later) is found
    by comparing ids only, and the run's section says why; nothing is read whole. Records the purge
    took from the bin are found the same way, and the lookups Salesforce emptied to them re-read."""
    org = emulator
    path = tmp_config(config_text(org, wait=True, selection='include = ["Account", "Contact"]'))
    for _ in range(2):
        assert backup(path).status == "completed"
    contact = org.sf().query("SELECT Id FROM Contact ORDER BY Id LIMIT 1")["records"][0]["Id"]
    org.sf().Contact.delete(contact)
    before = org.control("GET", "clock")["now"]
    try:
        org.control("POST", "clock", {"advance_seconds": 16 * 86400})
        org.control("POST", "recyclebin/empty", {})  # the bin and the log's entries older than 15 days
        result = backup(path)
        assert result.status == "completed", result.message
        section = next(s for s in result.sections if s.object == "Contact")
        assert "ids compared with the org, 1 deleted" in section.message, section.message
        assert all("whole" not in (s.message or "") for s in result.sections)
        held = store_rows(path, "Contact", result.run_id)
        assert contact not in held
        for obj in ("Account", "Contact"):
            assert not differences(store_rows(path, obj, result.run_id), truth(org, obj), obj)
    finally:
        org.control("POST", "clock", {"now": before})
