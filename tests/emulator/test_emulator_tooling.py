"""The Tooling API and automations over the wire, through simple-salesforce (sf_api.md section 6).

Uses the session emulator (a production org) and, for what only sandboxes allow, a sandbox emulator
process of its own. Every test that changes the org resets it afterwards.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sfemu.client import login
from sfemu.launch import start_emulator, stop, wait_ready


@pytest.fixture
def sf(emulator) -> Iterator[Any]:
    emulator.control("PUT", "faults", {})
    client = emulator.sf()
    yield client
    emulator.control("POST", "reset", {})


def test_automations_fire_without_a_tooling_call(emulator):
    emulator.control("POST", "reset", {})
    client = emulator.sf()
    try:
        ok, failed = bulk_insert(client, "Account", [{"Name": "Fresh neg", "Credit_Limit__c": -1}])
        assert not ok and failed
    finally:
        emulator.control("POST", "reset", {})


def tooling_query(sf, soql: str) -> dict[str, Any]:
    return sf.toolingexecute("query/?q=" + soql.replace(" ", "+"))


def ids(sf, soql: str) -> dict[str, str]:
    """Name -> Id of a Tooling query's records (first selected field after Id is the name)."""
    records = tooling_query(sf, soql)["records"]
    return {next(v for k, v in r.items() if k not in ("attributes", "Id")): r["Id"] for r in records}


def patch(sf, path: str, data: dict[str, Any]) -> Any:
    """PATCH tooling/sobjects/{path} (simple-salesforce returns '' for the 204)."""
    return sf.toolingexecute(f"sobjects/{path}", method="PATCH", data=data)


