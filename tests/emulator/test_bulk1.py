"""Bulk API 1.0 (`/services/async/...`) through the real emulator over HTTPS: simple-salesforce's
`sf.bulk` unmodified, plus raw XML/JSON calls checked against sf_api.md §5."""

from __future__ import annotations

import csv
import io
import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceGeneralError

VERSION = "62.0"
NO_RECORDS = "Records not found for this query"
NS = "{http://www.force.com/2009/06/asyncapi/dataload}"
XML_JOB = ('<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
           "<operation>{op}</operation><object>{obj}</object>{extra}<contentType>{ct}</contentType></jobInfo>")


@pytest.fixture(autouse=True)
def trust_emulator_ca(emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE override a session's `verify`; point it at the emulator's CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_path)


@pytest.fixture
def sf(emulator) -> Any:
    return emulator.sf(VERSION)


@pytest.fixture
def api(emulator) -> Any:
    """Raw Bulk 1.0 calls: api(method, path under /services/async/62.0, **requests kwargs)."""
    token = emulator.token()
    http = requests.Session()
    http.verify = emulator.ca_path
    http.headers["X-SFDC-Session"] = token["access_token"]
    base = f"{token['instance_url']}/services/async/{VERSION}"

    def call(method: str, path: str, **kw: Any) -> requests.Response:
        return http.request(method, base + path, timeout=120, **kw)

    return call


def xml(response: requests.Response) -> dict[str, str]:
    assert response.headers["Content-Type"] == "application/xml", response.text
    return {child.tag.removeprefix(NS): child.text or "" for child in ET.fromstring(response.content)}


def result_ids(api: Any, job_id: str, batch_id: str) -> list[str]:
    """The result ids of a query batch (XML `<result-list>`)."""
    return [r.text or "" for r in ET.fromstring(api("GET", f"/job/{job_id}/batch/{batch_id}/result").content)]


def tag() -> str:
    return uuid.uuid4().hex[:10]


def test_simple_salesforce_query_and_query_all_return_every_record(sf):
    live = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    everything = sf.query("SELECT COUNT() FROM Account", include_deleted=True)["totalSize"]
    assert everything > live > 0
    records = sf.bulk.Account.query("SELECT Id, Name, CreatedDate, Owner.Name FROM Account",
                                    lazy_operation=False)
    assert len(records) == live and len({r["Id"] for r in records}) == live
    first = records[0]
    assert first["attributes"]["type"] == "Account" and first["Owner"]["Name"]
    assert isinstance(first["CreatedDate"], int)  # Bulk 1.0 JSON: epoch milliseconds
    rest = sf.query(f"SELECT CreatedDate FROM Account WHERE Id = '{first['Id']}'")["records"][0]
    created = datetime.fromtimestamp(first["CreatedDate"] / 1000, UTC)
    millis = f"{created.microsecond // 1000:03d}"
    assert rest["CreatedDate"] == created.strftime("%Y-%m-%dT%H:%M:%S.") + millis + "+0000"
    deleted = sf.bulk.Account.query_all("SELECT Id, IsDeleted FROM Account", lazy_operation=False)
    assert len(deleted) == everything and any(r["IsDeleted"] for r in deleted)


def test_simple_salesforce_failed_query_raises_with_state_message(sf):
    with pytest.raises(SalesforceGeneralError, match="INVALID_FIELD"):
        sf.bulk.Account.query("SELECT Id, NoSuchField__c FROM Account", lazy_operation=False)


