"""Bulk API 2.0 query jobs through the real emulator over HTTPS, driven by simple-salesforce and raw calls."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding
from simple_salesforce.exceptions import SalesforceOperationError

VERSION = "62.0"
JOB_INFO_KEYS = ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
                 "concurrencyMode", "contentType", "apiVersion", "lineEnding", "columnDelimiter"]


@pytest.fixture(autouse=True)
def trust_emulator_ca(emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE override a session's `verify`; point it at the emulator's CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_path)


@pytest.fixture
def sf(emulator, trust_emulator_ca) -> Any:
    return emulator.sf(VERSION)


@pytest.fixture
def api(emulator, trust_emulator_ca) -> Iterator[Any]:
    """Raw Bulk 2.0 calls: api(method, path under /jobs/query, **requests kwargs) -> Response."""
    token = emulator.token()
    http = requests.Session()
    http.verify = emulator.ca_path
    http.headers["Authorization"] = f"Bearer {token['access_token']}"
    base = f"{token['instance_url']}/services/data/v{VERSION}/jobs/query"

    def call(method: str, path: str = "", version: str | None = None, **kw: Any) -> requests.Response:
        url = base.replace(VERSION, version) if version else base
        return http.request(method, url + path, timeout=120, **kw)

    yield call
    emulator.control("PUT", "faults", {})


def _rows(pages: Iterator[str], delimiter: str = ",") -> tuple[list[str], list[list[str]]]:
    header: list[str] = []
    rows: list[list[str]] = []
    for page in pages:
        parsed = list(csv.reader(io.StringIO(page, newline=""), delimiter=delimiter))
        header, rows = parsed[0], rows + parsed[1:]
    return header, rows


def test_query_and_query_all_page_through_every_account(sf):
    live = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    everything = sf.query("SELECT COUNT() FROM Account", include_deleted=True)["totalSize"]
    pages = list(sf.bulk2.Account.query("SELECT Id, Name, CreatedDate, IsDeleted FROM Account",
                                        max_records=97, wait=0))
    header, rows = _rows(iter(pages))
    assert header == ["Id", "Name", "CreatedDate", "IsDeleted"]
    assert len(pages) == -(-live // 97) and len(rows) == live == len({r[0] for r in rows})
    assert all(r[0].startswith("001") and len(r[0]) == 18 for r in rows)
    assert {r[3] for r in rows} == {"false"}
    assert rows[0][2].endswith("Z") and len(rows[0][2]) == len("2019-01-01T00:00:00.000Z")
    _, all_rows = _rows(sf.bulk2.Account.query_all("SELECT Id, IsDeleted FROM Account", wait=0))
    assert len(all_rows) == everything > live
    assert {r[1] for r in all_rows} == {"true", "false"}


def test_delimiter_and_line_ending_options(sf):
    (page,) = sf.bulk2.Contact.query("SELECT Id, LastName, Account.Name FROM Contact LIMIT 5", wait=0,
                                     column_delimiter=ColumnDelimiter.PIPE, line_ending=LineEnding.CRLF)
    assert page.startswith('"Id"|"LastName"|"Account.Name"\r\n') and page.count("\r\n") >= 6
    header, rows = _rows(iter([page]), "|")
    assert header == ["Id", "LastName", "Account.Name"] and len(rows) == 5


def test_job_lifecycle_locators_list_and_delete(api):
    created = api("POST", json={"operation": "query", "query": "SELECT Id, Name FROM Account"})
    assert created.status_code == 200
    info = created.json()
    assert list(info) == JOB_INFO_KEYS
    assert info["id"].startswith("750") and len(info["id"]) == 18
    assert info["state"] == "UploadComplete" and info["object"] == "Account"
    assert info["apiVersion"] == float(VERSION) and info["createdDate"].endswith("+0000")
    job = api("GET", f"/{info['id']}").json()
    assert job["state"] == "JobComplete" and job["jobType"] == "V2Query" and job["retries"] == 0
    total = job["numberRecordsProcessed"]
    assert total > 20 and "totalProcessingTime" in job and "isPkChunkingSupported" in job

    whole = api("GET", f"/{info['id']}/results")  # no maxRecords: the server picks the page size
    assert whole.headers["Sforce-Locator"] == "null"
    assert int(whole.headers["Sforce-NumberOfRecords"]) == total
    assert whole.headers["Content-Type"].startswith("text/csv")
    first = api("GET", f"/{info['id']}/results", params={"maxRecords": 10})
    locator = first.headers["Sforce-Locator"]
    assert first.headers["Sforce-NumberOfRecords"] == "10" and locator not in ("", "null")
    second = api("GET", f"/{info['id']}/results", params={"maxRecords": 10, "locator": locator})
    again = api("GET", f"/{info['id']}/results", params={"maxRecords": 10, "locator": locator})
    assert second.content == again.content and second.headers["Sforce-Locator"] != locator
    lines = whole.text.splitlines()
    assert first.text.splitlines() == lines[:11] and second.text.splitlines()[1:] == lines[11:21]

    assert api("GET", f"/{info['id']}/results", version="61.0").status_code == 409
    listed = api("GET").json()
    assert listed["done"] is True and info["id"] in {j["id"] for j in listed["records"]}
    assert all(j["jobType"] == "V2Query" for j in listed["records"])
    assert api("GET", params={"jobType": "V2Ingest"}).json()["records"] == []

    assert api("DELETE", f"/{info['id']}").status_code == 204
    assert api("GET", f"/{info['id']}").status_code == 404
    assert info["id"] not in {j["id"] for j in api("GET").json()["records"]}


def test_empty_results_and_bad_paging_parameters(api):
    soql = "SELECT Id, Name FROM Account WHERE Name = 'no such name'"
    job_id = api("POST", json={"operation": "query", "query": soql}).json()["id"]
    empty = api("GET", f"/{job_id}/results")
    assert empty.status_code == 200 and empty.text == '"Id","Name"\n'
    assert empty.headers["Sforce-Locator"] == "null" and empty.headers["Sforce-NumberOfRecords"] == "0"
    assert api("GET", f"/{job_id}/results", params={"maxRecords": "0"}).status_code == 400
    assert api("GET", f"/{job_id}/results", params={"locator": "not-a-locator!"}).status_code == 400


def test_abort_before_the_first_poll(api):
    job_id = api("POST", json={"operation": "query", "query": "SELECT Id FROM Contact"}).json()["id"]
    aborted = api("PATCH", f"/{job_id}", json={"state": "Aborted"})
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    assert api("GET", f"/{job_id}").json()["state"] == "Aborted"
    results = api("GET", f"/{job_id}/results")
    assert results.status_code == 400 and results.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"
    assert "ABORTED" in results.json()[0]["message"]
    again = api("PATCH", f"/{job_id}", json={"state": "Aborted"})
    assert again.status_code == 400 and again.json()[0]["errorCode"] == "INVALIDJOB"


@pytest.mark.parametrize(("body", "code", "text"), [
    ({"operation": "query", "query": "SELECT Id, BillingAddress FROM Account"}, "API_ERROR",
     "Selecting compound data not supported in Bulk Query"),
    ({"operation": "query", "query": "SELECT Id FROM Attachment"}, "INVALIDENTITY",
     "Entity 'Attachment' is not supported by the Bulk API."),
    ({"operation": "query", "query": "SELECT Nope__c FROM Account"}, "INVALID_FIELD", "No such column"),
    ({"operation": "query", "query": "SELECT COUNT() FROM Account"}, "API_ERROR", "not supported"),
    ({"operation": "upsert", "query": "SELECT Id FROM Account"}, "INVALIDJOB", "operation"),
    ({"operation": "query"}, "INVALIDJOB", "query"),
    ({"operation": "query", "query": "SELECT Id FROM Account", "columnDelimiter": "SPACE"}, "INVALIDJOB",
     "columnDelimiter"),
])
def test_job_creation_errors(api, body, code, text):
    response = api("POST", json=body)
    assert response.status_code == 400
    error = response.json()[0]
    assert error["errorCode"] == code and text in error["message"]


def test_faults_end_jobs_failed(api, emulator, sf):
    emulator.control("PATCH", "faults", {"bulk_fail_objects": ["Contact"], "query_timeout_objects": ["Lead"]})
    failed = api("POST", json={"operation": "query", "query": "SELECT Id FROM Contact"}).json()
    job = api("GET", f"/{failed['id']}").json()
    assert job["state"] == "Failed" and job["errorMessage"]
    timed_out = api("POST", json={"operation": "query", "query": "SELECT Id FROM Lead"}).json()
    job = api("GET", f"/{timed_out['id']}").json()
    assert job["state"] == "Failed" and "QUERY_TIMEOUT" in job["errorMessage"]
    results = api("GET", f"/{timed_out['id']}/results")
    assert results.status_code == 400 and "FAILED" in results.json()[0]["message"]
    with pytest.raises(SalesforceOperationError, match="Job failure"):
        list(sf.bulk2.Contact.query("SELECT Id FROM Contact", wait=0))
