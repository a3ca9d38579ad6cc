"""sObject Collections, /composite, /composite/graph, /composite/tree and /composite/batch over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

V = "/services/data/v62.0"
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "fields": [],
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
}
HALTED = [
    {
        "errorCode": "PROCESSING_HALTED",
        "message": "The transaction was rolled back since another operation in the same transaction failed.",
    }
]


@pytest.fixture(scope="module")
def sf(emulator: Any) -> Iterator[Salesforce]:
    yield emulator.sf()
    emulator.control("POST", "reset", {})


def call(sf: Salesforce, method: str, path: str, **kw: Any) -> requests.Response:
    return sf.session.request(method, f"{sf.base_url}{path}", headers=sf.headers, timeout=60, **kw)


def count(sf: Salesforce, soql: str) -> int:
    return sf.query(soql)["totalSize"]


def test_collections_create_update_upsert_retrieve_delete(sf: Salesforce) -> None:
    created = call(
        sf,
        "POST",
        "composite/sobjects",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "Coll A", "External_Id__c": "COLL-A"},
                {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
                {"attributes": {"type": "Contact"}, "LastName": "Coll"},
            ],
        },
    )
    assert created.status_code == 200
    first, second, third = created.json()
    assert first["success"] and set(first) == {"id", "success", "errors"}
    assert second == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "fields": ["LastName"],
                "message": "Required fields are missing: [LastName]",
            }
        ],
    }
    updated = call(
        sf,
        "PATCH",
        "composite/sobjects",
        json={
            "records": [
                {"attributes": {"type": "Account"}, "Id": first["id"], "Site": "Upd"},
                {"attributes": {"type": "Contact"}, "Id": third["id"], "Email": "bad"},
            ]
        },
    ).json()
    assert updated[0] == {"id": first["id"], "success": True, "errors": []}
    assert updated[1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    upserted = call(
        sf,
        "PATCH",
        "composite/sobjects/Account/External_Id__c",
        json={
            "records": [
                {"attributes": {"type": "Account"}, "External_Id__c": "COLL-A", "Name": "Coll A2"},
                {"attributes": {"type": "Account"}, "External_Id__c": "COLL-B", "Name": "Coll B"},
            ]
        },
    ).json()
    assert [(r["success"], r["created"]) for r in upserted] == [(True, False), (True, True)]
    assert upserted[0]["id"] == first["id"]
    fetched = call(
        sf,
        "GET",
        "composite/sobjects/Account",
        params={"ids": f"{first['id']},{upserted[1]['id']},0015J00000zzzzzAAA", "fields": "Name,Site"},
    ).json()
    assert [r and r["Name"] for r in fetched] == ["Coll A2", "Coll B", None] and fetched[0]["Site"] == "Upd"
    posted = call(
        sf, "POST", "composite/sobjects/Account", json={"ids": [first["id"]], "fields": ["Name"]}
    ).json()
    assert posted[0]["Name"] == "Coll A2"
    deleted = call(
        sf,
        "DELETE",
        "composite/sobjects",
        params={"ids": f"{first['id']},{upserted[1]['id']},001xyz", "allOrNone": "false"},
    ).json()
    assert [r["success"] for r in deleted] == [True, True, False]
    assert deleted[2]["errors"][0]["statusCode"] == "MALFORMED_ID"
    no_ids = call(sf, "DELETE", "composite/sobjects")
    assert no_ids.status_code == 400 and no_ids.json()[0] == {
        "message": "At least 1 Id is required.",
        "errorCode": "REQUIRED_FIELD_MISSING",
    }


def test_collections_all_or_none(sf: Salesforce) -> None:
    before = count(sf, "SELECT COUNT() FROM Account WHERE Name LIKE 'AON%'")
    body = {
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Account"}, "Name": "AON 1"},
            {"attributes": {"type": "Contact"}, "LastName": "AON"},
            {"attributes": {"type": "Account"}, "Name": None},
        ],
    }
    results = call(sf, "POST", "composite/sobjects", json=body).json()
    assert results[0] == {"success": False, "errors": [ROLLED_BACK]} and results[1]["errors"] == [ROLLED_BACK]
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert count(sf, "SELECT COUNT() FROM Account WHERE Name LIKE 'AON%'") == before
    assert count(sf, "SELECT COUNT() FROM Contact WHERE LastName = 'AON'") == 0
    too_many = call(
        sf,
        "POST",
        "composite/sobjects",
        json={"records": [{"attributes": {"type": "Account"}, "Name": f"n{i}"} for i in range(201)]},
    )
    assert too_many.status_code == 400 and too_many.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    chunky = call(
        sf,
        "POST",
        "composite/sobjects",
        json={
            "records": [
                {"attributes": {"type": "Account" if i % 2 else "Contact"}, "Name": "x"} for i in range(12)
            ]
        },
    )
    assert chunky.status_code == 400


def test_composite_references_and_one_api_call(sf: Salesforce, emulator: Any) -> None:
    used = emulator.control("GET", "limits")["used"]
    response = call(
        sf,
        "POST",
        "composite",
        json={
            "allOrNone": False,
            "collateSubrequests": False,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": f"{V}/sobjects/Account",
                    "referenceId": "acc",
                    "body": {"Name": "Composite"},
                },
                {
                    "method": "POST",
                    "url": f"{V}/sobjects/Contact",
                    "referenceId": "con",
                    "body": {"LastName": "Ref", "AccountId": "@{acc.id}"},
                },
                {
                    "method": "GET",
                    "url": f"{V}/query/?q=SELECT Id, LastName FROM Contact WHERE AccountId = '@{{acc.id}}'",
                    "referenceId": "q",
                },
                {
                    "method": "PATCH",
                    "url": f"{V}/sobjects/Contact/@{{q.records[0].Id}}",
                    "referenceId": "upd",
                    "body": {"Title": "Boss"},
                },
                {
                    "method": "GET",
                    "url": f"{V}/sobjects/Account/describe",
                    "referenceId": "desc",
                    "httpHeaders": {"If-Modified-Since": "Thu, 03 Sep 2099 21:35:07 GMT"},
                },
                {
                    "method": "GET",
                    "url": f"{V}/sobjects/Account/0015J00000zzzzzAAA",
                    "referenceId": "missing",
                },
            ],
        },
    )
    assert response.status_code == 200
    assert emulator.control("GET", "limits")["used"] == used + 1  # the whole composite is one API call
    items = {i["referenceId"]: i for i in response.json()["compositeResponse"]}
    assert items["acc"]["httpStatusCode"] == 201 and items["acc"]["body"]["success"] is True
    assert items["acc"]["httpHeaders"]["Location"].endswith(items["acc"]["body"]["id"])
    assert items["q"]["body"]["totalSize"] == 1
    assert items["upd"]["httpStatusCode"] == 204
    assert items["desc"]["httpStatusCode"] == 304 and "Last-Modified" in items["desc"]["httpHeaders"]
    assert items["missing"]["httpStatusCode"] == 404
    assert sf.Contact.get(items["con"]["body"]["id"])["Title"] == "Boss"


def test_composite_all_or_none_halts(sf: Salesforce) -> None:
    response = call(
        sf,
        "POST",
        "composite",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": f"{V}/sobjects/Account",
                    "referenceId": "ok",
                    "body": {"Name": "Halted"},
                },
                {
                    "method": "POST",
                    "url": f"{V}/sobjects/Contact",
                    "referenceId": "bad",
                    "body": {"FirstName": "x"},
                },
                {
                    "method": "POST",
                    "url": f"{V}/sobjects/Account",
                    "referenceId": "later",
                    "body": {"Name": "Later"},
                },
            ],
        },
    )
    items = response.json()["compositeResponse"]
    assert [i["httpStatusCode"] for i in items] == [400, 400, 400]
    assert items[0]["body"] == HALTED and items[2]["body"] == HALTED
    assert items[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert count(sf, "SELECT COUNT() FROM Account WHERE Name = 'Halted'") == 0
    too_many = call(
        sf,
        "POST",
        "composite",
        json={
            "compositeRequest": [
                {"method": "GET", "url": f"{V}/limits", "referenceId": f"r{i}"} for i in range(26)
            ]
        },
    )
    assert too_many.status_code == 400


def test_graph_one_fails_one_succeeds(sf: Salesforce) -> None:
    def node(ref: str, obj: str, body: dict) -> dict:
        return {"method": "POST", "url": f"{V}/sobjects/{obj}", "referenceId": ref, "body": body}

    response = call(
        sf,
        "POST",
        "composite/graph",
        json={
            "graphs": [
                {
                    "graphId": "good",
                    "compositeRequest": [
                        node("a", "Account", {"Name": "Graph Good"}),
                        node("c", "Contact", {"LastName": "G", "AccountId": "@{a.id}"}),
                    ],
                },
                {
                    "graphId": "bad",
                    "compositeRequest": [
                        node("a", "Account", {"Name": "Graph Bad"}),
                        node("c", "Contact", {"AccountId": "@{a.id}"}),
                    ],
                },
            ]
        },
    )
    assert response.status_code == 200
    good, bad = response.json()["graphs"]
    assert good["graphId"] == "good" and good["isSuccessful"] is True
    assert [i["httpStatusCode"] for i in good["graphResponse"]["compositeResponse"]] == [201, 201]
    assert bad["isSuccessful"] is False
    assert bad["graphResponse"]["compositeResponse"][0]["body"] == HALTED
    assert count(sf, "SELECT COUNT() FROM Account WHERE Name = 'Graph Good'") == 1
    assert count(sf, "SELECT COUNT() FROM Account WHERE Name = 'Graph Bad'") == 0


def test_tree(sf: Salesforce) -> None:
    def tree(email: str) -> dict:
        return {
            "records": [
                {
                    "attributes": {"type": "Account", "referenceId": "ref1"},
                    "Name": f"Tree {email}",
                    "Contacts": {
                        "records": [
                            {"attributes": {"type": "Contact", "referenceId": "ref2"}, "LastName": "L1"},
                            {
                                "attributes": {"type": "Contact", "referenceId": "ref3"},
                                "LastName": "L2",
                                "Email": email,
                            },
                        ]
                    },
                }
            ]
        }

    failed = call(sf, "POST", "composite/tree/Account", json=tree("123"))
    assert failed.status_code == 400 and failed.json() == {
        "hasErrors": True,
        "results": [
            {
                "referenceId": "ref3",
                "errors": [
                    {
                        "statusCode": "INVALID_EMAIL_ADDRESS",
                        "fields": ["Email"],
                        "message": "Email: invalid email address: 123",
                    }
                ],
            }
        ],
    }
    assert count(sf, "SELECT COUNT() FROM Account WHERE Name = 'Tree 123'") == 0
    ok = call(sf, "POST", "composite/tree/Account", json=tree("t@example.com"))
    assert ok.status_code == 201 and ok.json()["hasErrors"] is False
    refs = {r["referenceId"]: r["id"] for r in ok.json()["results"]}
    assert list(refs) == ["ref1", "ref2", "ref3"]
    assert sf.Contact.get(refs["ref3"])["AccountId"] == refs["ref1"]


def test_batch(sf: Salesforce) -> None:
    rid = sf.Account.create({"Name": "Batch"})["id"]
    response = call(
        sf,
        "POST",
        "composite/batch",
        json={
            "batchRequests": [
                {"method": "PATCH", "url": f"v62.0/sobjects/Account/{rid}", "richInput": {"Name": "Batched"}},
                {"method": "GET", "url": f"v62.0/sobjects/Account/{rid}?fields=Name"},
            ]
        },
    ).json()
    assert response["hasErrors"] is False
    assert [r["statusCode"] for r in response["results"]] == [204, 200]
    assert response["results"][1]["result"]["Name"] == "Batched"
