"""SOSL through simple-salesforce's search()/quick_search() and raw /parameterizedSearch calls:
whole-word matching, wildcards, AND/OR/NOT, phrases, search groups, RETURNING with fields, WHERE,
ORDER BY and LIMIT, deleted records left out, and Salesforce's error codes (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest


@pytest.fixture(scope="module")
def sf(emulator: Any) -> Iterator[Salesforce]:
    yield emulator.sf()
    emulator.control("POST", "reset", {})  # the org as it was started, for the other modules


@pytest.fixture(scope="module")
def data(sf: Salesforce) -> dict[str, str]:
    """A few records whose words appear nowhere in generated data."""
    ids = {
        "alpha": sf.Account.create({"Name": "Quuxbarn Alpha Holdings", "Industry": "Banking",
                                    "Phone": "(415) 555-0199"})["id"],
        "beta": sf.Account.create({"Name": "Quuxbarn Beta", "Industry": "Energy",
                                   "Description": "frobnicate widgets daily"})["id"],
        "gamma": sf.Account.create({"Name": "Quuxbarnish Gamma", "Industry": "Banking"})["id"],
        "gone": sf.Account.create({"Name": "Quuxbarn Deleted"})["id"],
        "jane": sf.Contact.create({"LastName": "Quuxbarn", "FirstName": "Jane",
                                   "Email": "jane.zentroph@example.org"})["id"],
        "lead": sf.Lead.create({"LastName": "Vextor", "Company": "Quuxbarn Leads"})["id"],
        "case": sf.Case.create({"Subject": "Quuxbarn printer on fire"})["id"],
        "project": sf.Project__c.create({"Name": "Quuxbarn rollout"})["id"],
    }
    sf.Account.delete(ids["gone"])
    return ids


def found(result: dict[str, Any]) -> list[str]:
    """Record ids in order, from each record's url (RETURNING without Id returns no Id field)."""
    return [r["attributes"]["url"].rsplit("/", 1)[-1] for r in result["searchRecords"]]


def test_search_returns_matching_records_with_their_fields(sf: Salesforce, data: dict[str, str]) -> None:
    result = sf.search("FIND {Quuxbarn} IN ALL FIELDS RETURNING Account(Id, Name, Industry "
                       "WHERE Industry = 'Banking' ORDER BY Name DESC LIMIT 5), Contact(Id, Email)")
    records = result["searchRecords"]
    assert [r["Id"] for r in records] == [data["alpha"], data["jane"]]  # Quuxbarnish is another word
    assert records[0]["attributes"] == {"type": "Account",
                                        "url": f"/services/data/v62.0/sobjects/Account/{data['alpha']}"}
    assert records[0]["Name"] == "Quuxbarn Alpha Holdings" and records[0]["Industry"] == "Banking"
    assert records[1]["Email"] == "jane.zentroph@example.org" and set(records[1]) == {"attributes", "Id",
                                                                                      "Email"}


def test_quick_search_finds_ids_everywhere_but_deleted(sf: Salesforce, data: dict[str, str]) -> None:
    result = sf.quick_search("Quuxbarn")
    ids = found(result)
    assert set(ids) == {data[k] for k in ("alpha", "beta", "jane", "lead", "case", "project")}
    assert all(set(r) == {"attributes", "Id"} for r in result["searchRecords"])


def test_wildcards_operators_and_phrases(sf: Salesforce, data: dict[str, str]) -> None:
    def ids(sosl: str) -> set[str]:
        return set(found(sf.search(sosl)))

    assert ids("FIND {Quuxbarn*} RETURNING Account") == {data["alpha"], data["beta"], data["gamma"]}
    assert ids("FIND {Quuxbar?} RETURNING Account") == {data["alpha"], data["beta"]}
    assert ids("FIND {Quuxbarn AND Alpha} RETURNING Account") == {data["alpha"]}
    assert ids("FIND {Quuxbarn Beta} RETURNING Account") == {data["beta"]}  # implicit AND
    assert ids("FIND {Alpha OR Gamma} RETURNING Account(Name WHERE Name LIKE 'Quux%')") == {
        data["alpha"], data["gamma"]}
    assert ids("FIND {Quuxbarn AND NOT Alpha} RETURNING Account") == {data["beta"]}
    assert ids('FIND {"Quuxbarn Alpha"} RETURNING Account') == {data["alpha"]}
    assert ids('FIND {"Alpha Quuxbarn"} RETURNING Account') == set()
    assert ids("FIND {frobnicate} RETURNING Account") == {data["beta"]}  # a text area


