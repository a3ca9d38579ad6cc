"""OrgClient against the running emulator: every auth method, ledger, budget guard, retries, Bulk 2.0."""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from replicator.config import (
    ClientCredentialsAuth,
    JwtBearerAuth,
    OAuthRefreshTokenAuth,
    OrgSettings,
    PasswordAuth,
    Secret,
)
from replicator.salesforce.client import AuthenticationError, BudgetExceeded, OrgClient, OrgError


def secret(monkeypatch, env: str, value: str) -> Secret:
    monkeypatch.setenv(env, value)
    return Secret(env, os.environ[env])


def settings(emulator, auth) -> OrgSettings:
    return OrgSettings(name="emu", login_url=emulator.base_url, api_version="62.0", auth=auth,
                       ca_bundle=Path(emulator.ca_path))


def soap_auth(emulator, monkeypatch, password: str | None = None) -> PasswordAuth:
    return PasswordAuth(username=emulator.username,
                        password=secret(monkeypatch, "ORG_TEST_PASSWORD", password or emulator.password),
                        security_token=secret(monkeypatch, "ORG_TEST_TOKEN", emulator.security_token))


def oauth_auth(emulator, monkeypatch, password: str | None = None) -> PasswordAuth:
    return PasswordAuth(username=emulator.username,
                        password=secret(monkeypatch, "ORG_TEST_PASSWORD", password or emulator.password),
                        client_id=emulator.client_id,
                        client_secret=secret(monkeypatch, "ORG_TEST_SECRET", emulator.client_secret))


@pytest.fixture
def client(emulator, monkeypatch) -> OrgClient:
    return OrgClient(settings(emulator, oauth_auth(emulator, monkeypatch)), backoff_seconds=0.01)


@pytest.fixture
def faults(emulator):
    """Set emulator faults for one test; always switched off afterwards."""
    def put(**config):
        emulator.control("PUT", "faults", config)
    yield put
    emulator.control("PUT", "faults", {})


def whoami(client: OrgClient) -> str:
    return client.get_json("query", q="SELECT Username FROM User LIMIT 1")["records"][0]["Username"]


# --- authentication ---------------------------------------------------------------------------


def test_soap_login_with_password_and_token(emulator, monkeypatch):
    client = OrgClient(settings(emulator, soap_auth(emulator, monkeypatch)))
    assert whoami(client)
    assert client.ledger.by_kind["auth"] == 1 and client.ledger.by_kind["rest"] == 1


def test_oauth_password_grant(client):
    assert "sobjects" in client.describe_global()
    assert client.ledger.by_kind["auth"] == 1


def test_refresh_token(emulator, monkeypatch):
    refresh = emulator.token()["refresh_token"]
    auth = OAuthRefreshTokenAuth(client_id=emulator.client_id,
                                 client_secret=secret(monkeypatch, "ORG_TEST_SECRET", emulator.client_secret),
                                 refresh_token=secret(monkeypatch, "ORG_TEST_REFRESH", refresh))
    assert whoami(OrgClient(settings(emulator, auth)))


def test_client_credentials(emulator, monkeypatch):
    auth = ClientCredentialsAuth(client_id=emulator.client_id,
                                 client_secret=secret(monkeypatch, "ORG_TEST_SECRET", emulator.client_secret))
    assert whoami(OrgClient(settings(emulator, auth)))