def test_simple_salesforce_dml_round_trip(sf):
    t = tag()
    inserted = sf.bulk.Account.insert([{"Name": f"A {t}", "External_Id__c": f"A-{t}"},
                                       {"Name": f"B {t}", "External_Id__c": f"B-{t}"},
                                       {"Phone": "555"}], batch_size=2)
    assert [r["success"] for r in inserted] == [True, True, False]
    assert inserted[0]["created"] is True and inserted[0]["id"].startswith("001")
    assert inserted[2]["errors"] == [{"fields": ["Name"], "message": "Required fields are missing: [Name]",
                                      "statusCode": "REQUIRED_FIELD_MISSING"}]
    a, b = inserted[0]["id"], inserted[1]["id"]
    updated = sf.bulk.Account.update([{"Id": a, "Phone": "111"}, {"Id": b, "Phone": None}],
                                     include_detailed_results=True)  # reads each batch's /request too
    assert all(r["success"] and not r["created"] for r in updated)
    assert [(r["Id"], r["Phone"]) for r in updated] == [(a, "111"), (b, None)]
    upserted = sf.bulk.Account.upsert([{"External_Id__c": f"A-{t}", "Name": f"A2 {t}"},
                                       {"External_Id__c": f"C-{t}", "Name": f"C {t}"}], "External_Id__c")
    assert [r["created"] for r in upserted] == [False, True] and upserted[0]["id"] == a
    found = sf.query(f"SELECT Id, Name, Phone FROM Account WHERE Name LIKE '% {t}'")["records"]
    rows = {r["Id"]: r for r in found}
    assert rows[a]["Name"] == f"A2 {t}" and rows[a]["Phone"] == "111" and rows[b]["Phone"] is None
    c = upserted[1]["id"]
    assert all(r["success"] for r in sf.bulk.Account.delete([{"Id": a}]))
    assert all(r["success"] for r in sf.bulk.Account.hard_delete([{"Id": b}, {"Id": c}]))
    left = sf.query_all(f"SELECT Id, IsDeleted FROM Account WHERE Name LIKE '% {t}'", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in left["records"]] == [(a, True)]


def test_xml_job_with_csv_batch_completes_at_first_poll(api):
    t = tag()
    created = api("POST", "/job", data=XML_JOB.format(op="insert", obj="Contact", extra="", ct="CSV"),
                  headers={"Content-Type": "application/xml; charset=UTF-8"})
    assert created.status_code == 201
    job = xml(created)
    assert list(job)[:9] == ["id", "operation", "object", "createdById", "createdDate", "systemModstamp",
                             "state", "concurrencyMode", "contentType"]
    assert job["state"] == "Open" and job["apiVersion"] == VERSION
    assert re.fullmatch(r"[-\dT:]+\.\d{3}Z", job["createdDate"])
    body = f'"FirstName","LastName","Email"\r\n"Ann","Lee {t}","a@example.com"\r\n"Bo","",""\r\n'
    added = api("POST", f"/job/{job['id']}/batch", data=body,
                headers={"Content-Type": "text/csv; charset=UTF-8"})
    assert added.status_code == 201
    batch = xml(added)
    assert batch["state"] == "Queued" and batch["jobId"] == job["id"]
    assert added.headers["Location"] == f"/services/async/{VERSION}/job/{job['id']}/batch/{batch['id']}"
    # batch-level calls answer in the job's format (XML for CSV jobs) whatever the request says
    info = xml(api("GET", f"/job/{job['id']}/batch/{batch['id']}",
                   headers={"Content-Type": "application/json"}))
    assert info["state"] == "Completed" and info["numberRecordsProcessed"] == "2"
    assert info["numberRecordsFailed"] == "1"
    result = api("GET", f"/job/{job['id']}/batch/{batch['id']}/result")
    assert result.headers["Content-Type"] == "text/csv"
    lines = result.text.splitlines()
    assert lines[0] == '"Id","Success","Created","Error"'
    assert lines[1].startswith('"003') and lines[1].endswith('","true","true",""')
    assert lines[2] == ('"","false","false","REQUIRED_FIELD_MISSING:Required fields are missing: '
                        '[LastName]:LastName --"')
    close = '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><state>Closed</state></jobInfo>'
    closed = xml(api("POST", f"/job/{job['id']}", data=close, headers={"Content-Type": "application/xml"}))
    assert closed["state"] == "Closed" and closed["numberBatchesCompleted"] == "1"
    refused = api("POST", f"/job/{job['id']}/batch", data=body, headers={"Content-Type": "text/csv"})
    assert refused.status_code == 400 and xml(refused)["exceptionCode"] == "InvalidJobState"
    listed = ET.fromstring(api("GET", f"/job/{job['id']}/batch").content)
    assert listed.tag == f"{NS}batchInfoList" and len(listed) == 1


