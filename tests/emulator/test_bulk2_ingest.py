"""Bulk API 2.0 ingest jobs through the real emulator over HTTPS, driven by simple-salesforce and raw calls.

The tests write to the shared session org; each uses its own names and external ids so they do not
depend on one another, and the module resets the org when it is done.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding
from simple_salesforce.exceptions import SalesforceOperationError

VERSION = "62.0"
CREATE_KEYS = [
    "id",
    "operation",
    "object",
    "createdById",
    "createdDate",
    "systemModstamp",
    "state",
    "concurrencyMode",
    "contentType",
    "apiVersion",
    "contentUrl",
    "lineEnding",
    "columnDelimiter",
]
STATUS_KEYS = {
    "jobType",
    "numberRecordsProcessed",
    "numberRecordsFailed",
    "retries",
    "totalProcessingTime",
    "apiActiveProcessingTime",
    "apexProcessingTime",
}


@pytest.fixture(scope="module", autouse=True)
def reset_org_afterwards(emulator) -> Iterator[None]:
    yield
    emulator.control("POST", "reset", {})


@pytest.fixture(autouse=True)
def trust_emulator_ca(emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """requests lets REQUESTS_CA_BUNDLE override a session's `verify`; point it at the emulator's CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_path)
    yield
    emulator.control("PUT", "faults", {})


@pytest.fixture
def sf(emulator) -> Any:
    return emulator.sf(VERSION)


@pytest.fixture
def api(emulator) -> Any:
    """Raw calls: api(method, path under /services/data/vXX.X/jobs/ingest, **requests kwargs) -> Response."""
    token = emulator.token()
    http = requests.Session()
    http.verify = emulator.ca_path
    http.headers["Authorization"] = f"Bearer {token['access_token']}"
    base = f"{token['instance_url']}/services/data/v{VERSION}/jobs/ingest"

    def call(method: str, path: str = "", **kw: Any) -> requests.Response:
        return http.request(method, base + path, timeout=120, **kw)

    return call


def tag() -> str:
    """A marker unique to one test, for names and external ids."""
    return uuid.uuid4().hex[:10]


