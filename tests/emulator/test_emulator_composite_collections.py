"""sObject Collections as /composite subrequests (API 43.0+): up to 5 of them in one API call, each with
its own allOrNone, as sf_api.md 2.10 and Salesforce's composite documentation allow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce

V = "/services/data/v62.0"


@pytest.fixture
def sf(emulator: Any) -> Iterator[Salesforce]:
    yield emulator.sf()
    emulator.control("POST", "reset", {})


def collection(method: str, ref: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "method": method,
        "url": f"{V}/composite/sobjects",
        "referenceId": ref,
        "body": {"allOrNone": False, "records": records},
    }


def test_five_collections_in_one_counted_call_and_a_sixth_refused(emulator: Any, sf: Salesforce) -> None:
    accounts = [
        [{"attributes": {"type": "Account"}, "Name": f"Nested {k}-{i}"} for i in range(200)] for k in range(5)
    ]
    accounts[2][7]["Credit_Limit__c"] = -1  # fails the validation rule alone
    since = emulator.control("GET", "ledger")["last_seq"]
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": False,
            "compositeRequest": [collection("POST", f"c{k}", chunk) for k, chunk in enumerate(accounts)],
        },
    )["compositeResponse"]
    assert emulator.control("GET", f"ledger?since={since}")["summary"]["counted"] == 1
    assert [item["httpStatusCode"] for item in answer] == [200] * 5
    results = [r for item in answer for r in item["body"]]
    assert sum(r["success"] for r in results) == 999
    assert results[407]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Nested %'")["totalSize"] == 999

    made = [r["id"] for r in results[:3]]
    renamed = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": False,
            "compositeRequest": [
                collection(
                    "PATCH",
                    "u",
                    [{"attributes": {"type": "Account"}, "Id": i, "Name": "Renamed"} for i in made],
                )
            ],
        },
    )
    assert [r["success"] for r in renamed["compositeResponse"][0]["body"]] == [True] * 3

    six = [
        collection("POST", f"s{k}", [{"attributes": {"type": "Account"}, "Name": "Six"}]) for k in range(6)
    ]
    with pytest.raises(Exception) as refused:
        sf.restful("composite", method="POST", json={"allOrNone": False, "compositeRequest": six})
    assert "LIMIT_EXCEEDED" in str(refused.value)


def test_graphs_take_single_records_only(sf: Salesforce) -> None:
    node = collection("POST", "c", [{"attributes": {"type": "Account"}, "Name": "Graph nested"}])
    answer = sf.restful(
        "composite/graph", method="POST", json={"graphs": [{"graphId": "g1", "compositeRequest": [node]}]}
    )["graphs"][0]
    assert answer["isSuccessful"] is False
    item = answer["graphResponse"]["compositeResponse"][0]
    assert (item["httpStatusCode"], item["body"][0]["errorCode"]) == (400, "INVALID_URL")
    assert sf.query("SELECT COUNT() FROM Account WHERE Name = 'Graph nested'")["totalSize"] == 0
