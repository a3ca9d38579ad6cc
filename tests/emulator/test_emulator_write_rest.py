"""REST single-record writes through unmodified simple-salesforce against the running emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)


@pytest.fixture(scope="module")
def sf(emulator: Any) -> Iterator[Salesforce]:
    yield emulator.sf()
    emulator.control("POST", "reset", {})  # the org as it was started, for the other modules


def raw(sf: Salesforce, method: str, path: str, **kw: Any) -> requests.Response:
    return sf.session.request(method, f"{sf.base_url}{path}", headers=sf.headers, timeout=60, **kw)


def error_of(exc: pytest.ExceptionInfo) -> dict[str, Any]:
    return exc.value.content[0]


def used(emulator: Any) -> int:
    return emulator.control("GET", "limits")["used"]


def test_create_get_update_delete(sf: Salesforce, emulator: Any) -> None:
    calls = used(emulator)
    created = sf.Account.create(
        {
            "Name": "Write Test",
            "NumberOfEmployees": 12,
            "Is_Key_Account__c": True,
            "Customer_Since__c": "2020-02-03",
            "BillingCity": "Paris",
        }
    )
    assert created["success"] is True and created["errors"] == [] and created["id"].startswith("001")
    got = sf.Account.get(created["id"])
    assert (got["Name"], got["NumberOfEmployees"], got["Is_Key_Account__c"]) == ("Write Test", 12, True)
    assert got["BillingAddress"]["city"] == "Paris" and got["CreatedDate"] == got["SystemModstamp"]
    assert got["OwnerId"] == got["CreatedById"] == got["LastModifiedById"]
    assert sf.Account.update(created["id"], {"Name": "Renamed", "NumberOfEmployees": None}) == 204
    after = sf.Account.get(created["id"])
    assert after["Name"] == "Renamed" and after["NumberOfEmployees"] is None
    assert (
        after["SystemModstamp"] > got["SystemModstamp"]
        and after["LastModifiedDate"] > got["LastModifiedDate"]
    )
    assert after["CreatedDate"] == got["CreatedDate"]
    assert sf.Account.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(created["id"])
    deleted = sf.query_all(
        f"SELECT IsDeleted FROM Account WHERE Id = '{created['id']}'", include_deleted=True
    )
    assert deleted["records"][0]["IsDeleted"] is True
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Account.update(created["id"], {"Name": "x"})
    assert error_of(exc)["errorCode"] == "ENTITY_IS_DELETED"
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Account.delete(created["id"])
    assert error_of(exc) == {"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}
    assert used(emulator) == calls + 9  # each call above, writes included, counts once


def test_upsert_by_external_id(sf: Salesforce) -> None:
    first = raw(sf, "PATCH", "sobjects/Account/External_Id__c/REST-UP-1", json={"Name": "Upserted"})
    assert first.status_code == 201 and first.json()["created"] is True
    second = raw(sf, "PATCH", "sobjects/Account/External_Id__c/rest-up-1", json={"Name": "Again"})
    assert second.status_code == 200
    assert second.json() == {"id": first.json()["id"], "success": True, "errors": [], "created": False}
    assert sf.Account.upsert("External_Id__c/REST-UP-1", {"Name": "Via sf"}) == 200
    assert sf.Account.get_by_custom_id("External_Id__c", "REST-UP-1")["Name"] == "Via sf"
    old = sf.session.request(
        "PATCH",
        f"{sf.base_url.replace('v62.0', 'v45.0')}sobjects/Account/External_Id__c/REST-UP-1",
        headers=sf.headers,
        json={"Name": "Old API"},
        timeout=60,
    )
    assert old.status_code == 204 and not old.content
    missing = raw(sf, "PATCH", "sobjects/Account/Nope__c/x", json={"Name": "n"})
    assert missing.status_code == 404 and missing.json() == [
        {
            "message": "Provided external ID field does not exist or is not accessible: Nope__c",
            "errorCode": "NOT_FOUND",
        }
    ]
    same = raw(sf, "PATCH", "sobjects/Account/External_Id__c/REST-UP-1",
               json={"Name": "Same key", "External_Id__c": "rest-up-1"})
    assert same.status_code == 200
    other = raw(sf, "PATCH", "sobjects/Account/External_Id__c/REST-UP-1",
                json={"Name": "Other key", "External_Id__c": "REST-UP-2"})
    assert other.status_code == 400 and other.json()[0]["errorCode"] == "INVALID_FIELD"
    assert other.json()[0]["fields"] == ["External_Id__c"]
    assert sf.Account.get_by_custom_id("External_Id__c", "REST-UP-1")["Name"] == "Same key"
    assert raw(sf, "GET", "sobjects/Account/External_Id__c/REST-UP-2").status_code == 404
    assert raw(sf, "DELETE", "sobjects/Account/External_Id__c/REST-UP-1").status_code == 204
    assert raw(sf, "DELETE", "sobjects/Account/External_Id__c/REST-UP-1").status_code == 404


def test_upsert_with_several_matches_is_300(sf: Salesforce) -> None:
    for _ in range(2):
        sf.Contact.create({"LastName": "Twin", "Email": "twin@example.com"})
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Contact.upsert("Email/twin@example.com", {"LastName": "Which"})


def test_http_method_override(sf: Salesforce) -> None:
    rid = sf.Account.create({"Name": "Override"})["id"]
    response = raw(sf, "POST", f"sobjects/Account/{rid}", params={"_HttpMethod": "PATCH"}, json={"Site": "S"})
    assert response.status_code == 204 and sf.Account.get(rid)["Site"] == "S"
    assert raw(sf, "POST", f"sobjects/Account/{rid}", json={"Site": "S"}).status_code == 405


def test_error_codes(sf: Salesforce) -> None:
    cases = [
        ({"Site": "no name"}, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]"),
        ({"Name": "a", "Foo": 1}, "INVALID_FIELD", "No such column 'Foo' on sobject of type Account"),
        ({"Name": "a", "CreatedDate": "2020-01-01T00:00:00Z"}, "INVALID_FIELD_FOR_INSERT_UPDATE", None),
        ({"Name": "a" * 256}, "STRING_TOO_LONG", None),
        ({"Name": "a", "Support_Email__c": "nope"}, "INVALID_EMAIL_ADDRESS", None),
        ({"Name": "a", "ParentId": "001xyz"}, "MALFORMED_ID", None),
        (
            {"Name": "a", "ParentId": "0015J00000zzzzzAAA"},
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
        ),
        ({"Name": "a", "NumberOfEmployees": "many"}, "INVALID_TYPE_ON_FIELD_IN_RECORD", None),
        ({"Name": "a", "BillingAddress": {"city": "x"}}, "JSON_PARSER_ERROR", None),
    ]
    for body, code, message in cases:
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Account.create(body)
        assert error_of(exc)["errorCode"] == code, body
        if message:
            assert error_of(exc)["message"] == message
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Invoice__c.create(
            {
                "Account__c": sf.Account.create({"Name": "x"})["id"],
                "Invoice_Date__c": "2024-01-01",
                "Status__c": "Nope",
            }
        )
    assert error_of(exc)["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    sf.Account.create({"Name": "u", "External_Id__c": "REST-DUP"})
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.create({"Name": "u2", "External_Id__c": "REST-DUP"})
    assert error_of(exc)["errorCode"] == "DUPLICATE_VALUE" and error_of(exc)["fields"] == ["External_Id__c"]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Invoice__c.create(
            {"Account__c": sf.Contact.create({"LastName": "c"})["id"], "Invoice_Date__c": "2024-01-01"}
        )
    assert error_of(exc)["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    bad_json = raw(sf, "POST", "sobjects/Account", data=b"{not json")
    assert bad_json.status_code == 400 and bad_json.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert raw(sf, "PATCH", "sobjects/Account/0015J00000zzzzzAAA", json={"Name": "x"}).status_code == 404


def test_blob_create_from_base64(sf: Salesforce) -> None:
    parent = sf.Account.create({"Name": "Blob parent"})["id"]
    created = sf.Attachment.create({"ParentId": parent, "Name": "hello.txt", "Body": "aGVsbG8="})
    assert sf.Attachment.get_base64(created["id"], "Body") == b"hello"


def test_rollup_bumps_parent_and_formula_follows(sf: Salesforce) -> None:
    acc = sf.Account.create({"Name": "Rollup REST"})["id"]
    inv = sf.Invoice__c.create({"Account__c": acc, "Invoice_Date__c": "2024-01-01"})["id"]
    before = sf.Invoice__c.get(inv)
    line = sf.Invoice_Line__c.create(
        {"Invoice__c": inv, "Quantity__c": 2, "Unit_Price__c": 3.5, "Amount__c": 7}
    )["id"]
    after = sf.Invoice__c.get(inv)
    assert after["Total__c"] == 7 and after["Line_Count__c"] == 1
    assert after["SystemModstamp"] > before["SystemModstamp"]
    sf.Invoice_Line__c.update(line, {"Quantity__c": 4})
    assert sf.Invoice_Line__c.get(line)["Line_Total__c"] == 14
    assert sf.Invoice__c.get(inv)["SystemModstamp"] == after["SystemModstamp"]  # Amount__c did not change
