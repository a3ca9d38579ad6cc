"""Logins: the OAuth 2.0 token endpoint, SOAP partner login, userinfo and the identity URL.

Clients log in the ways sf_api.md §1 lists (password, refresh token, client credentials, JWT
bearer, SOAP). Every login answers with URLs built from the host the client dialled, so a client
that reached us as `https://127.0.0.1:8443` (or through a proxy as login.salesforce.com) keeps
talking to us. All logins run as the org's API user.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import jwt
from cryptography import x509
from starlette.responses import Response

from sfemu import ids
from sfemu.errors import OAuthError, not_found
from sfemu.routing import Ctx, json_response, route

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg
    from sfemu.sessions import Session

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
ORG_NAME = "Replicator Emulated Org"
PROFILE_ID = ids.make_id("00e", 1)
USER_TZ = "America/Los_Angeles"


# --- who the client reached and who is logging in ----------------------------------------------

def base_url(ctx: Ctx) -> str:
    """`https://host[:port]` exactly as the client dialled it (clients force https anyway)."""
    return "https://" + ctx.headers.get("host", "localhost")


def identity_url(ctx: Ctx, user_id: str) -> str:
    return f"{base_url(ctx)}/id/{ctx.org.org_id}/{user_id}"


# Salesforce's generic login hosts each reach one kind of org: production credentials fail at
# test.salesforce.com and a sandbox's at login.salesforce.com (other hosts: My Domain, loopback).
LOGIN_HOSTS = {"login.salesforce.com": False, "test.salesforce.com": True}


def right_login_host(ctx: Ctx) -> bool:
    """False when the client dialled the generic login host of the other kind of org."""
    host = ctx.headers.get("host", "").rsplit(":", 1)[0].lower()
    return LOGIN_HOSTS.get(host, ctx.org.settings.sandbox) == ctx.org.settings.sandbox


def password_ok(org: EmulatedOrg, username: str | None, password: str | None) -> bool:
    """Username (case-insensitive) and password, with or without the security token appended.

    Salesforce wants the token from untrusted networks only, so both forms are valid logins.
    """
    s = org.settings
    if not username or password is None or username.lower() != s.username.lower():
        return False
    return password in (s.password, s.password + s.security_token)


def user_profile(org: EmulatedOrg) -> dict[str, Any]:
    """The API user's identity facts (from its User record when the org has one)."""
    user_id, username = org.admin_user()
    profile = {"user_id": user_id, "username": username, "first_name": "", "last_name": "Admin",
               "email": org.settings.username}
    user = org.schema.get("User")
    wanted = [("FirstName", "first_name"), ("LastName", "last_name"), ("Email", "email")]
    present = [(col, key) for col, key in wanted if user is not None and user.field(col) is not None]
    if present:
        cols = ", ".join(org.store.column(col) for col, _ in present)
        row = org.store.cursor().execute(
            f'SELECT {cols} FROM "User" WHERE "Id" = ?', [user_id]).fetchone()
        for (_, key), value in zip(present, row or (), strict=False):
            if value:
                profile[key] = value
    profile["name"] = " ".join(p for p in (profile["first_name"], profile["last_name"]) if p)
    return profile


def _issued_ms(org: EmulatedOrg) -> str:
    return str(int(org.clock.now().timestamp() * 1000))


def token_body(ctx: Ctx, session: Session, with_refresh_token: bool) -> dict[str, Any]:
    """Salesforce's token response; `signature` lets clients check id+issued_at with their secret."""
    ident = identity_url(ctx, session.user_id)
    issued_at = _issued_ms(ctx.org)
    mac = hmac.new(ctx.org.settings.client_secret.encode(), (ident + issued_at).encode(), hashlib.sha256)
    body: dict[str, Any] = {
        "access_token": session.token,
        "instance_url": base_url(ctx),
        "id": ident,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": base64.b64encode(mac.digest()).decode(),
        "scope": " ".join(session.scopes),
    }
    if with_refresh_token and session.refresh_token:
        body["refresh_token"] = session.refresh_token
    return body


