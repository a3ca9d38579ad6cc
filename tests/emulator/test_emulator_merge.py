"""SOAP merge() with a plain partner envelope, as clients send it: the master keeps its Id and takes
the given values, the merged records go to the recycle bin with MasterRecordId set, their children
move to the master, /deleted lists them, and a failing request changes nothing (issue 14)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from simple_salesforce import Salesforce

NS = {"p": "urn:partner.soap.sforce.com", "s": "http://schemas.xmlsoap.org/soap/envelope/"}


@pytest.fixture(scope="module")
def sf(emulator: Any) -> Iterator[Salesforce]:
    yield emulator.sf()
    emulator.control("POST", "reset", {})  # the org as it was started, for the other modules


def merge(emulator: Any, sf: Salesforce, sobject: str, master: str, merged: list[str],
          fields: dict[str, str] | None = None, to_null: tuple[str, ...] = ()) -> ET.Element:
    """POST one MergeRequest; the parsed response envelope."""
    values = "".join(f"<urn:{k}>{v}</urn:{k}>" for k, v in (fields or {}).items())
    nulls = "".join(f"<urn1:fieldsToNull>{f}</urn1:fieldsToNull>" for f in to_null)
    ids = "".join(f"<urn:recordToMergeIds>{i}</urn:recordToMergeIds>" for i in merged)
    envelope = (
        '<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com" '
        'xmlns:urn1="urn:sobject.partner.soap.sforce.com">'
        f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{sf.session_id}</urn:sessionId>"
        "</urn:SessionHeader></soapenv:Header><soapenv:Body><urn:merge><urn:request>"
        f"<urn:masterRecord><urn1:type>{sobject}</urn1:type>{nulls}<urn1:Id>{master}</urn1:Id>{values}"
        f"</urn:masterRecord>{ids}</urn:request></urn:merge></soapenv:Body></soapenv:Envelope>")
    response = emulator.http.post(f"{emulator.base_url}/services/Soap/u/62.0", data=envelope.encode(),
                                  headers={"Content-Type": "text/xml", "SOAPAction": "merge"})
    assert response.status_code == 200, response.text
    return ET.fromstring(response.content).find("s:Body/p:mergeResponse/p:result", NS)


def texts(result: ET.Element, name: str) -> list[str]:
    return [e.text for e in result.findall(f"p:{name}", NS)]


def test_merge_accounts(sf: Salesforce, emulator: Any) -> None:
    now = datetime.fromisoformat(emulator.control("GET", "clock")["now"])
    master = sf.Account.create({"Name": "Merge Master", "Website": "old.example.com"})["id"]
    dupe1 = sf.Account.create({"Name": "Merge Dupe 1"})["id"]
    dupe2 = sf.Account.create({"Name": "Merge Dupe 2"})["id"]
    contact = sf.Contact.create({"LastName": "Merged", "AccountId": dupe1})["id"]
    opportunity = sf.Opportunity.create({"Name": "Merged deal", "AccountId": dupe2,
                                         "StageName": "Prospecting", "CloseDate": "2027-01-01"})["id"]
    stamp_before = sf.Contact.get(contact)["SystemModstamp"]
    emulator.control("POST", "clock", {"advance_seconds": 61})

    result = merge(emulator, sf, "Account", master, [dupe1, dupe2], {"Phone": "555-0100"},
                   to_null=("Website",))
    assert result.find("p:success", NS).text == "true"
    assert result.find("p:id", NS).text == master
    assert texts(result, "mergedRecordIds") == [dupe1, dupe2]
    assert set(texts(result, "updatedRelatedIds")) >= {contact, opportunity}
    assert result.find("p:errors", NS) is None

    kept = sf.Account.get(master)
    assert kept["Name"] == "Merge Master" and kept["Phone"] == "555-0100" and kept["Website"] is None
    soql = f"SELECT Id, IsDeleted, MasterRecordId FROM Account WHERE Id IN ('{dupe1}', '{dupe2}')"
    gone = sf.query_all(soql, include_deleted=True)["records"]
    assert {(r["Id"], r["IsDeleted"], r["MasterRecordId"]) for r in gone} == {(dupe1, True, master),
                                                                              (dupe2, True, master)}
    moved = sf.Contact.get(contact)
    assert moved["AccountId"] == master and moved["SystemModstamp"] > stamp_before
    assert sf.Opportunity.get(opportunity)["AccountId"] == master

    emulator.control("POST", "clock", {"advance_seconds": 61})  # /deleted answers whole minutes
    deleted = sf.Account.deleted(now - timedelta(hours=1), now + timedelta(hours=1))
    assert {dupe1, dupe2} <= {r["id"] for r in deleted["deletedRecords"]}


def test_merge_contacts_with_a_15_character_id(sf: Salesforce, emulator: Any) -> None:
    master = sf.Contact.create({"LastName": "Keep"})["id"]
    dupe = sf.Contact.create({"LastName": "Fold", "Email": "fold@example.org"})["id"]
    task = sf.Task.create({"Subject": "Call", "WhoId": dupe})["id"]
    result = merge(emulator, sf, "Contact", master[:15], [dupe[:15]], {"Email": "fold@example.org"})
    assert result.find("p:success", NS).text == "true" and result.find("p:id", NS).text == master
    assert texts(result, "updatedRelatedIds") == [task]
    assert sf.Contact.get(master)["Email"] == "fold@example.org"
    assert sf.Task.get(task)["WhoId"] == master


@pytest.mark.parametrize(("case", "code"), [
    ("opportunity", "INVALID_TYPE"),
    ("three", "LIMIT_EXCEEDED"),
    ("none", "REQUIRED_FIELD_MISSING"),
    ("deleted", "ENTITY_IS_DELETED"),
    ("self", "DUPLICATE_VALUE"),
    ("bad value", "INVALID_TYPE_ON_FIELD_IN_RECORD"),
])
def test_a_refused_merge_changes_nothing(sf: Salesforce, emulator: Any, case: str, code: str) -> None:
    master = sf.Account.create({"Name": "Refused master"})["id"]
    dupes = [sf.Account.create({"Name": f"Refused dupe {n}"})["id"] for n in range(3)]
    child = sf.Contact.create({"LastName": "Stays", "AccountId": dupes[0]})["id"]
    sobject, merged, fields = "Account", dupes[:1], {"Name": "Renamed"}
    if case == "opportunity":
        sobject = "Opportunity"
    elif case == "three":
        merged = dupes
    elif case == "none":
        merged = []
    elif case == "deleted":
        sf.Account.delete(dupes[1])
        merged = dupes[:2]
    elif case == "self":
        merged = [dupes[0], master]
    else:
        fields["NumberOfEmployees"] = "many"
    result = merge(emulator, sf, sobject, master, merged, fields)
    assert result.find("p:success", NS).text == "false"
    assert result.find("p:errors/p:statusCode", NS).text == code
    assert sf.Account.get(master)["Name"] == "Refused master"
    assert sf.Account.get(dupes[0])["IsDeleted"] is False
    assert sf.Contact.get(child)["AccountId"] == dupes[0]


def test_envelopes_without_requests_or_with_an_unknown_type_are_faults(sf: Salesforce, emulator: Any) -> None:
    head = ('<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader><urn:sessionId>'
            f"{sf.session_id}</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body><urn:merge>")
    bodies = {"INVALID_FIELD": "",
              "INVALID_TYPE": "<urn:request><urn:masterRecord><urn:type>NoSuch__c</urn:type>"
                              "<urn:Id>001000000000001</urn:Id></urn:masterRecord>"
                              "<urn:recordToMergeIds>001000000000002</urn:recordToMergeIds></urn:request>"}
    for code, body in bodies.items():
        envelope = f"{head}{body}</urn:merge></soapenv:Body></soapenv:Envelope>"
        response = emulator.http.post(f"{emulator.base_url}/services/Soap/u/62.0", data=envelope.encode(),
                                      headers={"Content-Type": "text/xml", "SOAPAction": "merge"})
        assert response.status_code == 500
        assert ET.fromstring(response.content).find(".//faultcode").text == f"sf:{code}"
