"""The demo org's automations fire on REST single-record writes and on composite writes alike.

(Bulk 2.0 ingest firing is covered in test_bulk2_ingest.py; activation through the Tooling API in
test_emulator_tooling.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest


@pytest.fixture
def sf(emulator: Any) -> Iterator[Any]:
    emulator.control("PUT", "faults", {})
    yield emulator.sf()
    emulator.control("POST", "reset", {})


def _account_id(sf: Any) -> str:
    return sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 1")["records"][0]["Id"]


def test_validation_rule_rejects_a_rest_insert(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Account.create({"Name": "Bad Credit", "Credit_Limit__c": -1})
    body = err.value.content[0]
    assert body["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert body["message"].startswith("Credit limit cannot be negative")
    assert body["fields"] == ["Credit_Limit__c"]
    assert sf.query("SELECT COUNT() FROM Account WHERE Name = 'Bad Credit'")["totalSize"] == 0


def test_before_trigger_sets_a_field_on_rest_insert_and_update(sf: Any) -> None:
    created = sf.Account.create({"Name": "Big Revenue", "AnnualRevenue": 20_000_000})
    assert sf.Account.get(created["id"])["Rating"] == "Hot"
    plain = sf.Account.create({"Name": "Small Revenue", "AnnualRevenue": 10})
    assert sf.Account.get(plain["id"])["Rating"] is None
    sf.Account.update(plain["id"], {"AnnualRevenue": 50_000_000})
    assert sf.Account.get(plain["id"])["Rating"] == "Hot"


def test_trigger_and_workflow_fire_on_sobject_collections(sf: Any) -> None:
    account = _account_id(sf)
    records = [
        {"attributes": {"type": "Opportunity"}, "Name": "Negative", "StageName": "Prospecting",
         "CloseDate": "2026-12-01", "Amount": -5, "AccountId": account},
        {"attributes": {"type": "Opportunity"}, "Name": "Huge Deal", "StageName": "Prospecting",
         "CloseDate": "2026-12-01", "Amount": 2_000_000, "AccountId": account},
    ]
    results = sf.restful("composite/sobjects", method="POST",
                         json={"allOrNone": False, "records": records})
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
    assert "Opportunity amount cannot be negative" in results[0]["errors"][0]["message"]
    assert results[1]["success"] is True
    assert sf.Opportunity.get(results[1]["id"])["NextStep"] == "Executive review required"


def test_record_triggered_flow_creates_a_task_through_composite(sf: Any) -> None:
    account = _account_id(sf)
    body = {"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Opportunity", "referenceId": "opp",
         "body": {"Name": "Won Deal", "StageName": "Closed Won", "CloseDate": "2026-12-01",
                  "Amount": 1000, "AccountId": account}},
        {"method": "GET", "referenceId": "tasks",
         "url": "/services/data/v62.0/query?q=SELECT Subject FROM Task WHERE WhatId = '@{opp.id}'"},
    ]}
    answer = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert answer[0]["httpStatusCode"] == 201
    subjects = [r["Subject"] for r in answer[1]["body"]["records"]]
    assert subjects == ["Send thank-you note for Won Deal"]


def test_inactive_validation_rule_lets_the_same_rest_insert_through(sf: Any) -> None:
    soql = "SELECT+Id+FROM+ValidationRule+WHERE+ValidationName='Account_Credit_Terms'"
    rule = sf.toolingexecute(f"query/?q={soql}")
    rule_id = rule["records"][0]["Id"]
    metadata = sf.toolingexecute(f"sobjects/ValidationRule/{rule_id}")["Metadata"]
    sf.toolingexecute(f"sobjects/ValidationRule/{rule_id}", method="PATCH",
                      data={"Metadata": {**metadata, "active": False}})
    created = sf.Account.create({"Name": "Bad Credit", "Credit_Limit__c": -1})
    assert created["success"] is True