def bulk_insert(sf, obj: str, records: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Bulk 2.0 insert; (successful rows, failed rows) as dicts from the result CSVs."""
    job = getattr(sf.bulk2, obj).insert(records=records, wait=1)[0]
    client = getattr(sf.bulk2, obj)
    ok = list(csv.DictReader(io.StringIO(client.get_successful_records(job["job_id"]))))
    failed = list(csv.DictReader(io.StringIO(client.get_failed_records(job["job_id"]))))
    return ok, failed


def test_listing_every_kind_of_automation(sf):
    vr = tooling_query(sf, "SELECT Id, ValidationName, Active, EntityDefinition.QualifiedApiName, "
                           "NamespacePrefix, ErrorMessage, ErrorDisplayField FROM ValidationRule")
    assert vr["size"] == vr["totalSize"] == 2 and vr["done"] and vr["queryLocator"] is None
    assert vr["entityTypeName"] == "ValidationRule"
    first = vr["records"][0]
    assert first["attributes"]["url"] == f"/services/data/v62.0/tooling/sobjects/ValidationRule/{first['Id']}"
    assert first["Id"].startswith("03d") and first["EntityDefinition"]["QualifiedApiName"] == "Account"
    triggers = tooling_query(sf, "SELECT Id, Name, TableEnumOrId, Status, NamespacePrefix, "
                                 "EntityDefinitionId, ApiVersion FROM ApexTrigger "
                                 "WHERE Status = 'Active'")["records"]
    assert {(t["Name"], t["NamespacePrefix"]) for t in triggers} >= {("OpportunityAmountGuard", None),
                                                                     ("AccountSync", "acme")}
    flows = tooling_query(sf, "SELECT Id, DeveloperName, ActiveVersionId, LatestVersionId, "
                              "ActiveVersion.VersionNumber, NamespacePrefix FROM FlowDefinition")["records"]
    assert flows[0]["ActiveVersion"]["VersionNumber"] == 2 and flows[0]["Id"].startswith("300")
    versions = tooling_query(sf, "SELECT Id, ProcessType, Status, VersionNumber, Definition.DeveloperName "
                                 "FROM Flow WHERE Status = 'Active'")["records"]
    assert [(v["VersionNumber"], v["Definition"]["DeveloperName"]) for v in versions] == [
        (2, "Opportunity_Won_Followup")]
    rules = tooling_query(sf, "SELECT Id, Name, TableEnumOrId, NamespacePrefix FROM WorkflowRule")["records"]
    assert [(r["Name"], r["TableEnumOrId"], r["Id"][:3]) for r in rules] == [
        ("Large_Deal_Review", "Opportunity", "01Q")]
    duplicates = sf.query("SELECT Id, DeveloperName, IsActive, SobjectType FROM DuplicateRule")
    assert [(d["DeveloperName"], d["IsActive"]) for d in duplicates["records"]] == [
        ("Account_Name_Duplicates", False)]
    assert sf.query("SELECT Id, Name, Status FROM ApexTrigger")["totalSize"] == 4


def test_metadata_and_full_name_only_for_one_row(sf):
    with pytest.raises(SalesforceMalformedRequest) as info:
        tooling_query(sf, "SELECT Id, FullName, Metadata FROM ValidationRule")
    assert info.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    assert "no more than one row for retrieval. Result size: 2" in info.value.content[0]["message"]
    rid = ids(sf, "SELECT Id, ValidationName FROM ValidationRule")["Contact_Phone_Format"]
    one = tooling_query(sf, f"SELECT Id, FullName, Metadata FROM ValidationRule WHERE Id = '{rid}'")
    record = one["records"][0]
    assert record["FullName"] == "Contact.Contact_Phone_Format"
    assert record["Metadata"]["active"] is True and record["Metadata"]["errorDisplayField"] == "Phone"
    fetched = sf.toolingexecute(f"sobjects/ValidationRule/{rid}")
    assert fetched["Metadata"] == record["Metadata"] and fetched["ValidationName"] == "Contact_Phone_Format"
    described = sf.toolingexecute("sobjects/ValidationRule/describe")
    assert described["name"] == "ValidationRule" and described["keyPrefix"] == "03d"


def test_validation_rule_deactivate_and_reactivate(sf):
    rid = ids(sf, "SELECT Id, ValidationName FROM ValidationRule")["Account_Credit_Terms"]
    bad = [{"Name": "Tooling neg", "Credit_Limit__c": -1}]
    assert len(bulk_insert(sf, "Account", bad)[1]) == 1
    meta = sf.toolingexecute(f"sobjects/ValidationRule/{rid}")["Metadata"]
    assert patch(sf, f"ValidationRule/{rid}", {"Metadata": {**meta, "active": False}}) == ""
    assert sf.toolingexecute(f"sobjects/ValidationRule/{rid}")["Active"] is False
    assert len(bulk_insert(sf, "Account", bad)[0]) == 1
    patch(sf, f"ValidationRule/{rid}", {"Metadata": {**meta, "active": True}})
    ok, failed = bulk_insert(sf, "Account", bad)
    assert not ok and "Credit limit cannot be negative" in failed[0]["sf__Error"]


def test_validation_rule_formula_change_is_checked(sf):
    rid = ids(sf, "SELECT Id, ValidationName FROM ValidationRule")["Account_Credit_Terms"]
    meta = sf.toolingexecute(f"sobjects/ValidationRule/{rid}")["Metadata"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        patch(sf, f"ValidationRule/{rid}", {"Metadata": {**meta, "errorConditionFormula": "Nope__c > 1"}})
    assert "Field Nope__c does not exist" in info.value.content[0]["message"]
    patch(sf, f"ValidationRule/{rid}", {"Metadata": {**meta, "errorConditionFormula": 'Name = "Forbidden"'}})
    ok, failed = bulk_insert(sf, "Account", [{"Name": "Forbidden"},
                                             {"Name": "Negative", "Credit_Limit__c": -1}])
    assert [r["Name"] for r in failed] == ["Forbidden"] and [r["Name"] for r in ok] == ["Negative"]


def test_reject_trigger_fires_on_bulk_and_cannot_be_changed_in_production(sf):
    ok, failed = bulk_insert(sf, "Opportunity", [
        {"Name": "Neg", "StageName": "Prospecting", "CloseDate": "2024-06-01", "Amount": -5}])
    assert not ok and failed[0]["sf__Error"].startswith(
        "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY:OpportunityAmountGuard: execution of BeforeInsert caused by")
    rid = ids(sf, "SELECT Id, Name FROM ApexTrigger")["OpportunityAmountGuard"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        patch(sf, f"ApexTrigger/{rid}", {"Metadata": {"apiVersion": 59.0, "status": "Inactive"}})
    assert info.value.content[0]["errorCode"] == "ENTITY_IS_LOCKED"
    assert sf.toolingexecute(f"sobjects/ApexTrigger/{rid}")["Status"] == "Active"


def test_managed_trigger_refuses(sf):
    rid = ids(sf, "SELECT Id, Name FROM ApexTrigger WHERE NamespacePrefix = 'acme'")["AccountSync"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        patch(sf, f"ApexTrigger/{rid}", {"Metadata": {"status": "Inactive"}})
    assert info.value.content[0]["errorCode"] == "CANNOT_MODIFY_MANAGED_OBJECT"
    ok, _ = bulk_insert(sf, "Account", [{"Name": "Managed", "AccountNumber": "ACME-1"}])
    assert sf.query(f"SELECT Site FROM Account WHERE Id = '{ok[0]['sf__Id']}'")["records"][0]["Site"] == \
        "Synced by ACME"


def test_workflow_rule_deactivate_and_reactivate(sf):
    rid = ids(sf, "SELECT Id, Name FROM WorkflowRule")["Large_Deal_Review"]
    meta = sf.toolingexecute(f"sobjects/WorkflowRule/{rid}")["Metadata"]
    assert meta["active"] is True and meta["formula"] == "Amount >= 1000000"
    deal = {"Name": "Big", "StageName": "Prospecting", "CloseDate": "2024-06-01", "Amount": 2000000}

    def next_step() -> str | None:
        new_id = bulk_insert(sf, "Opportunity", [deal])[0][0]["sf__Id"]
        return sf.query(f"SELECT NextStep FROM Opportunity WHERE Id = '{new_id}'")["records"][0]["NextStep"]

    assert next_step() == "Executive review required"
    patch(sf, f"WorkflowRule/{rid}", {"Metadata": {**meta, "active": False}})
    assert next_step() is None
    patch(sf, f"WorkflowRule/{rid}", {"Metadata": {**meta, "active": True}})
    assert next_step() == "Executive review required"


def test_flow_deactivate_and_reactivate(sf):
    rid = ids(sf, "SELECT Id, DeveloperName FROM FlowDefinition")["Opportunity_Won_Followup"]
    won = {"Name": "Won", "StageName": "Closed Won", "CloseDate": "2024-06-01"}

    def tasks() -> list[str]:
        new_id = bulk_insert(sf, "Opportunity", [won])[0][0]["sf__Id"]
        found = sf.query(f"SELECT Subject FROM Task WHERE WhatId = '{new_id}'")["records"]
        return [t["Subject"] for t in found]

    assert tasks() == ["Send thank-you note for Won"]
    patch(sf, f"FlowDefinition/{rid}", {"Metadata": {"activeVersionNumber": 0}})
    assert tooling_query(sf, "SELECT Id FROM Flow WHERE Status = 'Active'")["size"] == 0
    assert tasks() == []
    patch(sf, f"FlowDefinition/{rid}", {"Metadata": {"activeVersionNumber": 1}})
    assert tasks() == ["Thank the customer"]
    v2 = ids(sf, "SELECT Id, VersionNumber FROM Flow")[2]
    patch(sf, f"Flow/{v2}", {"Metadata": {"status": "Active"}})
    definition = sf.toolingexecute(f"sobjects/FlowDefinition/{rid}")
    assert definition["ActiveVersionId"] == v2 and definition["Metadata"]["activeVersionNumber"] == 2


def test_reset_restores_the_automations(emulator, sf):
    rid = ids(sf, "SELECT Id, ValidationName FROM ValidationRule")["Account_Credit_Terms"]
    patch(sf, f"ValidationRule/{rid}", {"Metadata": {"active": False}})
    emulator.control("POST", "reset", {})
    fresh = emulator.sf()
    assert fresh.toolingexecute(f"sobjects/ValidationRule/{rid}")["Active"] is True


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A second emulator process: a sandbox org (org-to-org flows, Apex changes through Tooling)."""
    state: Path = tmp_path_factory.mktemp("sandbox")
    process, ready = start_emulator(state, 0, 300, 7, ["--org-type", "sandbox"])
    try:
        yield wait_ready(process, ready, state / "emulator.log", timeout=120)
    finally:
        stop(process)


def test_sandbox_org_allows_apex_trigger_changes(sandbox):
    sf = login(sandbox)
    assert sf.is_sandbox() is True
    rid = ids(sf, "SELECT Id, Name FROM ApexTrigger")["OpportunityAmountGuard"]
    neg = [{"Name": "Neg", "StageName": "Prospecting", "CloseDate": "2024-06-01", "Amount": -5}]
    patch(sf, f"ApexTrigger/{rid}", {"Metadata": {"apiVersion": 59.0, "status": "Inactive"}})
    assert sf.toolingexecute(f"sobjects/ApexTrigger/{rid}")["Status"] == "Inactive"
    assert len(bulk_insert(sf, "Opportunity", neg)[0]) == 1
    # The documented deployment path: MetadataContainer + ApexTriggerMember + ContainerAsyncRequest.
    container = sf.toolingexecute("sobjects/MetadataContainer", method="POST",
                                  data={"Name": "reactivate"})["id"]
    sf.toolingexecute("sobjects/ApexTriggerMember", method="POST", data={
        "MetadataContainerId": container, "ContentEntityId": rid, "Body": "trigger ...",
        "Metadata": {"apiVersion": 59.0, "status": "Active"}})
    request = sf.toolingexecute("sobjects/ContainerAsyncRequest", method="POST",
                                data={"MetadataContainerId": container, "IsCheckOnly": False})["id"]
    assert sf.toolingexecute(f"sobjects/ContainerAsyncRequest/{request}")["State"] == "Completed"
    assert sf.toolingexecute(f"sobjects/ApexTrigger/{rid}")["Status"] == "Active"
    assert len(bulk_insert(sf, "Opportunity", neg)[1]) == 1


def test_copy_a_record_from_production_to_sandbox(emulator, sandbox):
    source = emulator.sf()
    target = login(sandbox)
    record = source.query("SELECT Name, Industry, AnnualRevenue FROM Account WHERE AnnualRevenue != null "
                          "ORDER BY Name LIMIT 1")["records"][0]
    fields = {k: v for k, v in record.items() if k != "attributes"}
    ok, failed = bulk_insert(target, "Account", [fields])
    assert not failed
    copied = target.query(f"SELECT Name, Industry, AnnualRevenue FROM Account WHERE Id = '{ok[0]['sf__Id']}'")
    assert {k: v for k, v in copied["records"][0].items() if k != "attributes"} == fields
    org = target.query("SELECT IsSandbox, InstanceName FROM Organization")["records"][0]
    assert org == {**org, "IsSandbox": True, "InstanceName": "CS42"}
