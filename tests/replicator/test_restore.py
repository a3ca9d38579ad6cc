"""Restore against the running emulator over HTTPS: from a backup in the store back into the org.

Each test backs up a small job, damages the org (deletes, purges, edits), restores, and reads the org
back: Ids kept while the recycle bin holds the records, new Ids with every reference remapped after a
purge, only changed fields sent, and the plan's predicted calls equal to the calls the emulator counted
for the load (the planning reads are reported apart).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_backup_e2e import PASSWORD_ENV, SECRET_ENV, backup, config_text

from replicator.config import load_config
from replicator.restore.job import RestoreRequest, plan_restore, retry_restore, run_restore
from replicator.restore.switch import Automations

OBJECTS = ["Account", "Contact", "Opportunity", "OpportunityLineItem", "Case", "Task", "Attachment"]


@pytest.fixture
def org(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv(PASSWORD_ENV, emulator.password)
    monkeypatch.setenv(SECRET_ENV, emulator.client_secret)
    yield emulator
    emulator.control("PUT", "faults", {})
    emulator.control("POST", "reset", {})


@pytest.fixture
def config_path(org: Any, tmp_config: Callable[..., Path]) -> Path:
    """The job's config; nothing backed up yet."""
    return tmp_config(config_text(org, selection=f"include = {json.dumps(OBJECTS)}"))


@pytest.fixture
def config(config_path: Path) -> Any:
    """The job's config after one backup."""
    backup(config_path)
    return load_config(config_path)


def counted(org: Any) -> Callable[[], int]:
    """Calls the emulator counts from now on."""
    since = org.control("GET", "ledger")["last_seq"]
    return lambda: org.control("GET", f"ledger?since={since}")["summary"]["counted"]


def restore(org: Any, config: Any, **selectors: Any) -> Any:
    """Run a restore; the load spent exactly the predicted calls (the rest were planning reads)."""
    calls = counted(org)
    result = run_restore(config, RestoreRequest(**selectors))
    assert result.api_calls == result.predicted_calls
    assert calls() == result.read_calls + result.api_calls
    return result


def in_list(ids: list[str]) -> str:
    return "('" + "','".join(ids) + "')"


def ids(sf: Any, soql: str) -> list[str]:
    return [r["Id"] for r in sf.query_all(soql)["records"]]


def remove(sf: Any, account: str, kids: dict[str, list[str]]) -> None:
    """Delete an Account's Cases, Opportunities (line items go with them) and Contacts, then it."""
    for obj in ("Case", "Opportunity", "Contact"):
        for i in kids[obj]:
            getattr(sf, obj).delete(i)
    sf.Account.delete(account)


def family(sf: Any) -> tuple[str, dict[str, list[str]]]:
    """An Account with Contacts, Opportunities (with line items) and Cases, and their Ids."""
    return families(sf)[0]


def families(sf: Any) -> list[tuple[str, dict[str, list[str]]]]:
    """Accounts with children (first those the validation rule accepts, then one it refuses)."""
    rows = sf.query("SELECT Id, Credit_Limit__c, Type, Discount_Rate__c FROM Account WHERE Id IN "
                    "(SELECT AccountId FROM Opportunity WHERE HasOpportunityLineItem = true) AND Id IN "
                    "(SELECT AccountId FROM Case) AND Id IN (SELECT AccountId FROM Contact) LIMIT 50"
                    )["records"]
    good = [r["Id"] for r in rows if (r["Credit_Limit__c"] or 0) >= 0
            and not (r["Type"] == "Customer - Direct" and (r["Discount_Rate__c"] or 0) > 50)]
    bad = [r["Id"] for r in rows if r["Id"] not in good]
    return [(account, children(sf, account)) for account in (good[0], bad[0])]


