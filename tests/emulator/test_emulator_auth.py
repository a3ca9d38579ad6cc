"""Logins against the real emulator over HTTPS, through unmodified simple-salesforce 1.12.10.

simple-salesforce dials `https://{domain}.salesforce.com` for every login. `login_session()`
below is the cleanest way found to point it at the emulator without touching the library: a
`requests.Session` (simple-salesforce accepts one via `session=`) with a transport adapter mounted
for the Salesforce login hosts that re-targets those requests at the emulator's base URL. The
emulator then answers with its own host as instance_url/serverUrl, and every later call goes
straight to it. (Its certificate also carries SANs for login/test.salesforce.com, for the
HTTPS-proxy route that tap-salesforce and airbyte need; simple-salesforce does not need that.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from starlette.testclient import TestClient

from sfemu.app import create_app
from sfemu.org import EmulatedOrg, OrgSettings

LOGIN_HOSTS = ("login", "test", "demo.my")  # demo.my: client_credentials refuses login/test
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class ToEmulator(HTTPAdapter):
    """Transport adapter: sends a request meant for a Salesforce login host to the emulator instead."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url)
        request.url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def login_session(emulator: Any) -> requests.Session:
    """A session for `Salesforce(..., session=...)` whose login calls land on the emulator."""
    session = requests.Session()
    session.verify = emulator.ca_path
    session.trust_env = False  # else a REQUESTS_CA_BUNDLE in the environment overrides `verify`
    for host in LOGIN_HOSTS:
        session.mount(f"https://{host}.salesforce.com/", ToEmulator(emulator.base_url))
    return session


def security_token(emulator: Any) -> str:
    # The fixture reports the token once conftest exposes it; until then the org default is in use.
    return getattr(emulator, "security_token", None) or OrgSettings.security_token


def host_of(emulator: Any) -> str:
    return urlsplit(emulator.base_url).netloc