# --- OAuth 2.0 token endpoint ------------------------------------------------------------------

def _form(ctx: Ctx) -> dict[str, str]:
    fields = parse_qs(ctx.body.decode("utf-8", "replace"), keep_blank_values=True)
    merged = {k: v[0] for k, v in ctx.query.items()}  # Salesforce also reads the query string
    merged.update({k: v[0] for k, v in fields.items()})
    return merged


def _basic_credentials(ctx: Ctx) -> tuple[str, str] | None:
    auth = ctx.headers.get("authorization", "")
    if not auth.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(auth[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _check_client(org: EmulatedOrg, client_id: str | None, secret: str | None, *,
                  secret_required: bool) -> None:
    s = org.settings
    if client_id != s.client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if (secret_required or secret) and secret != s.client_secret:
        raise OAuthError("invalid_client", "invalid client credentials")


def _password_grant(ctx: Ctx, form: dict[str, str]) -> dict[str, Any]:
    _check_client(ctx.org, form.get("client_id"), form.get("client_secret"), secret_required=True)
    if not right_login_host(ctx) or not password_ok(ctx.org, form.get("username"), form.get("password")):
        raise OAuthError("invalid_grant", "authentication failure")
    user_id, username = ctx.org.admin_user()
    return token_body(ctx, ctx.org.sessions.issue(user_id, username, with_refresh=True), True)


def _refresh_grant(ctx: Ctx, form: dict[str, str]) -> dict[str, Any]:
    # Public clients (CumulusCI's SFDX app) send no secret; a secret that is sent must match.
    _check_client(ctx.org, form.get("client_id"), form.get("client_secret"), secret_required=False)
    user = ctx.org.sessions.user_for_refresh(form.get("refresh_token", ""))
    if user is None:
        raise OAuthError("invalid_grant", "expired access/refresh token")
    # Refresh Token Rotation is off, as on most orgs: the same refresh token stays valid.
    return token_body(ctx, ctx.org.sessions.issue(*user), False)


def _client_credentials_grant(ctx: Ctx, form: dict[str, str]) -> dict[str, Any]:
    creds = _basic_credentials(ctx) or (form.get("client_id"), form.get("client_secret"))
    _check_client(ctx.org, creds[0], creds[1], secret_required=True)
    user_id, username = ctx.org.admin_user()  # the connected app's run-as user
    session = ctx.org.sessions.issue(user_id, username)
    session.scopes = ["api"]
    return token_body(ctx, session, False)


def _jwt_key(org: EmulatedOrg) -> Any | None:
    """The connected app's certificate (or bare public key), if one is configured."""
    path = org.settings.jwt_public_key
    if not path:
        return None
    pem = Path(path).read_bytes()
    if b"CERTIFICATE" in pem:
        return x509.load_pem_x509_certificate(pem).public_key()
    return pem


def _jwt_grant(ctx: Ctx, form: dict[str, str]) -> dict[str, Any]:
    assertion = form.get("assertion", "")
    key = _jwt_key(ctx.org)
    options = {"verify_signature": key is not None, "verify_exp": False, "verify_aud": False,
               "verify_iat": False, "verify_nbf": False}
    try:
        claims = jwt.decode(assertion, key, algorithms=["RS256"], options=options)
    except jwt.InvalidTokenError as exc:
        raise OAuthError("invalid_grant", "invalid assertion") from exc
    if claims.get("iss") != ctx.org.settings.client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    allowed = {*LOGIN_AUDIENCES, base_url(ctx)}
    if not any(isinstance(a, str) and a.rstrip("/") in allowed for a in audiences):
        raise OAuthError("invalid_grant", "audience is invalid")
    try:
        expires = float(claims["exp"])  # simple-salesforce sends exp as a string
    except (KeyError, TypeError, ValueError) as exc:
        raise OAuthError("invalid_grant", "invalid assertion") from exc
    if expires <= ctx.org.clock.now().timestamp():
        raise OAuthError("invalid_grant", "expired authorization code")
    sub = claims.get("sub")
    if not isinstance(sub, str) or sub.lower() != ctx.org.settings.username.lower():
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    user_id, username = ctx.org.admin_user()
    return token_body(ctx, ctx.org.sessions.issue(user_id, username), False)


GRANTS = {
    "password": _password_grant,
    "refresh_token": _refresh_grant,
    "client_credentials": _client_credentials_grant,
    JWT_GRANT: _jwt_grant,
}


def oauth_token(ctx: Ctx) -> Response:
    form = _form(ctx)
    grant = GRANTS.get(form.get("grant_type", ""))
    if grant is None:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    return json_response(grant(ctx, form), headers={"Cache-Control": "no-cache,must-revalidate,max-age=0"})


# --- SOAP partner login ------------------------------------------------------------------------

_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_TYPE = "text/xml; charset=utf-8"
INVALID_LOGIN = "Invalid username, password, security token; or user locked out."


def _soap_values(body: bytes) -> dict[str, str]:
    """Local element name -> text, whatever namespace prefixes the client chose."""
    values: dict[str, str] = {}
    for element in ET.fromstring(body).iter():
        local = element.tag.rsplit("}", 1)[-1]
        values.setdefault(local, (element.text or "").strip())
    return values


def soap_fault(code: str, message: str, fault_kind: str = "LoginFault") -> Response:
    """A partner API fault: HTTP 500, prefixed sf:exceptionCode/sf:exceptionMessage."""
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        f'<detail><sf:{fault_kind} xsi:type="sf:{fault_kind}"><sf:exceptionCode>{code}</sf:exceptionCode>'
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage></sf:{fault_kind}></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(text.encode(), status_code=500, media_type=SOAP_TYPE)


def _xml_fields(values: dict[str, Any]) -> str:
    out = []
    for name, value in values.items():
        if value is None:
            out.append(f'<{name} xsi:nil="true"/>')
        else:
            text = ("true" if value else "false") if isinstance(value, bool) else escape(str(value))
            out.append(f"<{name}>{text}</{name}>")
    return "".join(out)


def soap_login(ctx: Ctx) -> Response:
    org = ctx.org
    try:
        values = _soap_values(ctx.body)
    except ET.ParseError:
        return soap_fault("INVALID_LOGIN", INVALID_LOGIN)
    org_scope = values.get("organizationId")
    wrong_org = bool(org_scope) and ids.normalize(org_scope) != org.org_id
    if "login" not in values or wrong_org or not right_login_host(ctx) or not password_ok(
            org, values.get("username"), values.get("password")):
        return soap_fault("INVALID_LOGIN", INVALID_LOGIN)
    user_id, username = org.admin_user()
    session = org.sessions.issue(user_id, username)
    profile = user_profile(org)
    host, version, org15 = base_url(ctx), ctx.params["soap_version"], org.org_id[:15]
    user_info = {
        "accessibilityMode": False, "chatterExternal": False, "currencySymbol": "$",
        "orgAttachmentFileSizeLimit": 5242880, "orgDefaultCurrencyIsoCode": "USD",
        "orgDefaultCurrencyLocale": "en_US", "orgDisallowHtmlAttachments": False,
        "orgHasPersonAccounts": False, "organizationId": org.org_id, "organizationMultiCurrency": False,
        "organizationName": ORG_NAME, "profileId": PROFILE_ID, "roleId": None,
        "sessionSecondsValid": org.settings.session_seconds, "userDefaultCurrencyIsoCode": None,
        "userEmail": profile["email"], "userFullName": profile["name"], "userId": user_id,
        "userLanguage": "en_US", "userLocale": "en_US", "userName": username,
        "userTimeZone": USER_TZ, "userType": "Standard", "userUiSkin": "Theme3",
    }
    result = {
        "metadataServerUrl": f"{host}/services/Soap/m/{version}/{org15}",
        "passwordExpired": False,
        "sandbox": org.settings.sandbox,
        "serverUrl": f"{host}/services/Soap/u/{version}/{org15}",
        "sessionId": session.token,
        "userId": user_id,
    }
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" xmlns="urn:partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>'
        f"{_xml_fields(result)}<userInfo>{_xml_fields(user_info)}</userInfo>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(text.encode(), media_type=SOAP_TYPE)


# --- who am I: OIDC userinfo and the identity URL ----------------------------------------------

def _api_urls(ctx: Ctx) -> dict[str, str]:
    host, org15 = base_url(ctx), ctx.org.org_id[:15]
    data = f"{host}/services/data/v{{version}}"
    return {
        "enterprise": f"{host}/services/Soap/c/{{version}}/{org15}",
        "metadata": f"{host}/services/Soap/m/{{version}}/{org15}",
        "partner": f"{host}/services/Soap/u/{{version}}/{org15}",
        "rest": f"{data}/", "sobjects": f"{data}/sobjects/", "search": f"{data}/search/",
        "query": f"{data}/query/", "recent": f"{data}/recent/",
        "tooling_soap": f"{host}/services/Soap/T/{{version}}/{org15}",
        "tooling_rest": f"{data}/tooling/", "profile": f"{host}/{{user_id}}",
        "feeds": f"{data}/chatter/feeds", "groups": f"{data}/chatter/groups",
        "users": f"{data}/chatter/users", "feed_items": f"{data}/chatter/feed-items",
        "custom_domain": host,
    }


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _who(ctx: Ctx) -> tuple[dict[str, Any], dict[str, str]]:
    profile = user_profile(ctx.org)
    urls = {k: v.replace("{user_id}", profile["user_id"]) for k, v in _api_urls(ctx).items()}
    return profile, urls


def userinfo(ctx: Ctx) -> Response:
    profile, urls = _who(ctx)
    return json_response({
        "sub": identity_url(ctx, profile["user_id"]), "user_id": profile["user_id"],
        "organization_id": ctx.org.org_id, "preferred_username": profile["username"],
        "nickname": profile["username"].split("@")[0], "name": profile["name"],
        "email": profile["email"], "email_verified": True, "given_name": profile["first_name"],
        "family_name": profile["last_name"], "zoneinfo": USER_TZ, "photos": {}, "profile": urls["profile"],
        "picture": None, "address": {}, "is_salesforce_integration_user": False, "urls": urls,
        "active": True, "user_type": "STANDARD", "language": "en_US", "locale": "en_US",
        "utcOffset": -28800000, "updated_at": _stamp(ctx.org.clock.now()), "is_app_installed": True,
    })


def identity(ctx: Ctx) -> Response:
    profile, urls = _who(ctx)
    if ids.normalize(ctx.params["org_id"]) != ctx.org.org_id or \
            ids.normalize(ctx.params["user_id"]) != profile["user_id"]:
        raise not_found()
    return json_response({
        "id": identity_url(ctx, profile["user_id"]), "asserted_user": True,
        "user_id": profile["user_id"], "organization_id": ctx.org.org_id,
        "username": profile["username"], "nick_name": profile["username"].split("@")[0],
        "display_name": profile["name"], "email": profile["email"], "email_verified": True,
        "first_name": profile["first_name"], "last_name": profile["last_name"], "timezone": USER_TZ,
        "photos": {}, "addr_street": None, "addr_city": None, "addr_state": None, "addr_country": None,
        "addr_zip": None, "mobile_phone": None, "mobile_phone_verified": False,
        "is_lightning_login_user": False, "status": {"created_date": None, "body": None}, "urls": urls,
        "active": True, "user_type": "STANDARD", "language": "en_US", "locale": "en_US",
        "utcOffset": -28800000, "last_modified_date": _stamp(ctx.org.clock.now()),
        "is_app_installed": True,
    })


ROUTES = [
    route("POST", r"/services/oauth2/token", oauth_token, kind="auth", auth=False, counted=False),
    route("GET", r"/services/oauth2/userinfo", userinfo, kind="auth", auth=True, counted=False),
    route("GET", r"/id/(?P<org_id>[0-9A-Za-z]{15,18})/(?P<user_id>[0-9A-Za-z]{15,18})", identity,
          kind="auth", auth=True, counted=False),
]