def children(sf: Any, account: str) -> dict[str, list[str]]:
    """The Ids of an Account's Contacts, Opportunities, their line items and Cases."""
    kids = {obj: ids(sf, f"SELECT Id FROM {obj} WHERE AccountId = '{account}'")
            for obj in ("Contact", "Opportunity", "Case")}
    kids["OpportunityLineItem"] = ids(
        sf, f"SELECT Id FROM OpportunityLineItem WHERE OpportunityId IN {in_list(kids['Opportunity'])}")
    return kids


def test_a_deleted_account_comes_back_from_the_bin_with_its_ids(org, config) -> None:
    sf = org.sf()
    account, kids = family(sf)
    before = sf.Account.get(account)
    remove(sf, account, kids)
    plan = plan_restore(config, RestoreRequest(object="Account", ids=(account,), with_related="children"))
    assert plan.objects["Account"]["undelete"] == 1
    assert plan.objects["Opportunity"]["undelete"] == len(kids["Opportunity"]), plan.objects
    assert plan.objects["OpportunityLineItem"]["with_parent"] == len(kids["OpportunityLineItem"])
    assert plan.records["Contact"] and set(kids["Contact"]) <= set(plan.records["Contact"])
    result = restore(org, config, object="Account", ids=(account,), with_related="children")
    assert result.counts["Account"]["undeleted"] == 1 and not result.failures
    after = sf.Account.get(account)
    assert (after["Id"], after["Name"], after["Phone"]) == (account, before["Name"], before["Phone"])
    for obj, old in kids.items():
        assert sorted(ids(sf, f"SELECT Id FROM {obj} WHERE Id IN {in_list(old)}")) == sorted(old), obj


def test_a_purged_account_is_inserted_with_new_ids_and_children_remapped(org, config) -> None:
    sf = org.sf()
    account, kids = family(sf)
    before = sf.Account.get(account)
    contact_before = sf.Contact.get(kids["Contact"][0])
    purge(org, sf, account, kids)
    plan = plan_restore(config, RestoreRequest(object="Account", ids=(account,), with_related="children"))
    assert plan.objects["Account"]["insert"] == 1
    assert {"object": "Contact", "field": "AccountId", "records": len(kids["Contact"])} in plan.remapped
    result = restore(org, config, object="Account", ids=(account,), with_related="children")
    assert not result.failures, [(f['sobject'], f['error_message']) for f in result.failures][:5]
    shown = {r["source_id"]: r for r in _ledger(config, result.restore_id) if r["action"] == "insert"}
    new_account = shown[account]["target_id"]
    assert new_account != account
    after = sf.Account.get(new_account)
    assert (after["Name"], after["Phone"], after["Industry"]) == (before["Name"], before["Phone"],
                                                                   before["Industry"])
    for obj in ("Contact", "Case", "Opportunity"):
        assert len(kids[obj]) == len(ids(sf, f"SELECT Id FROM {obj} WHERE AccountId = '{new_account}'"))
    contact = sf.Contact.get(shown[kids["Contact"][0]]["target_id"])
    assert (contact["LastName"], contact["Email"]) == (contact_before["LastName"], contact_before["Email"])
    lines = sf.query_all("SELECT Id FROM OpportunityLineItem WHERE Opportunity.AccountId = "
                         f"'{new_account}'")["totalSize"]
    assert lines == len(kids["OpportunityLineItem"])


def _ledger(config: Any, restore_id: int) -> list[dict[str, Any]]:
    from replicator.restore.ledger import RestoresRequest, restores_ledger

    return restores_ledger(config, RestoresRequest(restore_id)).records


def purge(org: Any, sf: Any, account: str, kids: dict[str, list[str]]) -> None:
    """Delete an Account and its children and empty the recycle bin: only the backup has them."""
    remove(sf, account, kids)
    org.control("POST", "recyclebin/empty", {})