def rows(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def by(records: list[dict[str, str]], key: str) -> dict[str, dict[str, str]]:
    return {r[key]: r for r in records}


def soql(sf: Any, query: str, include_deleted: bool = False) -> list[dict[str, Any]]:
    return sf.query_all(query, include_deleted=include_deleted)["records"]


def ingest(api: Any, operation: str, obj: str, data: bytes | str, **job: Any) -> dict[str, Any]:
    """Create, upload, close and poll one job with raw calls; returns the final JobInfo."""
    created = api("POST", json={"object": obj, "operation": operation, **job})
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    put = api("PUT", f"/{job_id}/batches", data=data, headers={"Content-Type": "text/csv"})
    assert put.status_code == 201 and put.content == b""
    assert api("PATCH", f"/{job_id}", json={"state": "UploadComplete"}).status_code == 200
    return api("GET", f"/{job_id}").json()


def test_insert_reports_good_and_bad_rows_with_salesforce_results(sf, tmp_path):
    t = tag()
    data = (
        f"Name,Phone,External_Id__c,Is_Key_Account__c,NumberOfEmployees,Customer_Since__c\n"
        f"Acme {t},555-1234,A-{t},1,12,2020-02-29\n"
        f'"Quoted, {t}",,B-{t},false,,\n'
        f",555,C-{t},true,3,\n"
    )
    path = tmp_path / "accounts.csv"
    path.write_text(data, encoding="utf-8")
    (result,) = sf.bulk2.Account.insert(csv_file=str(path), wait=0)
    assert result["numberRecordsProcessed"] == 3 and result["numberRecordsFailed"] == 1
    ok = sf.bulk2.Account.get_successful_records(result["job_id"])
    assert (
        ok.splitlines()[0] == '"sf__Id","sf__Created",Name,Phone,External_Id__c,Is_Key_Account__c,'
        "NumberOfEmployees,Customer_Since__c"
    )
    assert f'"true",Acme {t},555-1234,A-{t},1,12,2020-02-29' in ok
    assert f'"true","Quoted, {t}",,B-{t},false,,' in ok  # original values echoed as uploaded
    good = by(rows(ok), "External_Id__c")
    assert {k: v["sf__Created"] for k, v in good.items()} == {f"A-{t}": "true", f"B-{t}": "true"}
    failed = sf.bulk2.Account.get_failed_records(result["job_id"])
    assert failed.splitlines()[0].startswith('"sf__Id","sf__Error",Name,Phone')
    (bad,) = rows(failed)
    assert bad["sf__Id"] == "" and bad["External_Id__c"] == f"C-{t}"
    assert bad["sf__Error"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
    assert sf.bulk2.Account.get_unprocessed_records(result["job_id"]).splitlines() == [
        "Name,Phone,External_Id__c,Is_Key_Account__c,NumberOfEmployees,Customer_Since__c"
    ]
    stored = by(
        soql(
            sf,
            "SELECT Id, External_Id__c, Phone, Is_Key_Account__c, NumberOfEmployees, "
            f"Customer_Since__c FROM Account WHERE External_Id__c LIKE '%-{t}'",
        ),
        "External_Id__c",
    )
    assert set(stored) == {f"A-{t}", f"B-{t}"}
    assert stored[f"A-{t}"]["Id"] == good[f"A-{t}"]["sf__Id"]
    assert stored[f"A-{t}"]["Is_Key_Account__c"] is True and stored[f"B-{t}"]["Is_Key_Account__c"] is False
    assert (
        stored[f"A-{t}"]["NumberOfEmployees"] == 12 and stored[f"A-{t}"]["Customer_Since__c"] == "2020-02-29"
    )


def test_insert_from_records_and_csv_file(sf, tmp_path):
    t = tag()
    (from_records,) = sf.bulk2.Contact.insert(
        records=[{"LastName": f"Rec {t}", "Email": f"r{t}@x.example"}], wait=0
    )
    path = tmp_path / "contacts.csv"
    path.write_text(
        f"LastName,EmailBouncedDate\nFile {t},2021-03-04T05:06:07.000Z\n"
        f"Offset {t},2021-03-04T05:06:07+02:00\n",
        encoding="utf-8",
    )
    (from_file,) = sf.bulk2.Contact.insert(csv_file=str(path), wait=0)
    assert from_records["numberRecordsFailed"] == from_file["numberRecordsFailed"] == 0
    assert from_file["numberRecordsProcessed"] == 2
    stored = by(
        soql(sf, f"SELECT LastName, EmailBouncedDate FROM Contact WHERE LastName LIKE '% {t}'"), "LastName"
    )
    assert stored[f"File {t}"]["EmailBouncedDate"] == "2021-03-04T05:06:07.000+0000"
    assert stored[f"Offset {t}"]["EmailBouncedDate"] == "2021-03-04T03:06:07.000+0000"
    assert f"Rec {t}" in stored


def test_update_leaves_empty_cells_unchanged_and_nulls_na(sf):
    t = tag()
    first = sf.Account.create({"Name": f"U1 {t}", "Phone": "111", "Website": "a.example"})["id"]
    second = sf.Account.create({"Name": f"U2 {t}", "Phone": "222", "Website": "b.example"})["id"]
    ids = [first, second]
    (result,) = sf.bulk2.Account.update(
        records=[
            {"Id": first, "Phone": "", "Website": "#N/A"},
            {"Id": second, "Phone": "999", "Website": ""},
        ],
        wait=0,
    )
    assert result["numberRecordsFailed"] == 0 and result["numberRecordsProcessed"] == 2
    ok = rows(sf.bulk2.Account.get_successful_records(result["job_id"]))
    assert {r["sf__Id"] for r in ok} == set(ids) and {r["sf__Created"] for r in ok} == {"false"}
    stored = by(soql(sf, f"SELECT Id, Phone, Website FROM Account WHERE Name LIKE 'U_ {t}'"), "Id")
    assert (stored[first]["Phone"], stored[first]["Website"]) == ("111", None)
    assert (stored[second]["Phone"], stored[second]["Website"]) == ("999", "b.example")


def test_upsert_updates_matches_and_creates_the_rest(sf):
    t = tag()
    existing = sf.Account.create({"Name": f"Old {t}", "External_Id__c": f"E1-{t}"})["id"]
    (result,) = sf.bulk2.Account.upsert(
        records=[
            {"External_Id__c": f"E1-{t}", "Name": f"Renamed {t}"},
            {"External_Id__c": f"E2-{t}", "Name": f"New {t}"},
        ],
        external_id_field="External_Id__c",
        wait=0,
    )
    assert result["numberRecordsFailed"] == 0
    ok = by(rows(sf.bulk2.Account.get_successful_records(result["job_id"])), "External_Id__c")
    assert ok[f"E1-{t}"]["sf__Id"] == existing and ok[f"E1-{t}"]["sf__Created"] == "false"
    assert ok[f"E2-{t}"]["sf__Created"] == "true" and ok[f"E2-{t}"]["sf__Id"].startswith("001")
    names = {
        r["External_Id__c"]: r["Name"]
        for r in soql(sf, f"SELECT Name, External_Id__c FROM Account WHERE External_Id__c LIKE '%-{t}'")
    }
    assert names == {f"E1-{t}": f"Renamed {t}", f"E2-{t}": f"New {t}"}


def test_relationship_columns_resolve_parents_by_external_id(sf):
    t = tag()
    parent = sf.Account.create({"Name": f"Parent {t}", "External_Id__c": f"P-{t}"})["id"]
    (result,) = sf.bulk2.Contact.insert(
        records=[
            {"LastName": f"Child {t}", "Account.External_Id__c": f"p-{t}"},  # external ids ignore case
            {"LastName": f"Orphan {t}", "Account.External_Id__c": f"missing-{t}"},
            {"LastName": f"Loose {t}", "Account.External_Id__c": ""},
        ],
        wait=0,
    )
    assert result["numberRecordsFailed"] == 1
    (bad,) = rows(sf.bulk2.Contact.get_failed_records(result["job_id"]))
    assert bad["LastName"] == f"Orphan {t}"
    assert bad["sf__Error"] == (
        f"INVALID_FIELD:Foreign key external ID: missing-{t} not found for field "
        "External_Id__c in entity Account:--"
    )
    stored = {
        r["LastName"]: r["AccountId"]
        for r in soql(sf, f"SELECT LastName, AccountId FROM Contact WHERE LastName LIKE '% {t}'")
    }
    assert stored == {f"Child {t}": parent, f"Loose {t}": None}


def test_delete_goes_to_the_recycle_bin_and_hard_delete_is_gone(sf):
    t = tag()
    soft = sf.Account.create({"Name": f"Soft {t}"})["id"]
    hard = sf.Account.create({"Name": f"Hard {t}"})["id"]
    (deleted,) = sf.bulk2.Account.delete(records=[{"Id": soft}], wait=0)
    (hard_deleted,) = sf.bulk2.Account.hard_delete(records=[{"Id": hard}], wait=0)
    assert deleted["numberRecordsFailed"] == hard_deleted["numberRecordsFailed"] == 0
    ok = rows(sf.bulk2.Account.get_successful_records(deleted["job_id"]))
    assert ok == [{"sf__Id": soft, "sf__Created": "false", "Id": soft}]
    everything = {
        r["Id"]: r["IsDeleted"]
        for r in soql(sf, f"SELECT Id, IsDeleted FROM Account WHERE Name LIKE '% {t}'", include_deleted=True)
    }
    assert everything == {soft: True}
    assert soql(sf, f"SELECT Id FROM Account WHERE Name LIKE '% {t}'") == []


def test_api_calls_and_bulk_batches_are_counted(sf, emulator):
    t = tag()
    before = sf.limits()["DailyBulkApiBatches"]["Remaining"]
    since = emulator.control("GET", "ledger")["last_seq"]
    records = [{"Name": f"Many {t} {i}"} for i in range(10_001)]
    (result,) = sf.bulk2.Account.insert(records=records, wait=0)
    assert result["numberRecordsProcessed"] == 10_001 and result["numberRecordsFailed"] == 0
    assert sf.limits()["DailyBulkApiBatches"]["Remaining"] == before - 2  # one batch per 10,000 records
    calls = [
        c for c in emulator.control("GET", f"ledger?since={since}")["calls"] if "/jobs/ingest" in c["path"]
    ]
    assert [c["method"] for c in calls][:3] == ["POST", "PUT", "PATCH"]
    assert calls and all(c["counted"] and c["kind"] == "bulk2" for c in calls)


def test_fault_fails_the_job_and_leaves_every_row_unprocessed(sf, emulator):
    t = tag()
    emulator.control("PUT", "faults", {"bulk_fail_objects": ["Account"]})
    with pytest.raises(SalesforceOperationError, match="InternalServerError"):
        sf.bulk2.Account.insert(records=[{"Name": f"F1 {t}"}, {"Name": f"F2 {t}"}], wait=0)
    emulator.control("PUT", "faults", {})
    (job,) = [j for j in sf.restful("jobs/ingest")["records"] if j["state"] == "Failed"][-1:]
    info = sf.restful(f"jobs/ingest/{job['id']}")
    assert info["errorMessage"].startswith("InternalServerError") and info["numberRecordsProcessed"] == 0
    unprocessed = sf.bulk2.Account.get_unprocessed_records(job["id"])
    assert rows(unprocessed) == [{"Name": f"F1 {t}"}, {"Name": f"F2 {t}"}]
    assert soql(sf, f"SELECT Id FROM Account WHERE Name LIKE 'F_ {t}'") == []


def test_job_info_shapes_and_lifecycle(api):
    created = api(
        "POST",
        json={
            "object": "account",
            "operation": "upsert",
            "externalIdFieldName": "external_id__c",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
            "contentType": "CSV",
        },
    )
    assert created.status_code == 200
    info = created.json()
    assert [k for k in info if k != "externalIdFieldName"] == CREATE_KEYS
    assert info["state"] == "Open" and info["object"] == "Account"
    assert info["externalIdFieldName"] == "External_Id__c"
    assert info["contentUrl"] == f"services/data/v{VERSION}/jobs/ingest/{info['id']}/batches"
    assert info["id"].startswith("750") and len(info["id"]) == 18
    status = api("GET", f"/{info['id']}").json()
    assert set(status) >= STATUS_KEYS and status["jobType"] == "V2Ingest" and status["state"] == "Open"
    listed = api("GET").json()
    assert info["id"] in {j["id"] for j in listed["records"]} and listed["done"] is True
    assert {j["jobType"] for j in listed["records"]} == {"V2Ingest"}
    assert api("DELETE", f"/{info['id']}").status_code == 400  # an Open job cannot be deleted
    aborted = api("PATCH", f"/{info['id']}", json={"state": "Aborted"})
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    assert api("DELETE", f"/{info['id']}").status_code == 204
    assert api("GET", f"/{info['id']}").status_code == 404


@pytest.mark.parametrize(
    ("job", "code", "message"),
    [
        (
            {"object": "NoSuchThing", "operation": "insert"},
            "INVALIDJOB",
            "InvalidJob : Unable to find object: NoSuchThing",
        ),
        ({"object": "Account", "operation": "merge"}, "INVALIDJOB", "InvalidJob : Invalid operation: merge"),
        (
            {"object": "Account", "operation": "upsert"},
            "INVALIDJOB",
            "InvalidJob : External ID was blank for Account. An External ID must be specified for upsert.",
        ),
        (
            {"object": "Account", "operation": "upsert", "externalIdFieldName": "Website"},
            "INVALIDJOB",
            "InvalidJob : Field name provided, website does not match an External ID, Salesforce Id, or "
            "indexed field for Account",
        ),
        (
            {"object": "Account", "operation": "insert", "lineEnding": "CR"},
            "INVALIDJOB",
            "Invalid value for lineEnding",
        ),
    ],
)
def test_create_errors(api, job, code, message):
    response = api("POST", json=job)
    assert response.status_code == 400
    (error,) = response.json()
    assert error["errorCode"] == code and error["message"].startswith(message)


def test_abort_keeps_rows_unprocessed_and_wrong_states_are_refused(api):
    t = tag()
    job = api("POST", json={"object": "Account", "operation": "insert"}).json()["id"]
    assert (
        api(
            "PUT",
            f"/{job}/batches",
            data=f"Name\nAb1 {t}\nAb2 {t}\n",
            headers={"Content-Type": "text/csv; charset=UTF-8"},
        ).status_code
        == 201
    )
    assert api("PATCH", f"/{job}", json={"state": "Aborted"}).json()["state"] == "Aborted"
    assert api("GET", f"/{job}/unprocessedrecords/").text == f"Name\nAb1 {t}\nAb2 {t}\n"
    assert api("GET", f"/{job}/successfulResults/").text == '"sf__Id","sf__Created",Name\n'
    for method, path, kw in [
        ("PUT", "/batches", {"data": "Name\nx\n", "headers": {"Content-Type": "text/csv"}}),
        ("PATCH", "", {"json": {"state": "UploadComplete"}}),
        ("PATCH", "", {"json": {"state": "Aborted"}}),
    ]:
        response = api(method, f"/{job}{path}", **kw)
        assert response.status_code == 400 and response.json()[0]["errorCode"] == "INVALIDJOBSTATE", (
            response.text
        )
    done = ingest(api, "insert", "Account", f"Name\nDone {t}\n")
    assert done["state"] == "JobComplete"
    refused = api("PATCH", f"/{done['id']}", json={"state": "Aborted"})
    assert refused.json()[0]["message"] == "Aborting already Completed Job not allowed"
    assert api("PATCH", f"/{done['id']}", json={"state": "Open"}).status_code == 400


def test_second_upload_makes_the_close_fail(api):
    job = api("POST", json={"object": "Account", "operation": "insert"}).json()["id"]
    for _ in range(2):
        assert (
            api(
                "PUT", f"/{job}/batches", data="Name\nTwice\n", headers={"Content-Type": "text/csv"}
            ).status_code
            == 201
        )
    closing = api("PATCH", f"/{job}", json={"state": "UploadComplete"})
    assert closing.status_code == 400
    assert closing.json()[0]["errorCode"] == "INVALIDJOB"
    assert closing.json()[0]["message"].startswith(f"Found multipe contents for job: <{job[:15]}>")
    assert api("GET", f"/{job}").json()["state"] == "Open"
    wrong_type = api("PUT", f"/{job}/batches", data="{}", headers={"Content-Type": "application/json"})
    assert wrong_type.status_code == 415


def test_delimiters_line_endings_and_quoted_newlines_round_trip(sf, api):
    t = tag()
    data = (
        f'Name|Description|External_Id__c\r\n"Pipe {t}"|"two\r\nlines | and ""quotes"""|D1-{t}\r\n'
        f"Plain {t}||D2-{t}\r\n"
    )
    info = ingest(api, "insert", "Account", data.encode(), columnDelimiter="PIPE", lineEnding="CRLF")
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 2, info
    ok = api("GET", f"/{info['id']}/successfulResults/").text
    assert ok.startswith('"sf__Id"|"sf__Created"|Name|Description|External_Id__c\r\n')
    assert f'|"true"|"Pipe {t}"|"two\r\nlines | and ""quotes"""|D1-{t}\r\n' in ok
    parsed = by(rows(ok, "|"), "External_Id__c")
    assert parsed[f"D1-{t}"]["Description"] == 'two\r\nlines | and "quotes"'
    stored = {
        r["External_Id__c"]: r["Description"]
        for r in soql(
            sf, f"SELECT External_Id__c, Description FROM Account WHERE External_Id__c LIKE 'D_-{t}'"
        )
    }
    assert stored == {f"D1-{t}": 'two\r\nlines | and "quotes"', f"D2-{t}": None}
    # simple-salesforce writes the same options
    (result,) = sf.bulk2.Account.insert(
        records=[{"Name": f"Tab {t}"}],
        column_delimiter=ColumnDelimiter.TAB,
        line_ending=LineEnding.CRLF,
        wait=0,
    )
    assert result["numberRecordsFailed"] == 0


def test_unreadable_files_fail_the_job(api):
    wrong_ending = ingest(api, "insert", "Account", b"Name\nLF only\n", lineEnding="CRLF")
    assert wrong_ending["state"] == "Failed"
    assert wrong_ending["errorMessage"] == (
        "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is CRLF"
    )
    unknown = ingest(api, "insert", "Account", b"Name,Nope__c\nx,y\n")
    assert (
        unknown["state"] == "Failed"
        and unknown["errorMessage"] == "InvalidBatch : Field name not found : Nope__c"
    )
    assert api("GET", f"/{unknown['id']}/unprocessedrecords/").text == "Name,Nope__c\nx,y\n"


def test_automations_fire_on_bulk_writes(sf):
    t = tag()
    header = ["Name", "Is_Key_Account__c", "AnnualRevenue", "Credit_Limit__c"]
    values = [(f"Key {t}", "true", "20000000", ""), (f"Small {t}", "false", "10", ""),
              (f"Bad {t}", "0", "", "-5")]
    (result,) = sf.bulk2.Account.insert(records=[dict(zip(header, v, strict=True)) for v in values], wait=0)
    assert result["numberRecordsFailed"] == 1
    (bad,) = rows(sf.bulk2.Account.get_failed_records(result["job_id"]))
    assert bad["Name"] == f"Bad {t}"
    assert bad["sf__Error"] == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION:Credit limit cannot be negative, and direct customers cannot get "
        "more than 50% discount.:Credit_Limit__c --"
    )
    stored = soql(sf, f"SELECT Name, Rating FROM Account WHERE Name LIKE '% {t}'")
    ratings = {r["Name"]: r["Rating"] for r in stored}
    assert ratings == {f"Key {t}": "Hot", f"Small {t}": None}  # before-save trigger
    tasks = soql(sf, f"SELECT Subject, What.Name FROM Task WHERE Subject LIKE 'Onboarding call: % {t}'")
    assert [(r["Subject"], r["What"]["Name"]) for r in tasks] == [(f"Onboarding call: Key {t}", f"Key {t}")]