def rsa_key() -> tuple[bytes, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, key


def token_post(emulator: Any, data: dict[str, str], **kw: Any) -> requests.Response:
    return requests.post(f"{emulator.base_url}/services/oauth2/token", data=data, verify=emulator.ca_path,
                         timeout=60, **kw)


# --- SOAP login ------------------------------------------------------------------------------------

def test_soap_login_with_security_token_then_rest_calls_work(emulator: Any) -> None:
    sf = Salesforce(username=emulator.username, password=emulator.password,
                    security_token=security_token(emulator), session=login_session(emulator))
    assert sf.sf_instance == host_of(emulator)
    assert sf.session_id.startswith("00D")
    assert sf.limits()["DailyApiRequests"]["Max"] > 0


def test_soap_login_variants_parse_whatever_the_prefixes(emulator: Any) -> None:
    session = login_session(emulator)
    # plain username/password envelope (soapenv:/urn: prefixes, no token)
    sid, instance = SalesforceLogin(username=emulator.username, password=emulator.password, session=session)
    assert instance == host_of(emulator) and sid
    # organizationId (LoginScopeHeader) envelope
    org_id = requests.get(f"{emulator.base_url}/services/oauth2/userinfo", verify=emulator.ca_path,
                          headers={"Authorization": f"Bearer {sid}"}, timeout=60).json()["organization_id"]
    sf = Salesforce(username=emulator.username, password=emulator.password, organizationId=org_id,
                    session=session)
    assert sf.sf_instance == host_of(emulator)
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        Salesforce(username=emulator.username, password=emulator.password, organizationId="00D000000000001",
                   session=session)
    assert err.value.code == "INVALID_LOGIN"


def test_soap_login_response_shape(emulator: Any) -> None:
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Body>
<login xmlns="urn:partner.soap.sforce.com"><username>{emulator.username}</username>
<password>{emulator.password}</password></login></se:Body></se:Envelope>"""
    response = requests.post(f"{emulator.base_url}/services/Soap/u/61.0", data=body.encode(),
                             headers={"Content-Type": "text/xml", "SOAPAction": "login"},
                             verify=emulator.ca_path, timeout=60)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    text = response.text
    host = emulator.base_url
    assert 'xmlns="urn:partner.soap.sforce.com"' in text
    assert f"<serverUrl>{host}/services/Soap/u/61.0/00D" in text
    assert f"<metadataServerUrl>{host}/services/Soap/m/61.0/00D" in text
    for tag in ("<sessionId>", "<userId>005", "<passwordExpired>false", "<userName>", "<organizationId>00D",
                "<sessionSecondsValid>", '<roleId xsi:nil="true"/>', "<userTimeZone>"):
        assert tag in text


def test_soap_login_failure_is_a_500_fault_with_invalid_login(emulator: Any) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        Salesforce(username=emulator.username, password="wrong", security_token=security_token(emulator),
                   session=login_session(emulator))
    assert err.value.code == "INVALID_LOGIN"
    assert "Invalid username, password, security token" in err.value.auth_message
    raw = requests.post(f"{emulator.base_url}/services/Soap/u/59.0", data=b"<not-xml",
                        verify=emulator.ca_path, timeout=60)
    assert raw.status_code == 500 and "<sf:exceptionCode>" in raw.text


# --- OAuth token endpoint ---------------------------------------------------------------------------

def test_password_grant_body_signature_and_simple_salesforce(emulator: Any) -> None:
    response = token_post(emulator, {
        "grant_type": "password", "client_id": emulator.client_id, "client_secret": emulator.client_secret,
        "username": emulator.username, "password": emulator.password + security_token(emulator)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"access_token", "instance_url", "id", "token_type", "issued_at", "signature",
                         "scope", "refresh_token"}
    assert body["instance_url"] == emulator.base_url and body["token_type"] == "Bearer"
    org_id, user_id = body["id"].split("/")[-2:]
    assert body["id"] == f"{emulator.base_url}/id/{org_id}/{user_id}"
    assert org_id.startswith("00D") and user_id.startswith("005") and len(user_id) == 18
    assert abs(int(body["issued_at"]) - time.time() * 1000) < 10 * 60 * 1000
    mac = hmac.new(emulator.client_secret.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256)
    assert body["signature"] == base64.b64encode(mac.digest()).decode()

    sf = Salesforce(username=emulator.username, password=emulator.password, consumer_key=emulator.client_id,
                    consumer_secret=emulator.client_secret, session=login_session(emulator))
    assert sf.sf_instance == host_of(emulator)
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] >= 1


@pytest.mark.parametrize(("change", "error", "description"), [
    ({"password": "nope"}, "invalid_grant", "authentication failure"),
    ({"username": "someone@else.example"}, "invalid_grant", "authentication failure"),
    ({"client_id": "unknown-app"}, "invalid_client_id", "client identifier invalid"),
    ({"client_secret": "bad-secret"}, "invalid_client", "invalid client credentials"),
    ({"grant_type": "authorization_code"}, "unsupported_grant_type", "grant type not supported"),
])
def test_password_grant_errors(emulator: Any, change: dict[str, str], error: str, description: str) -> None:
    data = {"grant_type": "password", "client_id": emulator.client_id,
            "client_secret": emulator.client_secret, "username": emulator.username,
            "password": emulator.password, **change}
    response = token_post(emulator, data)
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


def test_wrong_password_through_simple_salesforce_oauth(emulator: Any) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        Salesforce(username=emulator.username, password="nope", consumer_key=emulator.client_id,
                   consumer_secret=emulator.client_secret, session=login_session(emulator))
    assert err.value.code == "invalid_grant"


def test_refresh_token_grant(emulator: Any) -> None:
    first = emulator.token()
    data = {"grant_type": "refresh_token", "client_id": emulator.client_id,
            "client_secret": emulator.client_secret, "refresh_token": first["refresh_token"]}
    refreshed = token_post(emulator, data)
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert body["access_token"] != first["access_token"] and body["id"] == first["id"]
    assert "refresh_token" not in body  # no refresh token rotation
    public = token_post(emulator, {k: v for k, v in data.items() if k != "client_secret"})
    assert public.status_code == 200  # public clients (CumulusCI's) send no secret
    bad = token_post(emulator, {**data, "refresh_token": "5Aep-not-issued"})
    assert bad.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}
    other_app = token_post(emulator, {**data, "client_id": "other"})
    assert other_app.json()["error"] == "invalid_client_id"
    sf = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"],
                    session=login_session(emulator))
    assert sf.query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1


def test_client_credentials_grant_basic_auth_and_form(emulator: Any) -> None:
    sf = Salesforce(consumer_key=emulator.client_id, consumer_secret=emulator.client_secret, domain="demo.my",
                    session=login_session(emulator))
    assert sf.sf_instance == host_of(emulator)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] > 0
    form = token_post(emulator, {"grant_type": "client_credentials", "client_id": emulator.client_id,
                                 "client_secret": emulator.client_secret})
    assert form.status_code == 200 and "refresh_token" not in form.json()
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        Salesforce(consumer_key=emulator.client_id, consumer_secret="bad", domain="demo.my",
                   session=login_session(emulator))
    assert err.value.code == "invalid_client"


def test_jwt_bearer_through_simple_salesforce(emulator: Any) -> None:
    pem, _ = rsa_key()
    sf = Salesforce(username=emulator.username, consumer_key=emulator.client_id, privatekey=pem.decode(),
                    session=login_session(emulator))
    assert sf.sf_instance == host_of(emulator)
    assert sf.query("SELECT Id FROM User LIMIT 1")["records"]


def _assertion(pem: bytes, **claims: Any) -> str:
    return jwt.encode(claims, pem, algorithm="RS256")


def test_jwt_bearer_claim_checks(emulator: Any) -> None:
    pem, _ = rsa_key()
    good = {"iss": emulator.client_id, "sub": emulator.username, "aud": "https://login.salesforce.com",
            "exp": str(int(time.time()) + 180)}

    def post(**change: Any) -> requests.Response:
        assertion = _assertion(pem, **{**good, **change})
        return token_post(emulator, {"grant_type": JWT_GRANT, "assertion": assertion})

    assert post().status_code == 200
    assert post(aud="https://test.salesforce.com").status_code == 200
    assert post(aud=emulator.base_url).status_code == 200
    assert post(aud="https://evil.example.com").json() == {"error": "invalid_grant",
                                                           "error_description": "audience is invalid"}
    assert post(iss="someone-else").json()["error"] == "invalid_client_id"
    assert post(exp=int(time.time()) - 60).json()["error"] == "invalid_grant"
    assert post(sub="nobody@example.com").json()["error_description"] == "user hasn't approved this consumer"
    garbage = token_post(emulator, {"grant_type": JWT_GRANT, "assertion": "not.a.jwt"})
    assert garbage.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}


def test_jwt_signature_is_verified_against_the_configured_certificate(tmp_path: Any) -> None:
    pem, key = rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connected-app")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(datetime(2020, 1, 1))
            .not_valid_after(datetime(2040, 1, 1)).sign(key, hashes.SHA256()))
    cert_path = tmp_path / "app.crt"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    settings = OrgSettings(state_dir=tmp_path / "org")
    settings.jwt_public_key = cert_path  # the connected app's uploaded certificate
    org = EmulatedOrg(settings)
    claims = {"iss": settings.client_id, "sub": settings.username, "aud": "https://login.salesforce.com",
              "exp": int(time.time()) + 120}
    other_pem, _ = rsa_key()
    with TestClient(create_app(org)) as client:
        signed = client.post("/services/oauth2/token",
                             data={"grant_type": JWT_GRANT, "assertion": _assertion(pem, **claims)})
        forged = client.post("/services/oauth2/token",
                             data={"grant_type": JWT_GRANT, "assertion": _assertion(other_pem, **claims)})
    assert signed.status_code == 200 and signed.json()["instance_url"] == "https://testserver"
    assert forged.status_code == 400
    assert forged.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}
    org.store.close()


# --- identity ---------------------------------------------------------------------------------------

def test_userinfo_and_identity_url(emulator: Any) -> None:
    token = emulator.token()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    info = requests.get(f"{emulator.base_url}/services/oauth2/userinfo", headers=auth,
                        verify=emulator.ca_path, timeout=60)
    assert info.status_code == 200
    data = info.json()
    assert data["sub"] == token["id"]
    assert data["preferred_username"] == emulator.username
    assert token["id"].endswith(f"/{data['organization_id']}/{data['user_id']}")
    assert data["urls"]["rest"].startswith(f"{emulator.base_url}/services/data/v")
    ident = requests.get(token["id"], headers=auth, verify=emulator.ca_path, timeout=60)
    assert ident.status_code == 200
    assert ident.json()["username"] == emulator.username and ident.json()["id"] == token["id"]
    anonymous = requests.get(f"{emulator.base_url}/services/oauth2/userinfo", verify=emulator.ca_path,
                             timeout=60)
    assert anonymous.status_code == 401


def test_relogin_after_session_expiry(emulator: Any) -> None:
    sf = Salesforce(username=emulator.username, password=emulator.password,
                    security_token=security_token(emulator), session=login_session(emulator))
    before = sf.session_id
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] > 0
    emulator.control("POST", "sessions/expire")
    stale = requests.get(f"{emulator.base_url}/services/data/v59.0/limits", verify=emulator.ca_path,
                         headers={"Authorization": f"Bearer {before}"}, timeout=60)
    assert stale.status_code == 401
    assert stale.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    # simple-salesforce owns the credentials, so it logs in again and retries transparently.
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] > 0
    assert sf.session_id != before


# --- generic login hosts --------------------------------------------------------------------------

def soap_login_at(client: Any, host: str, username: str, password: str) -> Any:
    body = (f'<?xml version="1.0" encoding="utf-8"?><se:Envelope '
            f'xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Body>'
            f'<login xmlns="urn:partner.soap.sforce.com"><username>{username}</username>'
            f"<password>{password}</password></login></se:Body></se:Envelope>")
    return client.post("/services/Soap/u/62.0", content=body.encode(),
                       headers={"Content-Type": "text/xml", "SOAPAction": "login", "Host": host})


@pytest.mark.parametrize("org_type, refused, accepted", [
    ("production", "test.salesforce.com", "login.salesforce.com"),
    ("sandbox", "login.salesforce.com", "test.salesforce.com"),
])
def test_the_generic_login_host_of_the_other_kind_of_org_refuses(tmp_path: Any, org_type: str,
                                                                 refused: str, accepted: str) -> None:
    """Production credentials fail at test.salesforce.com and a sandbox's at login, as on Salesforce;
    loopback and My Domain hosts reach the org whatever its kind."""
    settings = OrgSettings(state_dir=tmp_path / "org", org_type=org_type)
    org = EmulatedOrg(settings)
    user, password = settings.username, settings.password
    with TestClient(create_app(org)) as client:
        bad = soap_login_at(client, refused, user, password)
        assert bad.status_code == 500 and "INVALID_LOGIN" in bad.text
        for host in (accepted, "127.0.0.1:8443", "acme.my.salesforce.com"):
            good = soap_login_at(client, host, user, password)
            assert good.status_code == 200 and "<sessionId>" in good.text, host
        grant = {"grant_type": "password", "client_id": settings.client_id,
                 "client_secret": settings.client_secret, "username": user, "password": password}
        oauth = client.post("/services/oauth2/token", data=grant, headers={"Host": refused})
        assert oauth.status_code == 400 and oauth.json() == {
            "error": "invalid_grant", "error_description": "authentication failure"}
        right = client.post("/services/oauth2/token", data=grant, headers={"Host": accepted})
        assert right.status_code == 200
    org.store.close()