def test_changed_records_get_only_their_changed_fields_and_unchanged_ones_are_skipped(org, config) -> None:
    sf = org.sf()
    account, _ = family(sf)
    before = sf.Account.get(account)
    sf.Account.update(account, {"Name": "Renamed after the backup", "Phone": "+1 555 0199"})
    plan = plan_restore(config, RestoreRequest(object="Account", ids=(account,), with_related="children"))
    update = {"object": "Account", "id": account, "action": "update", "fields": ["Name", "Phone"]}
    assert update in plan.conflicts
    assert plan.objects["Contact"]["skip"] == plan.objects["Contact"]["selected"]  # SystemModstamp unchanged
    assert plan.api_calls == 1
    result = restore(org, config, object="Account", ids=(account,), with_related="children")
    assert result.counts["Account"]["updated"] == 1  # (child Accounts by ParentId are skipped)
    after = sf.Account.get(account)
    assert (after["Name"], after["Phone"]) == (before["Name"], before["Phone"])


def test_a_failing_record_is_kept_in_the_ledger_and_retry_sends_only_it(org, config) -> None:
    sf = org.sf()
    (good, good_kids), (bad, bad_kids) = families(sf)
    purge(org, sf, good, good_kids)
    purge(org, sf, bad, bad_kids)
    result = restore(org, config, object="Account", ids=(good, bad))
    assert result.counts["Account"] == {"inserted": 1, "failed": 1} and result.exit_code == 2
    failure = result.failures[0]
    assert (failure["source_id"], failure["error_code"]) == (bad, "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    assert failure["error_message"].startswith("Credit limit cannot be negative")
    rule = sf.toolingexecute("query/?q=SELECT+Id+FROM+ValidationRule+WHERE+ValidationName+=+"
                             "'Account_Credit_Terms'")["records"][0]["Id"]
    meta = sf.toolingexecute(f"sobjects/ValidationRule/{rule}")["Metadata"]
    sf.toolingexecute(f"sobjects/ValidationRule/{rule}", method="PATCH",
                      data={"Metadata": {**meta, "active": False}})
    try:
        calls = counted(org)
        retried = retry_restore(config, result.restore_id)
        spent = calls()
    finally:
        sf.toolingexecute(f"sobjects/ValidationRule/{rule}", method="PATCH", data={"Metadata": meta})
    assert spent == retried.read_calls + retried.api_calls and retried.api_calls == retried.predicted_calls
    assert retried.counts == {"Account": {"inserted": 1}} and not retried.failures
    records = _ledger(config, retried.restore_id)
    assert [(r["source_id"], r["action"], r["status"]) for r in records] == [(bad, "insert", "ok")]
    assert sf.Account.get(records[0]["target_id"])["Id"] == records[0]["target_id"]


def test_records_that_are_each_others_parent_are_restored_through_a_second_pass(org, config_path) -> None:
    sf = org.sf()
    first = sf.Account.create({"Name": "Cycle A"})["id"]
    second = sf.Account.create({"Name": "Cycle B", "ParentId": first})["id"]
    sf.Account.update(first, {"ParentId": second})
    backup(config_path)
    config = load_config(config_path)
    sf.Account.update(first, {"ParentId": None})
    sf.Account.delete(second)
    sf.Account.delete(first)
    org.control("POST", "recyclebin/empty", {})
    plan = plan_restore(config, RestoreRequest(object="Account", ids=(first,), with_related="all"))
    assert plan.objects["Account"]["insert"] == 2  # the missing parent is brought along
    assert plan.cycles[0]["objects"] == ["Account"] and "Account.ParentId" in plan.cycles[0]["deferred"]
    result = restore(org, config, object="Account", ids=(first,), with_related="all")
    assert result.counts["Account"] == {"inserted": 2, "relinked": 2}
    new = {r["source_id"]: r["target_id"] for r in _ledger(config, result.restore_id)
           if r["action"] == "insert"}
    assert sf.Account.get(new[first])["ParentId"] == new[second]
    assert sf.Account.get(new[second])["ParentId"] == new[first]


FILE_OBJECTS = [*OBJECTS, "ContentDocument", "ContentVersion", "ContentDocumentLink"]


def test_files_come_back_with_their_record_linked_to_its_new_id(org, tmp_config) -> None:
    """The Account is purged: its attachment comes back with its body from the blob store, and the
    link to its file (the document lives on in the owner's library) points at the new Account."""
    sf = org.sf()
    note = b"call notes"
    account = sf.Account.create({"Name": "Files Inc"})["id"]
    attachment = sf.Attachment.create({"ParentId": account, "Name": "notes.txt",
                                       "Body": base64.b64encode(note).decode()})["id"]
    version = sf.ContentVersion.create({"Title": "Contract", "PathOnClient": "contract.pdf",
                                        "VersionData": base64.b64encode(b"%PDF-1.4 contract").decode()})["id"]
    document = sf.ContentVersion.get(version)["ContentDocumentId"]
    link = sf.ContentDocumentLink.create({"ContentDocumentId": document, "LinkedEntityId": account,
                                          "ShareType": "V"})["id"]
    path = tmp_config(config_text(org, selection=f"include = {json.dumps(FILE_OBJECTS)}"))
    backup(path)
    config = load_config(path)
    sf.Account.delete(account)
    org.control("POST", "recyclebin/empty", {})
    plan = plan_restore(config, RestoreRequest(object="Account", ids=(account,), with_related="children"))
    assert [(f["object"], f["id"], f["size"]) for f in plan.files] == [("Attachment", attachment, len(note))]
    assert plan.objects["ContentDocumentLink"]["insert"] == 1 and plan.objects["ContentVersion"]["skip"] == 1
    assert plan.order.index("ContentVersion") < plan.order.index("ContentDocumentLink")
    result = restore(org, config, object="Account", ids=(account,), with_related="children")
    assert not result.failures, result.failures
    new = {r["source_id"]: r["target_id"] for r in _ledger(config, result.restore_id)
           if r["action"] == "insert"}
    url = f"{sf.base_url}sobjects/Attachment/{new[attachment]}/Body"
    body = sf.session.get(url, headers=sf.headers).content
    assert body == note and sf.Attachment.get(new[attachment])["ParentId"] == new[account]
    links = sf.query("SELECT Id, LinkedEntityId FROM ContentDocumentLink WHERE "
                     f"ContentDocumentId = '{document}'")
    assert {r["LinkedEntityId"] for r in links["records"]} >= {new[account]} and new[link] != link


def validation_rule_active(sf: Any, name: str) -> bool:
    found = sf.toolingexecute("query/?q=SELECT+Id,Active+FROM+ValidationRule+WHERE+ValidationName+=+"
                              f"'{name}'")
    return bool(found["records"][0]["Active"])


def test_with_automations_disabled_a_record_the_rule_refuses_comes_back_and_the_rule_is_on_again(
        org, config) -> None:
    sf = org.sf()
    (_, _), (bad, bad_kids) = families(sf)
    purge(org, sf, bad, bad_kids)
    automations = Automations(disable=True)
    plan = plan_restore(config, RestoreRequest(object="Account", ids=(bad,), automations=automations))
    assert "Account.Account_Credit_Terms" in plan.automations["switch_off"]["ValidationRule"]
    kept = {k["name"]: k["reason"] for k in plan.automations["kept_on"]}
    assert "production org refuses Apex" in kept["Account.AccountRatingTrigger"]  # a production org
    calls = counted(org)
    result = run_restore(config, RestoreRequest(object="Account", ids=(bad,), automations=automations))
    assert calls() == result.read_calls + result.automation_calls + result.api_calls
    assert result.api_calls == result.predicted_calls and result.automation_calls == plan.automation_calls
    assert result.counts["Account"] == {"inserted": 1} and not result.failures
    assert validation_rule_active(sf, "Account_Credit_Terms")
    assert validation_rule_active(sf, "Contact_Phone_Format")
