"""Injected faults, seen through simple-salesforce over HTTPS as a backup run would meet them:
server errors, bodies cut mid-way, slow answers, expiring sessions, QUERY_TIMEOUT, failed Bulk
jobs, the DailyApiRequests allocation running out, and long request lines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceMalformedRequest

from sfemu.client import emulator_session, login


class Faults:
    """Switch faults on the shared emulator; everything is switched off again after each test."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.http = emulator_session(emulator.base_url, emulator.ca_path)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.emulator.control_url}/{path}", json=body, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()

    def set(self, **settings: Any) -> None:
        self.call("PUT", "faults", settings)

    def sf(self) -> Any:
        """A client that owns username/password, so it can log in again on INVALID_SESSION_ID."""
        e = self.emulator
        return login({"base_url": e.base_url, "ca_path": e.ca_path, "username": e.username,
                      "password": e.password, "client_id": e.client_id, "client_secret": e.client_secret,
                      "org_type": "production"})


@pytest.fixture
def faults(emulator: Any) -> Iterator[Faults]:
    f = Faults(emulator)
    yield f
    f.set()
    f.call("POST", "limits", {"max": 15000})


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_at_rate_one(faults: Faults, status: int) -> None:
    sf = faults.sf()
    faults.set(error_rate=1.0, error_status=status)
    with pytest.raises(SalesforceGeneralError) as raised:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert raised.value.status == status
    faults.set()
    assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_connection_reset_mid_body(faults: Faults) -> None:
    sf = faults.sf()
    faults.set(reset_rate=1.0, reset_min_bytes=2000)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        sf.query("SELECT Id, Name, BillingCity, BillingStreet FROM Account")
    # Small bodies are not cut.
    assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_slow_responses(faults: Faults) -> None:
    sf = faults.sf()
    faults.set(slow_ms=800)
    began = time.monotonic()
    sf.query("SELECT Id FROM Account LIMIT 1")
    assert time.monotonic() - began >= 0.8
    began = time.monotonic()
    faults.call("GET", "status")  # the control API is never slowed
    assert time.monotonic() - began < 0.8


def test_session_expiry_after_n_calls_and_relogin(faults: Faults, emulator: Any) -> None:
    faults.set(session_expire_after=2)
    sf = faults.sf()
    start = faults.call("GET", "ledger")["last_seq"]
    for _ in range(5):
        assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    calls = faults.call("GET", f"ledger?since={start}")["calls"]
    statuses = [c["status"] for c in calls if c["kind"] == "rest"]
    assert statuses.count(401) >= 2, statuses  # the session died, simple-salesforce logged in again
    assert statuses.count(200) == 5
    assert sum(1 for c in calls if c["kind"] == "auth") >= 2
    # What the client saw before logging in again:
    session = emulator_session(emulator.base_url, emulator.ca_path)
    token = session.post(f"{emulator.base_url}/services/oauth2/token", data={
        "grant_type": "password", "client_id": emulator.client_id, "client_secret": emulator.client_secret,
        "username": emulator.username, "password": emulator.password}, timeout=30).json()["access_token"]
    url = f"{emulator.base_url}/services/data/v62.0/limits"
    answers = [session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 401]
    assert answers[2].json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_query_timeout_on_named_objects(faults: Faults) -> None:
    sf = faults.sf()
    faults.set(query_timeout_objects=["contact"])
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT Id FROM Contact LIMIT 1")
    assert raised.value.content[0]["errorCode"] == "QUERY_TIMEOUT"
    assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_bulk_jobs_end_failed(faults: Faults) -> None:
    sf = faults.sf()
    faults.set(bulk_fail_objects=["Contact"])
    job = sf.restful("jobs/query", method="POST",
                     json={"operation": "query", "query": "SELECT Id FROM Contact"})
    status = sf.restful(f"jobs/query/{job['id']}")
    deadline = time.monotonic() + 30
    while status["state"] not in ("Failed", "JobComplete", "Aborted") and time.monotonic() < deadline:
        time.sleep(0.2)
        status = sf.restful(f"jobs/query/{job['id']}")
    assert status["state"] == "Failed"
    assert status.get("errorMessage")
    ok = sf.restful("jobs/query", method="POST",
                    json={"operation": "query", "query": "SELECT Id FROM Account"})
    assert sf.restful(f"jobs/query/{ok['id']}")["state"] in ("UploadComplete", "InProgress", "JobComplete")


def test_request_limit_exceeded(faults: Faults, emulator: Any) -> None:
    sf = faults.sf()
    used = faults.call("GET", "limits")["used"]
    faults.call("POST", "limits", {"max": used + 3})
    session = emulator_session(emulator.base_url, emulator.ca_path)
    url = f"https://{sf.sf_instance}/services/data/v62.0/query"
    headers = {"Authorization": f"Bearer {sf.session_id}"}
    params = {"q": "SELECT Id FROM Account LIMIT 1"}
    seen = []
    for _ in range(3):
        response = session.get(url, params=params, headers=headers, timeout=30)
        assert response.status_code == 200
        seen.append(response.headers["Sforce-Limit-Info"])
    assert seen == [f"api-usage={used + n}/{used + 3}" for n in (1, 2, 3)]
    refused = session.get(url, params=params, headers=headers, timeout=30)
    assert refused.status_code == 403
    assert refused.json() == [{"message": "TotalRequests Limit exceeded.",
                               "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert refused.headers["Sforce-Limit-Info"] == f"api-usage={used + 3}/{used + 3}"
    faults.call("POST", "limits", {"max": 15000})
    assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_32_kb_request_line(faults: Faults) -> None:
    sf = faults.sf()
    names = ", ".join(f"'Account number {n:06d}'" for n in range(850))
    soql = f"SELECT Id FROM Account WHERE Name IN ({names})"
    url = f"https://{sf.sf_instance}/services/data/v62.0/query?q={requests.utils.quote(soql)}"
    assert 30_000 <= len(url) <= 32_768
    response = sf.session.get(url, headers=sf.headers, timeout=60)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["totalSize"] == 0
