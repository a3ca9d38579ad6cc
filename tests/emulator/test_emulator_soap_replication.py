"""SOAP getUpdated()/getDeleted() with plain envelopes as clients send them: the same ids and dates
as REST's /updated and /deleted, in the partner WSDL's result shapes (issue 14)."""

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


def call(emulator: Any, sf: Salesforce, name: str, sobject: str, start: datetime,
         end: datetime) -> tuple[int, ET.Element]:
    envelope = (
        '<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">'
        f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{sf.session_id}</urn:sessionId>"
        f"</urn:SessionHeader></soapenv:Header><soapenv:Body><urn:{name}>"
        f"<urn:sObjectType>{sobject}</urn:sObjectType>"
        f"<urn:startDate>{start.strftime('%Y-%m-%dT%H:%M:%SZ')}</urn:startDate>"
        f"<urn:endDate>{end.strftime('%Y-%m-%dT%H:%M:%SZ')}</urn:endDate>"
        f"</urn:{name}></soapenv:Body></soapenv:Envelope>")
    response = emulator.http.post(f"{emulator.base_url}/services/Soap/u/62.0", data=envelope.encode(),
                                  headers={"Content-Type": "text/xml", "SOAPAction": name})
    return response.status_code, ET.fromstring(response.content)


def rest_date(text: str) -> str:
    """REST's 2026-12-04T10:00:00.000+0000 as SOAP's 2026-12-04T10:00:00.000Z."""
    return text.replace("+0000", "Z")


def test_get_updated_and_get_deleted_answer_what_rest_answers(sf: Salesforce, emulator: Any) -> None:
    now = datetime.fromisoformat(emulator.control("GET", "clock")["now"])
    start, end = now - timedelta(days=1), now + timedelta(minutes=5)
    kept = sf.Account.create({"Name": "Soap kept"})["id"]
    gone = sf.Account.create({"Name": "Soap gone"})["id"]
    sf.Account.delete(gone)
    emulator.control("POST", "clock", {"advance_seconds": 61})  # answers cover whole minutes

    status, root = call(emulator, sf, "getUpdated", "Account", start, end)
    assert status == 200
    result = root.find("s:Body/p:getUpdatedResponse/p:result", NS)
    ids = [e.text for e in result.findall("p:ids", NS)]
    rest = sf.Account.updated(start, end)
    assert ids == rest["ids"] and kept[:15] in {i[:15] for i in ids}
    assert result.find("p:latestDateCovered", NS).text == rest_date(rest["latestDateCovered"])

    status, root = call(emulator, sf, "getDeleted", "Account", start, end)
    assert status == 200
    result = root.find("s:Body/p:getDeletedResponse/p:result", NS)
    records = [(r.find("p:id", NS).text, r.find("p:deletedDate", NS).text)
               for r in result.findall("p:deletedRecords", NS)]
    rest = sf.Account.deleted(start, end)
    assert records == [(r["id"], rest_date(r["deletedDate"])) for r in rest["deletedRecords"]]
    assert gone[:15] in {rid[:15] for rid, _ in records}
    assert result.find("p:earliestDateAvailable", NS).text == rest_date(rest["earliestDateAvailable"])
    assert result.find("p:latestDateCovered", NS).text == rest_date(rest["latestDateCovered"])


def test_bad_type_and_dates_are_faults(sf: Salesforce, emulator: Any) -> None:
    now = datetime.fromisoformat(emulator.control("GET", "clock")["now"])
    status, root = call(emulator, sf, "getDeleted", "NoSuch__c", now - timedelta(hours=1), now)
    assert status == 500
    assert root.find(".//faultcode").text == "sf:INVALID_TYPE"
    status, root = call(emulator, sf, "getUpdated", "Account", now, now - timedelta(hours=1))
    assert status == 500 and root.find(".//faultcode").text == "sf:INVALID_REPLICATION_DATE"
    status, root = call(emulator, sf, "getDeleted", "Account", now - timedelta(days=40), now)
    assert status == 500 and root.find(".//faultcode").text == "sf:INVALID_REPLICATION_DATE"
