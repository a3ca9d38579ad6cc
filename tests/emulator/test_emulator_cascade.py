"""Salesforce's standard cascade and restrict rules under Account, through simple-salesforce and a
plain SOAP envelope (issue 14).

Deleting an Account deletes its Contacts and Opportunities (describe: `cascadeDelete: true`) and an
undelete brings them back; an Account with Cases cannot be deleted (`restrictedDelete: true`). The
generated and churned org never holds live children of a deleted Account: CumulusCI refuses to
extract such an org, and a real one cannot contain it.
"""

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


def live(sf: Salesforce, soql: str) -> set[str]:
    return {r["Id"] for r in sf.query_all(soql)["records"]}


def soap_undelete(emulator: Any, sf: Salesforce, ids: list[str]) -> str:
    envelope = (
        '<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">'
        f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{sf.session_id}</urn:sessionId>"
        "</urn:SessionHeader></soapenv:Header><soapenv:Body><urn:undelete>"
        + "".join(f"<urn:ids>{i}</urn:ids>" for i in ids)
        + "</urn:undelete></soapenv:Body></soapenv:Envelope>")
    response = emulator.http.post(f"{emulator.base_url}/services/Soap/u/62.0", data=envelope.encode(),
                                  headers={"Content-Type": "text/xml", "SOAPAction": "undelete"})
    assert response.status_code == 200, response.text
    return response.text


def test_describe_states_the_rules(sf: Salesforce) -> None:
    children = {r["relationshipName"]: r for r in sf.Account.describe()["childRelationships"]}
    assert children["Contacts"]["cascadeDelete"] and children["Opportunities"]["cascadeDelete"]
    assert children["Cases"]["restrictedDelete"] and not children["Cases"]["cascadeDelete"]


def test_deleting_an_account_takes_its_contacts_and_opportunities_and_undelete_brings_them(
        sf: Salesforce, emulator: Any) -> None:
    account = sf.Account.create({"Name": "Cascade Ltd"})["id"]
    contact = sf.Contact.create({"LastName": "Kid", "AccountId": account})["id"]
    deal = sf.Opportunity.create({"Name": "Deal", "AccountId": account, "StageName": "Prospecting",
                                  "CloseDate": "2027-01-31"})["id"]
    loner = sf.Contact.create({"LastName": "Private"})["id"]
    sf.Account.delete(account)
    assert not live(sf, f"SELECT Id FROM Contact WHERE Id IN ('{contact}', '{loner}')") - {loner}
    assert not live(sf, f"SELECT Id FROM Opportunity WHERE Id = '{deal}'")
    binned = sf.query_all(f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{contact}'",
                          include_deleted=True)["records"]
    assert binned and binned[0]["IsDeleted"] is True
    answer = soap_undelete(emulator, sf, [account])
    assert "<success>true</success>" in answer
    assert live(sf, f"SELECT Id FROM Contact WHERE AccountId = '{account}'") == {contact}
    assert live(sf, f"SELECT Id FROM Opportunity WHERE AccountId = '{account}'") == {deal}


def test_an_account_with_cases_cannot_be_deleted(sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "Restricted Inc"})["id"]
    sf.Case.create({"Subject": "Help", "AccountId": account})
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Account.delete(account)
    assert refused.value.content[0]["errorCode"] == "DELETE_FAILED"
    assert live(sf, f"SELECT Id FROM Account WHERE Id = '{account}'") == {account}


def orphans(sf: Salesforce) -> dict[str, int]:
    """Live children whose Account is in the recycle bin (or gone), per child object."""
    deleted = {r["Id"] for r in sf.query_all("SELECT Id FROM Account WHERE IsDeleted = true",
                                             include_deleted=True)["records"]}
    accounts = live(sf, "SELECT Id FROM Account")
    out = {}
    for child in ("Contact", "Opportunity", "Case"):
        parents = [r["AccountId"] for r in sf.query_all(
            f"SELECT AccountId FROM {child} WHERE AccountId != null")["records"]]
        out[child] = sum(1 for p in parents if p in deleted or p not in accounts)
    return out


def test_the_generated_and_churned_org_has_no_live_children_of_deleted_accounts(
        sf: Salesforce, emulator: Any) -> None:
    assert orphans(sf) == {"Contact": 0, "Opportunity": 0, "Case": 0}
    emulator.control("POST", "churn", {"days": 2})
    # The clock moved two days: a new session.
    assert orphans(emulator.sf()) == {"Contact": 0, "Opportunity": 0, "Case": 0}
