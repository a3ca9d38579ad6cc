"""The REST API of the real emulator over HTTPS, driven by unmodified simple-salesforce 1.12.10."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound
from starlette.testclient import TestClient
from test_emulator_auth import login_session, security_token

from sfemu.app import create_app
from sfemu.org import EmulatedOrg, OrgSettings

NOT_FOUND = {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
LOCATOR_URL = re.compile(r"^/services/data/v59\.0/(query|queryAll)/01g[0-9A-Za-z]{15}-(\d+)$")


@pytest.fixture(scope="module")
def sf(emulator: Any) -> Salesforce:
    """Logged in the default simple-salesforce way (SOAP, username + password + token), API 59.0."""
    return Salesforce(username=emulator.username, password=emulator.password,
                      security_token=security_token(emulator), session=login_session(emulator))


def raw(sf: Salesforce, method: str, path: str, **kw: Any) -> requests.Response:
    """A request with sf's session and headers, without simple-salesforce's error mapping."""
    return sf.session.request(method, f"https://{sf.sf_instance}{path}", headers={**sf.headers,
                              **kw.pop("headers", {})}, timeout=60, **kw)


def count(sf: Salesforce, obj: str) -> int:
    return sf.query(f"SELECT COUNT() FROM {obj}")["totalSize"]


def emulator_now(emulator: Any) -> datetime:
    return datetime.fromisoformat(emulator.control("GET", "clock")["now"])


# --- versions, resources, describe ------------------------------------------------------------------

def test_versions_ascending_with_release_labels(emulator: Any) -> None:
    response = requests.get(f"{emulator.base_url}/services/data/", verify=emulator.ca_path, timeout=60)
    versions = response.json()
    numbers = [float(v["version"]) for v in versions]
    assert numbers == sorted(numbers) and versions[-1]["version"] == "66.0"
    by_version = {v["version"]: v for v in versions}
    assert by_version["59.0"] == {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}
    assert by_version["62.0"]["label"] == "Winter '25" and by_version["66.0"]["label"] == "Spring '26"
    assert {f"{v}.0" for v in range(59, 67)} <= set(by_version)


def test_resources(sf: Salesforce) -> None:
    resources = sf.restful("")
    assert resources["sobjects"] == "/services/data/v59.0/sobjects"
    assert resources["query"] == "/services/data/v59.0/query" and resources["jobs"].endswith("/jobs")
    identity = rf"^https://{re.escape(sf.sf_instance)}/id/00D\w{{15}}/005\w{{15}}$"
    assert re.match(identity, resources["identity"])


def test_describe_global_and_if_modified_since(sf: Salesforce) -> None:
    described = sf.describe()
    assert described["encoding"] == "UTF-8" and described["maxBatchSize"] == 200
    names = {o["name"] for o in described["sobjects"]}
    assert {"Account", "Contact", "Attachment"} <= names
    first = raw(sf, "GET", "/services/data/v59.0/sobjects")
    stamp = first.headers["Last-Modified"]
    again = raw(sf, "GET", "/services/data/v59.0/sobjects", headers={"If-Modified-Since": stamp})
    assert again.status_code == 304 and again.content == b""
    older = raw(sf, "GET", "/services/data/v59.0/sobjects",
                headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert older.status_code == 200


def test_sobject_describe_and_metadata(sf: Salesforce) -> None:
    describe = sf.Account.describe()
    assert describe["name"] == "Account" and describe["keyPrefix"] == "001"
    assert {"fields", "childRelationships", "recordTypeInfos", "urls"} <= set(describe)
    assert all("compoundFieldName" in f for f in describe["fields"])
    response = raw(sf, "GET", "/services/data/v59.0/sobjects/Account/describe/")
    assert response.status_code == 200 and "Last-Modified" in response.headers
    cached = raw(sf, "GET", "/services/data/v59.0/sobjects/Account/describe",
                 headers={"If-Modified-Since": response.headers["Last-Modified"]})
    assert cached.status_code == 304
    meta = sf.Account.metadata()
    assert meta["objectDescribe"]["name"] == "Account"
    assert 1 <= len(meta["recentItems"]) <= 5
    item = meta["recentItems"][0]
    assert item["attributes"]["type"] == "Account" and item["Id"].startswith("001") and "Name" in item


def test_unknown_object_is_404_not_found(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.Nope__c.describe()
    assert err.value.content == [NOT_FOUND]


# --- query ------------------------------------------------------------------------------------------

def test_query_records_and_count(sf: Salesforce) -> None:
    result = sf.query("SELECT Id, Name, BillingAddress FROM Account ORDER BY Id LIMIT 5")
    assert result["totalSize"] == 5 and result["done"] is True and "nextRecordsUrl" not in result
    record = result["records"][0]
    url = f"/services/data/v59.0/sobjects/Account/{record['Id']}"
    assert record["attributes"] == {"type": "Account", "url": url}
    assert set(record) == {"attributes", "Id", "Name", "BillingAddress"}
    counted = sf.query("SELECT COUNT() FROM Account")
    assert counted["done"] is True and counted["records"] == [] and counted["totalSize"] > 5


def test_query_all_pages_with_batch_size(sf: Salesforce) -> None:
    total = count(sf, "Task")
    assert total > 200
    headers = {"Sforce-Query-Options": "batchSize=200"}
    first = sf.query("SELECT Id, Subject FROM Task", headers=headers)
    assert first["totalSize"] == total and first["done"] is False and len(first["records"]) == 200
    m = LOCATOR_URL.match(first["nextRecordsUrl"])
    assert m and m.group(1) == "query" and m.group(2) == "200"
    everything = sf.query_all("SELECT Id, Subject FROM Task", headers=headers)
    ids = [r["Id"] for r in everything["records"]]
    assert everything["totalSize"] == total == len(ids) == len(set(ids))
    tiny = sf.query("SELECT Id FROM Task", headers={"Sforce-Query-Options": "batchSize=5"})
    assert len(tiny["records"]) == 200  # below the minimum: Salesforce uses 200


def test_query_more_by_locator_by_url_and_doubled_path(sf: Salesforce) -> None:
    first = sf.query("SELECT Id FROM Contact ORDER BY Id", headers={"Sforce-Query-Options": "batchSize=200"})
    url = first["nextRecordsUrl"]
    locator = url.rsplit("/", 1)[1]
    by_url = sf.query_more(url, identifier_is_url=True)
    by_locator = sf.query_more(locator)
    doubled = sf.query_more(url)  # dlt's form: .../query//services/data/v59.0/query/01g...-200
    assert by_url == by_locator == doubled
    assert by_url["done"] is True
    assert by_url["records"][0]["Id"] > first["records"][-1]["Id"]
    assert len(first["records"]) + len(by_url["records"]) == first["totalSize"]


def test_query_all_include_deleted_returns_recycle_bin_rows(sf: Salesforce) -> None:
    live = sf.query_all("SELECT Id, IsDeleted FROM Account")["records"]
    every = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)
    deleted = [r for r in every["records"] if r["IsDeleted"]]
    assert deleted and not any(r["IsDeleted"] for r in live)
    assert every["totalSize"] == len(live) + len(deleted)
    first = sf.query("SELECT Id FROM Account", include_deleted=True,
                     headers={"Sforce-Query-Options": "batchSize=200"})
    if not first["done"]:
        assert LOCATOR_URL.match(first["nextRecordsUrl"]).group(1) == "queryAll"


def test_query_errors(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query_more("01g5J000000zzzzQAA-200")
    assert err.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    missing = raw(sf, "GET", "/services/data/v59.0/query")
    assert missing.status_code == 400 and missing.json()[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Nope__c FROM Account")
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"


# --- single records ---------------------------------------------------------------------------------

def test_record_get_by_id(sf: Salesforce) -> None:
    rid = sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 1")["records"][0]["Id"]
    record = sf.Account.get(rid)
    assert record["Id"] == rid and record["attributes"]["type"] == "Account"
    assert {"Name", "BillingAddress", "BillingCity", "SystemModstamp", "OwnerId"} <= set(record)
    assert sf.Account.get(rid[:15])["Id"] == rid
    some = raw(sf, "GET", f"/services/data/v59.0/sobjects/Account/{rid}", params={"fields": "Name,Type"})
    assert set(some.json()) == {"attributes", "Name", "Type", "Id"}
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(rid)  # an Account id under Contact
    deleted = sf.query("SELECT Id FROM Account WHERE IsDeleted = true LIMIT 1", include_deleted=True)
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.Account.get(deleted["records"][0]["Id"])
    assert err.value.content[0]["errorCode"] == "NOT_FOUND"


def test_get_by_external_id(sf: Salesforce) -> None:
    soql = "SELECT Id, External_Id__c FROM Account WHERE External_Id__c != null LIMIT 1"
    row = sf.query(soql)["records"][0]
    found = sf.Account.get_by_custom_id("External_Id__c", row["External_Id__c"])
    assert found["Id"] == row["Id"] and found["External_Id__c"] == row["External_Id__c"]
    assert sf.Account.get_by_custom_id("External_Id__c", row["External_Id__c"].lower())["Id"] == row["Id"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get_by_custom_id("External_Id__c", "no such value")
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.Account.get_by_custom_id("Namez", "x")
    message = "Provided external ID field does not exist or is not accessible: Namez"
    assert err.value.content == [{"message": message, "errorCode": "NOT_FOUND"}]


def test_blob_bodies_are_raw_bytes(sf: Salesforce) -> None:
    att = sf.query("SELECT Id, Body, BodyLength, ContentType FROM Attachment LIMIT 1")["records"][0]
    assert att["Body"] == f"/services/data/v59.0/sobjects/Attachment/{att['Id']}/Body"
    response = raw(sf, "GET", att["Body"])
    assert response.status_code == 200 and len(response.content) == att["BodyLength"]
    assert response.headers["content-type"].startswith(att["ContentType"])
    version = sf.query("SELECT Id, Checksum FROM ContentVersion LIMIT 1")["records"][0]
    data = sf.ContentVersion.get_base64(version["Id"], "VersionData")  # raw bytes despite the name
    assert hashlib.md5(data).hexdigest() == version["Checksum"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Attachment.get_base64(att["Id"], "Name")  # not a blob field


# --- replication helpers ----------------------------------------------------------------------------

def test_updated_matches_system_modstamp_window(sf: Salesforce, emulator: Any) -> None:
    now = emulator_now(emulator)
    start = (now - timedelta(days=29)).replace(second=0, microsecond=0)
    result = sf.Account.updated(start, now)
    covered = datetime.strptime(result["latestDateCovered"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert covered <= now and now - covered < timedelta(minutes=2)
    soql_start, soql_end = start.strftime("%Y-%m-%dT%H:%M:%SZ"), covered.strftime("%Y-%m-%dT%H:%M:%SZ")
    expected = sf.query_all(f"SELECT Id FROM Account WHERE SystemModstamp >= {soql_start} "
                            f"AND SystemModstamp < {soql_end}")["records"]
    assert sorted(result["ids"]) == sorted(r["Id"] for r in expected) and result["ids"]
    naive = sf.Account.updated(start.replace(tzinfo=None), now.replace(tzinfo=None))  # trailing %3A form
    assert sorted(naive["ids"]) == sorted(result["ids"])


def test_deleted_lists_recycle_bin_rows(sf: Salesforce, emulator: Any) -> None:
    now = emulator_now(emulator)
    result = sf.Account.deleted(now - timedelta(days=15) + timedelta(minutes=2), now)
    assert set(result) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    in_bin = {r["Id"] for r in sf.query_all("SELECT Id FROM Account WHERE IsDeleted = true",
                                            include_deleted=True)["records"]}
    listed = {r["id"] for r in result["deletedRecords"]}
    assert listed and listed <= in_bin
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$", r["deletedDate"])
               for r in result["deletedRecords"])


@pytest.mark.parametrize("days_back", [31, -1])
def test_replication_date_errors(sf: Salesforce, emulator: Any, days_back: int) -> None:
    now = emulator_now(emulator)
    start, end = (now - timedelta(days=days_back), now) if days_back > 0 else (now, now - timedelta(hours=1))
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Account.updated(start, end)
    assert err.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"


# --- limits -----------------------------------------------------------------------------------------

def test_limits_and_usage_header(sf: Salesforce) -> None:
    limits = sf.limits()
    for key in ("DailyApiRequests", "DailyBulkApiBatches", "DailyBulkV2QueryJobs",
                "DailyBulkV2QueryFileStorageMB", "DataStorageMB", "FileStorageMB", "DailyAsyncApexExecutions",
                "SingleEmail"):
        assert {"Max", "Remaining"} <= set(limits[key]), key
    usage = sf.api_usage["api-usage"]
    assert usage.total == limits["DailyApiRequests"]["Max"]
    # Remaining is computed before the /limits call itself is counted.
    assert usage.used == usage.total - limits["DailyApiRequests"]["Remaining"] + 1
    response = raw(sf, "GET", "/services/data/v59.0/limits/")
    header = re.match(r"^api-usage=(\d+)/(\d+)$", response.headers["Sforce-Limit-Info"])
    used, total = map(int, header.groups())
    assert used == usage.used + 1 and total == usage.total
    assert limits["DataStorageMB"]["Remaining"] <= limits["DataStorageMB"]["Max"]


def test_record_count(sf: Salesforce) -> None:
    chosen = sf.restful("limits/recordCount", params={"sObjects": "Account,Contact,NoSuchThing"})
    assert chosen == {"sObjects": [{"count": count(sf, "Account"), "name": "Account"},
                                   {"count": count(sf, "Contact"), "name": "Contact"}]}
    listed = {e["name"]: e["count"] for e in sf.restful("limits/recordCount")["sObjects"]}
    assert listed["Account"] == count(sf, "Account") and all(n > 0 for n in listed.values())


def test_record_count_omits_objects_without_records(tmp_path: Path) -> None:
    org = EmulatedOrg(OrgSettings(state_dir=tmp_path))  # an org with no data at all
    s = org.settings
    with TestClient(create_app(org)) as client:
        token = client.post("/services/oauth2/token", data={
            "grant_type": "password", "client_id": s.client_id, "client_secret": s.client_secret,
            "username": s.username, "password": s.password}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        url = "/services/data/v62.0/limits/recordCount"
        assert client.get(url, headers=auth).json() == {"sObjects": []}
        account = org.schema.get("Account")
        org.store.append(account, [pa.table({"Id": org.store.new_ids(account, 2), "Name": ["a", "b"]})])
        assert client.get(url, params={"sObjects": "Account,Contact"}, headers=auth).json() == {
            "sObjects": [{"count": 2, "name": "Account"}]}
    org.store.close()


# --- error shapes -----------------------------------------------------------------------------------

def test_invalid_session_is_401_array(emulator: Any) -> None:
    response = requests.get(f"{emulator.base_url}/services/data/v59.0/sobjects", verify=emulator.ca_path,
                            headers={"Authorization": "Bearer 00D000000000001!bogus"}, timeout=60)
    assert response.status_code == 401
    assert response.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_not_found_and_method_not_allowed_shapes(sf: Salesforce) -> None:
    missing = raw(sf, "GET", "/services/data/v59.0/no/such/resource")
    assert missing.status_code == 404
    assert missing.json() == [NOT_FOUND]
    rid = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    put = raw(sf, "PUT", f"/services/data/v59.0/sobjects/Account/{rid}", json={"Name": "x"})
    assert put.status_code == 405 and put.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    assert put.json()[0]["message"].startswith("HTTP Method 'PUT' not allowed. Allowed are ")


def test_query_timeout_fault(sf: Salesforce, emulator: Any) -> None:
    before = emulator.control("GET", "faults")
    emulator.control("PATCH", "faults", {"query_timeout_objects": ["Lead"]})
    try:
        with pytest.raises(SalesforceMalformedRequest) as err:
            sf.query("SELECT Id FROM Lead")
        assert err.value.content == [{"message": "Your query request was running for too long.",
                                      "errorCode": "QUERY_TIMEOUT"}]
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] > 0
    finally:
        emulator.control("PUT", "faults", before)