def test_errors_use_the_async_api_shape_in_the_callers_format(api, emulator):
    missing = api("GET", "/job/750000000000000AAA")
    assert missing.status_code == 404
    assert xml(missing) == {"exceptionCode": "InvalidJob", "exceptionMessage": "Unable to find object: "
                            "750000000000000AAA"}
    bad = api("POST", "/job", json={"operation": "insert", "object": "NoSuchThing__c", "contentType": "JSON"})
    assert bad.headers["Content-Type"] == "application/json"
    assert bad.json()["exceptionCode"] == "InvalidEntity"
    nosession = requests.post(f"{emulator.base_url}/services/async/{VERSION}/job", verify=emulator.ca_path,
                              data=XML_JOB.format(op="query", obj="Account", extra="", ct="CSV"),
                              headers={"X-SFDC-Session": "nope", "Content-Type": "application/xml"})
    assert nosession.status_code == 400 and xml(nosession)["exceptionCode"] == "InvalidSessionId"
    upsert = api("POST", "/job", data=XML_JOB.format(op="upsert", obj="Account", extra="", ct="CSV"),
                 headers={"Content-Type": "application/xml"})
    assert xml(upsert)["exceptionCode"] == "InvalidJob"


def _json_query_job(api, soql: str, **headers: str) -> tuple[str, dict[str, Any]]:
    job = api("POST", "/job", json={"operation": "query", "object": "Account", "contentType": "CSV"},
              headers={"Sforce-Disable-Batch-Retry": "true", **headers})
    assert job.status_code == 201 and job.headers["Content-Type"] == "application/json", job.text
    job_id = job.json()["id"]
    added = api("POST", f"/job/{job_id}/batch", data=soql, headers={"Content-Type": "text/csv"})
    assert added.status_code == 201
    return job_id, xml(added)


