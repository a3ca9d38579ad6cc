"""Adding a custom field to the running org: describe changes at once, old records get the default
without their SystemModstamp moving, new records get it too; a reset takes the field away."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce


@pytest.fixture(scope="module")
def sf(emulator: Any) -> Iterator[Salesforce]:
    yield emulator.sf()
    emulator.control("POST", "reset", {})  # the org as it was started (without the added fields)


def describe(sf: Salesforce, obj: str, since: str | None = None) -> requests.Response:
    headers = dict(sf.headers, **({"If-Modified-Since": since} if since else {}))
    return sf.session.get(f"{sf.base_url}sobjects/{obj}/describe", headers=headers, timeout=60)


def describe_global(sf: Salesforce, since: str) -> requests.Response:
    return sf.session.get(f"{sf.base_url}sobjects", headers=dict(sf.headers, **{"If-Modified-Since": since}),
                          timeout=60)


def test_a_checkbox_with_a_default_reaches_old_records_without_moving_their_stamps(
        sf: Salesforce, emulator: Any) -> None:
    first = describe(sf, "Account")
    since = first.headers["Last-Modified"]
    assert describe(sf, "Account", since).status_code == 304
    assert describe_global(sf, since).status_code == 304
    old = sf.query("SELECT Id, SystemModstamp FROM Account ORDER BY Id LIMIT 5")["records"]
    added = emulator.control("POST", "fields", {"object": "Account", "name": "Is_Gold__c",
                                                "type": "boolean", "default": False})
    assert added["field"] == "Is_Gold__c"
    changed = describe(sf, "Account", since)
    assert changed.status_code == 200 and changed.headers["Last-Modified"] != since
    field = next(f for f in changed.json()["fields"] if f["name"] == "Is_Gold__c")
    assert (field["type"], field["custom"], field["defaultValue"]) == ("boolean", True, False)
    assert describe_global(sf, since).status_code == 200
    ids = "', '".join(r["Id"] for r in old)
    now = sf.query(f"SELECT Id, SystemModstamp, Is_Gold__c FROM Account WHERE Id IN ('{ids}') ORDER BY Id")
    stamps = [(r["Id"], r["SystemModstamp"]) for r in now["records"]]
    assert stamps == [(r["Id"], r["SystemModstamp"]) for r in old]
    assert {r["Is_Gold__c"] for r in now["records"]} == {False}
    created = sf.Account.create({"Name": "After The Field"})["id"]
    assert sf.Account.get(created)["Is_Gold__c"] is False
    assert sf.Account.update(created, {"Is_Gold__c": True}) == 204
    assert sf.Account.get(created)["Is_Gold__c"] is True


def test_a_text_field_from_the_cli_and_bad_requests(sf: Salesforce, emulator: Any) -> None:
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    out = subprocess.run(
        [sys.executable, "-m", "sfemu", "add-field", "Contact", "Region__c", "--type", "string",
         "--length", "20", "--default", "EMEA", "--url", emulator.base_url, "--ca", emulator.ca_path],
        capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    field = next(f for f in sf.Contact.describe()["fields"] if f["name"] == "Region__c")
    assert (field["type"], field["length"]) == ("string", 20)
    assert {r["Region__c"] for r in sf.query("SELECT Region__c FROM Contact LIMIT 20")["records"]} == {"EMEA"}
    for body, words in (({"object": "Nope", "name": "X__c"}, "unknown object"),
                        ({"object": "Contact", "name": "Region__c"}, "already exists"),
                        ({"object": "Contact", "name": "NoSuffix"}, "__c"),
                        ({"object": "Contact", "name": "Ref__c", "type": "reference"}, "cannot be added")):
        response = emulator.http.post(f"{emulator.control_url}/fields", json=body, timeout=60)
        assert response.status_code == 400 and words in response.text


def test_a_reset_takes_added_fields_away(sf: Salesforce, emulator: Any) -> None:
    emulator.control("POST", "fields", {"object": "Lead", "name": "Temp__c", "type": "int", "default": 3})
    assert any(f["name"] == "Temp__c" for f in emulator.sf().Lead.describe()["fields"])
    emulator.control("POST", "reset", {})
    assert not any(f["name"] == "Temp__c" for f in emulator.sf().Lead.describe()["fields"])