def test_jwt_bearer(emulator, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "jwt.key"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    auth = JwtBearerAuth(client_id=emulator.client_id, username=emulator.username, private_key_file=pem)
    assert whoami(OrgClient(settings(emulator, auth)))
    wrong_user = JwtBearerAuth(client_id=emulator.client_id, username="nobody@example.com",
                               private_key_file=pem)
    with pytest.raises(AuthenticationError):
        OrgClient(settings(emulator, wrong_user)).login()


@pytest.mark.parametrize("make_auth", [soap_auth, oauth_auth])
def test_wrong_password_is_an_authentication_error(emulator, monkeypatch, make_auth):
    client = OrgClient(settings(emulator, make_auth(emulator, monkeypatch, password="wrong-password")))
    with pytest.raises(AuthenticationError):
        client.limits()


def test_secrets_are_never_logged(emulator, monkeypatch, caplog, faults):
    caplog.set_level(logging.DEBUG)
    faults(error_rate=0.5, seed=3)
    client = OrgClient(settings(emulator, oauth_auth(emulator, monkeypatch)), backoff_seconds=0.01)
    for _ in range(4):
        client.describe("Account")
    soap = OrgClient(settings(emulator, soap_auth(emulator, monkeypatch, password="bad")))
    with pytest.raises(AuthenticationError):
        soap.login()
    assert client.ledger.retries > 0  # something was logged
    token = client.sf.session_id
    for value in (emulator.password, emulator.security_token, emulator.client_secret, token):
        assert value not in caplog.text
        assert value not in repr(client.settings) + repr(client.ledger)


# --- ledger, budget ---------------------------------------------------------------------------


def test_ledger_counts_calls_like_the_org(emulator, client):
    before = emulator.control("GET", "ledger")["last_seq"]
    client.describe_global()
    client.record_counts(["Account", "Contact"])
    list(client.bulk_query("SELECT Id FROM Account"))
    ledger = emulator.control("GET", f"ledger?since={before}")["summary"]
    ledger["by_kind"].pop("control", None)  # the first ledger call itself
    assert client.ledger.calls == sum(ledger["by_kind"].values())
    assert client.ledger.by_kind["bulk2"] == ledger["by_kind"]["bulk2"] == 4  # create, poll, results, delete
    assert client.ledger.by_kind["rest"] == ledger["by_kind"]["rest"] == 2
    assert client.ledger.bulk_jobs == 1
    assert client.ledger.used is not None and client.ledger.max == 15000


def test_budget_guard_stops_at_the_cap(emulator, monkeypatch):
    client = OrgClient(settings(emulator, oauth_auth(emulator, monkeypatch)), api_cap_percent=80)
    client.limits()
    used = client.ledger.used
    try:
        emulator.control("POST", "limits", {"max": used + 2})  # the next call brings usage over 80%
        client.limits()
        before = emulator.control("GET", "limits")["used"]
        with pytest.raises(BudgetExceeded) as info:
            client.limits()
        assert info.value.code == "API_CAP_REACHED"
        assert emulator.control("GET", "limits")["used"] == before  # refused without spending a call
    finally:
        emulator.control("POST", "limits", {"max": 15000})


def test_request_limit_exceeded_is_a_budget_error(emulator, client):
    client.limits()
    try:
        emulator.control("POST", "limits", {"max": 1})
        with pytest.raises(BudgetExceeded) as info:
            client.limits()
        assert info.value.code == "REQUEST_LIMIT_EXCEEDED"
    finally:
        emulator.control("POST", "limits", {"max": 15000})


# --- transient faults, sessions ---------------------------------------------------------------


def test_server_errors_are_retried(client, faults):
    faults(error_rate=0.5, error_status=500, seed=11)
    for _ in range(6):
        assert client.describe("Account")["name"] == "Account"
    assert client.ledger.retries > 0


def test_cut_bodies_are_retried(client, faults):
    expected = client.describe("Account")
    faults(reset_rate=0.5, reset_min_bytes=1000, seed=1)
    for _ in range(5):
        assert client.describe("Account") == expected
    assert client.ledger.retries > 0


def test_retries_give_up(client, faults):
    client.login()
    faults(error_rate=1.0)
    client.max_retries = 2
    with pytest.raises(OrgError) as info:
        client.limits()
    assert info.value.status == 503 and info.value.code == "SERVER_UNAVAILABLE"
    assert client.ledger.retries == 2


def test_relogin_on_expired_session(emulator, client, faults):
    whoami(client)
    emulator.control("POST", "sessions/expire")
    assert whoami(client)
    assert client.ledger.relogins == 1
    faults(session_expire_after=3)
    for _ in range(8):
        whoami(client)
    assert client.ledger.relogins >= 3


# --- Bulk API 2.0 -----------------------------------------------------------------------------


def rows(pages: list[bytes]) -> list[dict[str, str]]:
    out = []
    for page in pages:
        out.extend(csv.DictReader(io.StringIO(page.decode())))
    return out


def test_bulk_query_pages_and_deletes_the_job(emulator, client):
    count = client.get_json("queryAll", q="SELECT COUNT() FROM Contact")["totalSize"]
    pages = list(client.bulk_query("SELECT Id, LastName FROM Contact", include_deleted=True, max_records=100))
    assert len(pages) == -(-count // 100)
    got = rows(pages)
    assert len(got) == count == len({r["Id"] for r in got})
    assert set(got[0]) == {"Id", "LastName"}
    calls = emulator.control("GET", "ledger?since=0")["calls"]
    assert any(c["method"] == "DELETE" and "/jobs/query/" in c["path"] for c in calls)
    assert not emulator.sf().restful("jobs/query")["records"]


def test_bulk_query_errors_keep_salesforce_codes(client, faults):
    with pytest.raises(OrgError) as info:
        list(client.bulk_query("SELECT Id FROM Attachment"))
    assert info.value.code == "INVALIDENTITY"
    with pytest.raises(OrgError) as info:
        list(client.bulk_query("SELECT Id, BillingAddress FROM Account"))
    assert info.value.code  # compound fields are refused by Bulk
    faults(query_timeout_objects=["Account"], bulk_fail_objects=["Contact"])
    with pytest.raises(OrgError) as info:
        list(client.bulk_query("SELECT Id FROM Account"))
    assert info.value.code == "QUERY_TIMEOUT"
    with pytest.raises(OrgError) as info:
        list(client.bulk_query("SELECT Id FROM Contact"))
    assert info.value.code == "BULK_JOB_FAILED"
    with pytest.raises(OrgError) as info:
        list(client.query_pages("SELECT Id FROM Account"))
    assert info.value.code == "QUERY_TIMEOUT"


def test_org_errors_are_the_common_roots_org_auth_and_budget_problems() -> None:
    from replicator.errors import AuthProblem, BudgetProblem, OrgProblem

    err = OrgError("boom", code="SERVER_UNAVAILABLE", status=503)
    assert isinstance(err, OrgProblem)
    assert (err.code, err.status, err.message) == ("SERVER_UNAVAILABLE", 503, "boom")
    assert isinstance(AuthenticationError("no"), AuthProblem)
    assert isinstance(AuthenticationError("no"), OrgError)
    assert isinstance(BudgetExceeded("cap"), BudgetProblem) and isinstance(BudgetExceeded("cap"), OrgError)
    assert BudgetExceeded("cap").http_status == 429 and AuthenticationError("no").to_json()["kind"] == "auth"


# --- SOAP undelete ------------------------------------------------------------------------------


def test_undelete_brings_records_back_with_their_ids_and_fails_others_alone(emulator, client):
    sf = emulator.sf()
    kept = sf.Account.create({"Name": "Undelete me"})["id"]
    child = sf.Contact.create({"LastName": "Kid", "AccountId": kept})["id"]
    live = sf.Account.create({"Name": "Never deleted"})["id"]
    sf.Account.delete(kept)
    assert sf.query_all(f"SELECT Id FROM Account WHERE Id = '{kept}'")["totalSize"] == 0
    before = emulator.control("GET", "ledger")["last_seq"]
    results = client.undelete([kept, live])
    counted = emulator.control("GET", f"ledger?since={before}")["summary"]["counted"]
    assert counted == 1 and client.ledger.by_kind["soap"] == 1
    assert results[0] == {"id": kept, "success": True, "errors": []}
    assert results[1]["success"] is False and results[1]["errors"][0]["statusCode"] == "UNDELETE_FAILED"
    assert sf.Account.get(kept)["Name"] == "Undelete me"
    assert sf.Contact.get(child)["AccountId"] == kept  # the cascade-deleted child came back with it


def test_undelete_after_the_session_expired_logs_in_again(emulator, client):
    sf = emulator.sf()
    gone = sf.Account.create({"Name": "Expired session"})["id"]
    sf.Account.delete(gone)
    client.login()
    client.sf.session_id = "00Dexpired!token"
    assert client.undelete([gone])[0]["success"] is True
    assert client.ledger.relogins == 1