def test_search_groups(sf: Salesforce, data: dict[str, str]) -> None:
    def ids(sosl: str) -> set[str]:
        return set(found(sf.search(sosl)))

    assert ids("FIND {frobnicate} IN NAME FIELDS RETURNING Account") == set()
    assert ids("FIND {Jane} IN NAME FIELDS RETURNING Contact") >= {data["jane"]}
    assert ids("FIND {zentroph} IN EMAIL FIELDS RETURNING Contact, Account") == {data["jane"]}
    assert ids("FIND {Vextor} IN NAME FIELDS RETURNING Lead, Case") == {data["lead"]}
    assert ids("FIND {printer} RETURNING Lead, Case, Project__c") == {data["case"]}
    assert ids("FIND {zentroph} IN PHONE FIELDS RETURNING Contact") == set()
    assert ids("FIND {4155550199} IN PHONE FIELDS RETURNING Account") == {data["alpha"]}


def test_overall_limit(sf: Salesforce, data: dict[str, str]) -> None:
    result = sf.search("FIND {Quuxbarn} RETURNING Account(Name ORDER BY Name), Contact, Lead LIMIT 2")
    assert found(result) == [data["alpha"], data["beta"]]


def test_parameterized_search_get_and_post(sf: Salesforce, emulator: Any, data: dict[str, str]) -> None:
    url = f"{sf.base_url}parameterizedSearch/"
    response = sf.session.get(url, headers=sf.headers, params={
        "q": "Quuxbarn", "sobject": ["Account", "Contact"], "Account.fields": "Id,Name",
        "Account.where": "Industry = 'Energy'", "Contact.limit": "1"})
    assert response.status_code == 200, response.text
    records = response.json()["searchRecords"]
    assert [r["Id"] for r in records] == [data["beta"], data["jane"]]
    assert records[0]["Name"] == "Quuxbarn Beta"

    response = sf.session.post(url, headers=sf.headers, json={
        "q": "Quuxbarn", "in": "NAME", "fields": ["Id", "Name"], "overallLimit": 10,
        "sobjects": [{"name": "Account", "where": "Industry = 'Banking'"}, {"name": "Contact"}]})
    assert response.status_code == 200, response.text
    records = response.json()["searchRecords"]
    assert {r["Id"] for r in records} == {data["alpha"], data["jane"]}
    assert all("Name" in r for r in records)


@pytest.mark.parametrize(("sosl", "code"), [
    ("Quuxbarn", "MALFORMED_SEARCH"),
    ("FIND Quuxbarn", "MALFORMED_SEARCH"),
    ("FIND {Quuxbarn", "MALFORMED_SEARCH"),
    ("FIND {Quuxbarn} RETURNING", "MALFORMED_SEARCH"),
    ("FIND {Quuxbarn} IN EVERY FIELDS", "MALFORMED_SEARCH"),
    ("FIND {Quuxbarn} LIMIT ten", "MALFORMED_SEARCH"),
    ("FIND {(Quuxbarn}", "MALFORMED_SEARCH"),
    ("FIND {a}", "INVALID_SEARCH"),
    ("FIND {Quuxbarn} RETURNING NoSuch__c", "INVALID_TYPE"),
    ("FIND {Quuxbarn} RETURNING RecordType", "INVALID_TYPE"),  # describe says searchable: false
    ("FIND {Quuxbarn} RETURNING Account(NoSuchField__c)", "INVALID_FIELD"),
])
def test_malformed_searches_get_salesforce_codes(sf: Salesforce, sosl: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.search(sosl)
    assert raised.value.status == 400
    assert raised.value.content[0]["errorCode"] == code


def test_parameterized_search_errors(sf: Salesforce) -> None:
    url = f"{sf.base_url}parameterizedSearch/"
    response = sf.session.get(url, headers=sf.headers, params={"sobject": "Account"})
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "MALFORMED_SEARCH"
    response = sf.session.post(url, headers=sf.headers, json={"q": "Quuxbarn", "fields": ["Name; DROP"]})
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "INVALID_FIELD"