def test_csv_query_result_list_and_files(api, sf):
    live = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    job_id, batch = _json_query_job(api, "SELECT Id, Name, Owner.Name FROM Account")
    results = ET.fromstring(api("GET", f"/job/{job_id}/batch/{batch['id']}/result").content)
    assert results.tag == f"{NS}result-list"
    ids = [r.text for r in results]
    assert len(ids) == 1 and ids[0].startswith("752")
    page = api("GET", f"/job/{job_id}/batch/{batch['id']}/result/{ids[0]}?format=json")
    assert page.headers["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(page.text)))
    assert rows[0] == ["Id", "Name", "Owner.Name"] and len(rows) == live + 1
    empty_job, empty = _json_query_job(api, "SELECT Id FROM Account WHERE Name = 'no such name at all'")
    (rid,) = result_ids(api, empty_job, empty["id"])
    assert api("GET", f"/job/{empty_job}/batch/{empty['id']}/result/{rid}").text == NO_RECORDS


def test_pk_chunking_splits_the_query_into_id_range_batches(api, sf):
    everything = sf.query("SELECT COUNT() FROM Account", include_deleted=True)["totalSize"]
    live = {r["Id"] for r in sf.query_all("SELECT Id FROM Account")["records"]}
    job_id, original = _json_query_job(api, "SELECT Name FROM Account",
                                       **{"Sforce-Enable-PKChunking": "chunkSize=300;"})
    assert original["state"] == "Not Processed"
    listed = ET.fromstring(api("GET", f"/job/{job_id}/batch").content)
    infos = [{c.tag.removeprefix(NS): c.text for c in b} for b in listed]
    assert infos[0]["id"] == original["id"] and infos[0]["state"] == "Not Processed"
    chunks = infos[1:]
    assert len(chunks) == -(-everything // 300) and all(b["state"] == "Completed" for b in chunks)
    seen: list[str] = []
    for b in chunks:
        (rid,) = result_ids(api, job_id, b["id"])
        text = api("GET", f"/job/{job_id}/batch/{b['id']}/result/{rid}").text
        if text != NO_RECORDS:
            seen += [row[0] for row in csv.reader(io.StringIO(text))][1:]
        assert int(b["numberRecordsProcessed"]) <= 300
    assert len(seen) == len(live)
    # rows that do not come in Id order are cut into the same chunks
    sorted_job, _ = _json_query_job(api, "SELECT Name FROM Account ORDER BY Name DESC",
                                    **{"Sforce-Enable-PKChunking": "chunkSize=300"})
    resorted = ET.fromstring(api("GET", f"/job/{sorted_job}/batch").content)
    counts = [b.find(f"{NS}numberRecordsProcessed").text for b in resorted][1:]
    assert counts == [b["numberRecordsProcessed"] for b in chunks]
    bad = api("POST", "/job", json={"operation": "query", "object": "Account", "contentType": "CSV"},
              headers={"Sforce-Enable-PKChunking": "chunkSize=999999"})
    assert bad.status_code == 400 and bad.json()["exceptionCode"] == "InvalidJob"


def test_xml_content_job_inserts_records_and_answers_in_xml(api, sf):
    t = tag()
    job = xml(api("POST", "/job", data=XML_JOB.format(op="insert", obj="Account", extra="", ct="XML"),
                  headers={"Content-Type": "application/xml"}))
    records = ('<sObjects xmlns="http://www.force.com/2009/06/asyncapi/dataload" '
               'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
               f'<sObject><Name>X {t}</Name><Phone xsi:nil="true"/></sObject>'
               "<sObject><Phone>1</Phone></sObject></sObjects>")
    batch = xml(api("POST", f"/job/{job['id']}/batch", data=records,
                    headers={"Content-Type": "application/xml"}))
    result = api("GET", f"/job/{job['id']}/batch/{batch['id']}/result")
    assert result.headers["Content-Type"] == "application/xml"
    good, bad = ET.fromstring(result.content)
    assert good.find(f"{NS}success").text == "true" and good.find(f"{NS}id").text.startswith("001")
    assert bad.find(f"{NS}success").text == "false"
    assert bad.find(f"{NS}errors/{NS}statusCode").text == "REQUIRED_FIELD_MISSING"
    assert sf.query(f"SELECT Phone FROM Account WHERE Name = 'X {t}'")["records"][0]["Phone"] is None
    query = xml(api("POST", "/job", data=XML_JOB.format(op="query", obj="Account", extra="", ct="XML"),
                    headers={"Content-Type": "application/xml"}))
    qbatch = xml(api("POST", f"/job/{query['id']}/batch", data=f"SELECT Name, Owner.Name FROM Account "
                     f"WHERE Name = 'X {t}'", headers={"Content-Type": "text/csv"}))
    (rid,) = result_ids(api, query["id"], qbatch["id"])
    page = ET.fromstring(api("GET", f"/job/{query['id']}/batch/{qbatch['id']}/result/{rid}").content)
    (record,) = page
    assert page.tag == f"{NS}queryResult" and record.find(f"{NS}Name").text == f"X {t}"
    assert record.find(f"{NS}Owner/{NS}type").text == "User" and record.find(f"{NS}Owner/{NS}Name").text


def test_json_job_abort_leaves_queued_batches_not_processed(api):
    job = api("POST", "/job", json={"operation": "insert", "object": "Account", "contentType": "JSON",
                                    "concurrencyMode": 1}).json()
    assert job["concurrencyMode"] == "Serial" and job["apiVersion"] == float(VERSION)
    batch = api("POST", f"/job/{job['id']}/batch", json=[{"Name": "never written"}]).json()
    assert batch["state"] == "Queued" and batch["stateMessage"] is None
    aborted = api("POST", f"/job/{job['id']}", json={"state": "Aborted"}).json()
    assert aborted["state"] == "Aborted"
    info = api("GET", f"/job/{job['id']}/batch/{batch['id']}").json()
    assert info["state"] == "NotProcessed"
    assert api("GET", f"/job/{job['id']}/batch").json()["batchInfo"][0]["id"] == batch["id"]
    again = api("POST", f"/job/{job['id']}", json={"state": "Closed"})
    assert again.status_code == 400 and again.json()["exceptionCode"] == "InvalidJobState"


def test_hostile_bodies_are_refused_without_side_effects(api, sf):
    as_xml = {"Content-Type": "application/xml"}
    broken = api("POST", "/job", data=b"<jobInfo><operation>insert", headers=as_xml)
    assert broken.status_code == 400 and xml(broken)["exceptionCode"] == "ClientInputError"
    bomb = (b'<?xml version="1.0"?><!DOCTYPE j [<!ENTITY a "aaaaaaaaaa">]>'
            b'<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>&a;</operation></jobInfo>')
    refused = api("POST", "/job", data=bomb, headers=as_xml)
    assert refused.status_code == 400 and xml(refused)["exceptionCode"] == "ClientInputError"
    before = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    job = api("POST", "/job", json={"operation": "insert", "object": "Account", "contentType": "JSON"}).json()
    batch = api("POST", f"/job/{job['id']}/batch", data=b'[{"Name": "half',
                headers={"Content-Type": "application/json"}).json()
    info = api("GET", f"/job/{job['id']}/batch/{batch['id']}").json()
    assert info["state"] == "Failed"
    assert info["stateMessage"].startswith("InvalidBatch : Failed to parse JSON")
    result = api("GET", f"/job/{job['id']}/batch/{batch['id']}/result")
    assert result.status_code == 400 and result.json()["exceptionCode"] == "InvalidBatch"
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == before
