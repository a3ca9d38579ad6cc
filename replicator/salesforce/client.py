"""OrgClient: the only code in Replicator that talks HTTP to Salesforce.

Every job goes through one client per org, so retries, re-login, the API-call ledger and the
budget guard (stop before the org's DailyApiRequests usage crosses the job's cap) are decided in
one place. Authentication builds a simple-salesforce session from any configured method; calls go
through that session with Salesforce's error bodies mapped to a few exceptions a job can act on.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from simple_salesforce import Salesforce

from replicator.config import (
    ClientCredentialsAuth,
    JwtBearerAuth,
    OAuthRefreshTokenAuth,
    OrgSettings,
    PasswordAuth,
)
from replicator.errors import AuthProblem, BudgetProblem, OrgProblem

log = logging.getLogger("replicator.salesforce.client")
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
_TRANSIENT_STATUS = frozenset({500, 502, 503, 504, 420, 429})
# A dropped connection, a timeout or a body cut short (ChunkedEncodingError) are all worth a retry.
_TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                     requests.exceptions.ContentDecodingError)
_JOB_ERROR_CODE = re.compile(r"^([A-Z][A-Z_]+):")
BULK_DONE_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
COLLECTION_RECORDS = 200  # Salesforce: at most 200 records per sObject Collections call
BULK_PAGE_RECORDS = 50_000  # ~45 MB of CSV for a 50-field object: big enough to amortise a call, flat memory
POLL_GROWTH, POLL_MAX_SECONDS = 1.5, 10.0  # doubling overshot a 3 s job by 3 s; 1.5x costs one poll more
# Who the calls made in this context are for (an object name); worker threads inherit it (copy_context).
_SCOPE: ContextVar[str | None] = ContextVar("replicator_org_scope", default=None)
_SOAP_LOGIN = """<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">
 <env:Header><urn:CallOptions><urn:client>replicator</urn:client></urn:CallOptions></env:Header>
 <env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>{username}</n1:username>
 <n1:password>{password}</n1:password></n1:login></env:Body></env:Envelope>"""
_SOAP_UNDELETE = """<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">
 <env:Header><urn:SessionHeader><urn:sessionId>{session}</urn:sessionId></urn:SessionHeader></env:Header>
 <env:Body><urn:undelete>{ids}</urn:undelete></env:Body></env:Envelope>"""


class OrgError(OrgProblem):
    """A Salesforce call that failed for good; `code` is Salesforce's errorCode when there is one."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class AuthenticationError(OrgError, AuthProblem):
    """Credentials no longer work: the job is `disabled` until someone fixes them."""


class BudgetExceeded(OrgError, BudgetProblem):
    """The org's API usage reached the job's cap; stop and resume on the next run."""


@dataclass
class CallLedger:
    """API calls made by this client, by kind, and the org's usage as last reported."""

    calls: int = 0
    by_kind: Counter = field(default_factory=Counter)
    retries: int = 0
    relogins: int = 0
    bulk_jobs: int = 0
    used: int | None = None
    max: int | None = None
    scoped_calls: Counter = field(default_factory=Counter)  # scope -> calls (see OrgClient.scoped)
    scoped_jobs: Counter = field(default_factory=Counter)  # scope -> Bulk query jobs

    def usage_percent(self) -> float | None:
        if self.used is None or not self.max:
            return None
        return 100.0 * self.used / self.max


def _escape_xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Session(requests.Session):
    """A session whose own `verify` wins over REQUESTS_CA_BUNDLE.

    Plain requests lets the environment variable override `session.verify` (requests issue
    #3829), which would silently drop a configured CA bundle; proxies still come from the
    environment as usual.
    """

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings


class OrgClient:
    """One authenticated session to one org, with retries, re-login and a budget guard."""

    def __init__(self, settings: OrgSettings, *, api_cap_percent: float | None = None,
                 max_retries: int = 5, backoff_seconds: float = 0.5) -> None:
        self.settings = settings
        self.api_cap_percent = api_cap_percent
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.ledger = CallLedger()
        self.http = _Session()
        self.http.verify = str(settings.ca_bundle) if settings.ca_bundle else True
        self.http.hooks["response"].append(self._observe)
        self._sf: Salesforce | None = None
        self._org_date: tuple[datetime, float] | None = None  # last Date header, monotonic time seen

    # --- authentication --------------------------------------------------------------------

    @property
    def sf(self) -> Salesforce:
        """The simple-salesforce client, logging in on first use."""
        if self._sf is None:
            self.login()
        assert self._sf is not None
        return self._sf

    @property
    def base_url(self) -> str:
        return self.sf.base_url

    def login(self) -> None:
        """Authenticate with the configured method and build the simple-salesforce session."""
        auth = self.settings.auth
        login_url = self.settings.login_url.rstrip("/")
        try:
            if isinstance(auth, PasswordAuth) and auth.client_id is None:
                token, instance_url = self._soap_login(login_url, auth)
            else:
                token, instance_url = self._oauth_login(login_url, auth)
        except requests.RequestException as exc:
            raise OrgError(f"cannot reach {login_url}: {exc}") from exc
        host = urlsplit(instance_url).netloc
        self._sf = Salesforce(instance=host, session_id=token, session=self.http,
                              version=self.settings.api_version)

    def _soap_login(self, login_url: str, auth: PasswordAuth) -> tuple[str, str]:
        password = auth.password.reveal() + (auth.security_token.reveal() if auth.security_token else "")
        body = _SOAP_LOGIN.format(username=_escape_xml(auth.username), password=_escape_xml(password))
        resp = self.http.post(f"{login_url}/services/Soap/u/{self.settings.api_version}", data=body.encode(),
                              headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"})
        text = resp.text
        if resp.status_code != 200:
            code = re.search(r"<sf:exceptionCode>([^<]*)<", text)
            message = re.search(r"<sf:exceptionMessage>([^<]*)<", text)
            text_of = message.group(1) if message else f"SOAP login failed ({resp.status_code})"
            raise AuthenticationError(text_of, code.group(1) if code else None, resp.status_code)
        session = re.search(r"<sessionId>([^<]+)</sessionId>", text)
        server = re.search(r"<serverUrl>([^<]+)</serverUrl>", text)
        if not session or not server:
            raise AuthenticationError("SOAP login answer has no sessionId/serverUrl")
        parts = urlsplit(server.group(1))
        return session.group(1), f"{parts.scheme}://{parts.netloc}"

    def _oauth_login(self, login_url: str, auth: Any) -> tuple[str, str]:
        form: dict[str, str]
        headers: dict[str, str] = {}
        if isinstance(auth, PasswordAuth):
            password = auth.password.reveal() + (auth.security_token.reveal() if auth.security_token else "")
            form = {"grant_type": "password", "client_id": auth.client_id or "",
                    "client_secret": auth.client_secret.reveal() if auth.client_secret else "",
                    "username": auth.username, "password": password}
        elif isinstance(auth, OAuthRefreshTokenAuth):
            form = {"grant_type": "refresh_token", "client_id": auth.client_id,
                    "client_secret": auth.client_secret.reveal(),
                    "refresh_token": auth.refresh_token.reveal()}
        elif isinstance(auth, ClientCredentialsAuth):
            basic = base64.b64encode(f"{auth.client_id}:{auth.client_secret.reveal()}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
            form = {"grant_type": "client_credentials"}
        elif isinstance(auth, JwtBearerAuth):
            form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": self._jwt_assertion(auth, login_url)}
        else:  # pragma: no cover - config validation makes this unreachable
            raise OrgError(f"unsupported auth method {type(auth).__name__}")
        resp = self.http.post(f"{login_url}/services/oauth2/token", data=form, headers=headers)
        try:
            data = resp.json()
        except ValueError as exc:
            raise AuthenticationError(f"token endpoint answered {resp.status_code} without JSON") from exc
        if resp.status_code != 200:
            raise AuthenticationError(data.get("error_description") or "authentication failure",
                                      data.get("error"), resp.status_code)
        return data["access_token"], data["instance_url"]

    @staticmethod
    def _jwt_assertion(auth: JwtBearerAuth, login_url: str) -> str:
        """An RS256 JWT for the OAuth JWT bearer flow, signed with the configured private key."""
        key = serialization.load_pem_private_key(auth.private_key_file.read_bytes(), password=None)
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
        claims = {"iss": auth.client_id, "sub": auth.username, "aud": login_url,
                  "exp": int(time.time()) + 180, "jti": uuid.uuid4().hex}
        payload = _b64url(json.dumps(claims).encode())
        signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
        return f"{header}.{payload}.{_b64url(signature)}"

    # --- every call ------------------------------------------------------------------------

    @staticmethod
    @contextmanager
    def scoped(name: str) -> Iterator[None]:
        """Count the calls made inside the block (and by threads started there) under `name`.

        Per-object metering by ledger deltas breaks once an object's pages are fetched by a worker
        thread while other objects run; a context variable follows the work instead.
        """
        token = _SCOPE.set(name)
        try:
            yield
        finally:
            _SCOPE.reset(token)

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """requests hook: count the call and remember the org's API usage."""
        path = urlsplit(response.url).path
        soap_login = "/Soap/u/" in path and response.request.headers.get("SOAPAction") != "undelete"
        kind = ("auth" if "/oauth2/" in path or soap_login else "soap" if "/Soap/u/" in path else
                "bulk2" if "/jobs/" in path else "tooling" if "/tooling/" in path else "rest")
        self.ledger.calls += 1
        self.ledger.by_kind[kind] += 1
        if (scope := _SCOPE.get()) is not None:
            self.ledger.scoped_calls[scope] += 1
        usage = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if usage:
            self.ledger.used, self.ledger.max = int(usage.group(1)), int(usage.group(2))
        try:
            said = parsedate_to_datetime(response.headers["Date"])
        except (KeyError, TypeError, ValueError):
            return
        if said.tzinfo is not None:
            self._org_date = (said.astimezone(UTC), time.monotonic())

    def org_time(self) -> datetime | None:
        """The org's clock now, from the Date header of its last answer (logging in if none yet).

        Exact to the second the header carries: the org's time lies within a second after this
        value. None when the org sends no Date header.
        """
        if self._org_date is None:
            self.sf  # noqa: B018  (the login's answer carries the first Date)
        if self._org_date is None:
            return None
        said, seen = self._org_date
        return said + timedelta(seconds=time.monotonic() - seen)

    def check_budget(self) -> None:
        """Refuse to spend more calls once the org's usage reached the job's cap."""
        pct = self.ledger.usage_percent()
        if self.api_cap_percent is not None and pct is not None and pct >= self.api_cap_percent:
            raise BudgetExceeded(f"API usage at {pct:.1f}% of DailyApiRequests reached the cap of "
                                 f"{self.api_cap_percent}%", "API_CAP_REACHED")

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None, data: bytes | None = None, headers: dict[str, str] | None = None,
                expect: tuple[int, ...] = (200,), idempotent: bool = True) -> requests.Response:
        """One REST call below /services/data/vXX.X/ (or an absolute path), fully read, with retries.

        Transient faults (5xx, 429, dropped connections, truncated bodies) are retried with
        exponential backoff; an expired session logs in again once; REQUEST_LIMIT_EXCEEDED and the
        budget cap raise at once, since retrying would only burn more of the org's allocation.
        A call that is not `idempotent` (creating records) is never resent after the org may have
        received it: a lost answer would otherwise create the records twice.
        """
        def call() -> requests.Response:
            url = path if path.startswith("https://") else (
                f"https://{self.sf.sf_instance}{path}" if path.startswith("/") else self.sf.base_url + path)
            hdrs = dict(self.sf.headers)
            if data is not None:
                hdrs["Content-Type"] = "text/csv"
            hdrs.update(headers or {})
            resp = self.http.request(method, url, params=params, json=json_body, data=data, headers=hdrs)
            _ = resp.content  # read the whole body now, so a cut connection is retried here
            return resp

        relogged = False
        for attempt in range(self.max_retries + 1):
            self.check_budget()
            try:
                resp = call()
            except _TRANSIENT_ERRORS as exc:
                if not idempotent and not isinstance(exc, requests.exceptions.ConnectTimeout):
                    raise OrgError(f"the answer to {method} {path} was lost ({type(exc).__name__}); "
                                   "the org may have applied it", "ANSWER_LOST") from exc
                self._pause(attempt, exc)
                continue
            if resp.status_code in expect:
                return resp
            code, message = _error_of(resp)
            if resp.status_code == 401 and not relogged:
                relogged = True
                self.ledger.relogins += 1
                self.login()
                continue
            if resp.status_code in _TRANSIENT_STATUS and attempt < self.max_retries and idempotent:
                self._pause(attempt, OrgError(message, code, resp.status_code))
                continue
            if resp.status_code == 401:
                raise AuthenticationError(message, code, 401)
            if code == "REQUEST_LIMIT_EXCEEDED":
                raise BudgetExceeded(message, code, resp.status_code)
            raise OrgError(message, code, resp.status_code)
        raise OrgError(f"{method} {path} failed after {self.max_retries + 1} attempts", "RETRIES_EXHAUSTED")

    def _pause(self, attempt: int, exc: Exception) -> None:
        if attempt >= self.max_retries:
            raise OrgError(f"giving up after {attempt + 1} attempts: {exc}", "RETRIES_EXHAUSTED") from exc
        self.ledger.retries += 1
        delay = self.backoff_seconds * (2 ** attempt)
        log.warning("transient Salesforce fault (%s); retrying in %.1fs", exc, delay)
        time.sleep(delay)

    def get_json(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None).json()

    # --- reads -----------------------------------------------------------------------------

    def describe_global(self) -> dict[str, Any]:
        return self.get_json("sobjects")

    def describe(self, sobject: str) -> dict[str, Any]:
        return self.get_json(f"sobjects/{sobject}/describe")

    def limits(self) -> dict[str, Any]:
        return self.get_json("limits")

    def record_counts(self, sobjects: list[str]) -> dict[str, int]:
        """Approximate counts from /limits/recordCount (objects with no records are absent: 0)."""
        counts: dict[str, int] = {}
        for start in range(0, len(sobjects), 100):
            chunk = sobjects[start:start + 100]
            data = self.get_json("limits/recordCount", sObjects=",".join(chunk))
            counts.update({item["name"]: item["count"] for item in data.get("sObjects", [])})
        return {name: counts.get(name, 0) for name in sobjects}

    def query_pages(self, soql: str, *, include_deleted: bool = False) -> Iterator[list[dict[str, Any]]]:
        """REST query result pages, following nextRecordsUrl until done."""
        data = self.get_json("queryAll" if include_deleted else "query", q=soql)
        while True:
            yield data["records"]
            if data.get("done", True):
                return
            data = self.get_json(data["nextRecordsUrl"])

    def count(self, soql_from_where: str, *, include_deleted: bool = False) -> int:
        """SELECT COUNT() over a FROM/WHERE clause built from describe names."""
        resource = "queryAll" if include_deleted else "query"
        data = self.get_json(resource, q=f"SELECT COUNT() {soql_from_where}")
        return int(data["totalSize"])

    def deleted(self, sobject: str, start: datetime, end: datetime) -> dict[str, Any]:
        """/sobjects/X/deleted for [start, end): ids deleted in the window, purged ones included."""
        window = {"start": soql_datetime(start), "end": soql_datetime(end)}
        return self.get_json(f"sobjects/{sobject}/deleted", **window)

    def bulk_query(self, soql: str, *, include_deleted: bool = False, max_records: int = BULK_PAGE_RECORDS,
                   poll_seconds: float = 0.2, timeout_seconds: float = 3600.0) -> Iterator[bytes]:
        """A Bulk API 2.0 query as raw CSV pages (header row on each), the job deleted at the end.

        Pages stream: each is yielded as soon as it arrived and released before the next is asked
        for, so memory holds one page (`max_records` rows) whatever the query's size.

        Failures keep Salesforce's code: job creation errors (INVALIDENTITY, API_ERROR, INVALID_FIELD...)
        come from the error body, a Failed job's code from its errorMessage prefix (QUERY_TIMEOUT...).
        """
        info = self.request("POST", "jobs/query", json_body={
            "operation": "queryAll" if include_deleted else "query", "query": soql,
            "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"}).json()
        job = f"jobs/query/{info['id']}"
        self.ledger.bulk_jobs += 1
        if (scope := _SCOPE.get()) is not None:
            self.ledger.scoped_jobs[scope] += 1
        try:
            self._wait_for_job(job, poll_seconds, timeout_seconds)
            locator: str | None = None
            while True:
                params: dict[str, Any] = {"maxRecords": max_records}
                if locator:
                    params["locator"] = locator
                resp = self.request("GET", f"{job}/results", params=params)
                locator = resp.headers.get("Sforce-Locator")
                page = resp.content
                del resp  # hold one page at a time: the frame keeps nothing while the next one loads
                yield page
                del page
                if not locator or locator == "null":
                    return
        finally:
            try:
                self.request("DELETE", job, expect=(204,))
            except OrgError as exc:  # results expire on their own after 7 days
                log.warning("could not delete Bulk query job %s: %s", info["id"], exc)

    def _wait_for_job(self, job: str, poll_seconds: float, timeout_seconds: float) -> None:
        """Poll a query job until it is done; the first poll is immediate, later ones back off."""
        deadline = time.monotonic() + timeout_seconds
        delay = poll_seconds
        while True:
            state = self.get_json(job)
            if state["state"] == "JobComplete":
                return
            if state["state"] in BULK_DONE_STATES:
                message = state.get("errorMessage") or f"Bulk query job ended {state['state']}"
                code = _JOB_ERROR_CODE.match(message)
                raise OrgError(message, code.group(1) if code else "BULK_JOB_FAILED")
            if time.monotonic() > deadline:
                self.request("PATCH", job, json_body={"state": "Aborted"})
                raise OrgError(f"Bulk query job not done after {timeout_seconds:.0f}s", "BULK_JOB_TIMEOUT")
            time.sleep(delay)
            delay = min(delay * POLL_GROWTH, POLL_MAX_SECONDS)

    # --- writes ----------------------------------------------------------------------------

    def create_records(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """sObject Collections create (at most 200, each with `attributes.type`), allOrNone false.

        One result per record in order: `{"id", "success", "errors": [{"statusCode", "message"}]}`,
        so one failing record never stops the others.
        """
        return self._collection("POST", records)

    def update_records(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """sObject Collections update (at most 200 records carrying their Id), allOrNone false."""
        return self._collection("PATCH", records)

    def undelete(self, ids: list[str]) -> list[dict[str, Any]]:
        """Partner SOAP `undelete` of at most 200 Ids from the recycle bin: the records keep their Ids.

        REST has no undelete, and an insert would give a new Id and break every other system's link
        to the record. Results come as sObject Collections' do (one per Id, in order), so the loader
        treats both alike. A SOAP fault (HTTP 500) fails the whole call; an expired session logs in
        again once. Never resent after a lost answer: a second undelete would report the records the
        first one restored as failures.
        """
        if not ids:
            return []
        if len(ids) > COLLECTION_RECORDS:
            raise ValueError(f"at most {COLLECTION_RECORDS} ids per undelete call")
        path = f"/services/Soap/u/{self.settings.api_version}"
        for attempt in range(2):
            body = _SOAP_UNDELETE.format(session=_escape_xml(self.sf.session_id),
                                         ids="".join(f"<urn:ids>{_escape_xml(i)}</urn:ids>" for i in ids))
            resp = self.request("POST", path, data=body.encode(), expect=(200, 500), idempotent=False,
                                headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "undelete"})
            if resp.status_code == 200:
                return _undelete_results(resp.content)
            code, message = _soap_fault(resp.content)
            if code == "INVALID_SESSION_ID" and attempt == 0:
                self.ledger.relogins += 1
                self.login()
                continue
            if code == "REQUEST_LIMIT_EXCEEDED":
                raise BudgetExceeded(message, code, resp.status_code)
            raise OrgError(message, code, resp.status_code)
        raise AssertionError("unreachable")  # pragma: no cover

    def upsert_records(self, sobject: str, external_id: str,
                       records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """sObject Collections upsert by an external id field (at most 200), allOrNone false; each
        result says `created` true (inserted) or false (the record with that key was updated)."""
        if not records:
            return []
        if len(records) > COLLECTION_RECORDS:
            raise ValueError(f"at most {COLLECTION_RECORDS} records per sObject Collections call")
        resp = self.request("PATCH", f"composite/sobjects/{sobject}/{external_id}",
                            json_body={"allOrNone": False, "records": records}, idempotent=True)
        return resp.json()

    def delete_records(self, ids: list[str]) -> list[dict[str, Any]]:
        """sObject Collections delete (at most 200 Ids, to the recycle bin), allOrNone false."""
        if not ids:
            return []
        if len(ids) > COLLECTION_RECORDS:
            raise ValueError(f"at most {COLLECTION_RECORDS} records per sObject Collections call")
        return self.request("DELETE", "composite/sobjects",
                            params={"ids": ",".join(ids), "allOrNone": "false"}, idempotent=True).json()

    def _collection(self, method: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not records:
            return []
        if len(records) > COLLECTION_RECORDS:
            raise ValueError(f"at most {COLLECTION_RECORDS} records per sObject Collections call")
        resp = self.request(method, "composite/sobjects", json_body={"allOrNone": False, "records": records},
                            idempotent=method != "POST")
        return resp.json()


def soql_datetime(moment: datetime) -> str:
    """Salesforce's UTC datetime literal, e.g. 2024-05-01T12:00:00.000Z (naive means UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _undelete_results(content: bytes) -> list[dict[str, Any]]:
    """UndeleteResult elements as `{"id", "success", "errors": [{"statusCode", "message"}]}`."""
    results = []
    for element in ET.fromstring(content).iter():
        if _local(element.tag) != "result":
            continue
        parts = {_local(child.tag): child for child in element}
        errors = [{_local(e.tag): (e.text or "") for e in error if _local(e.tag) in ("statusCode", "message")}
                  for error in element if _local(error.tag) == "errors"]
        ident = parts.get("id")
        results.append({"id": (ident.text or None) if ident is not None else None,
                        "success": (parts["success"].text or "") == "true" if "success" in parts else False,
                        "errors": errors})
    return results


def _soap_fault(content: bytes) -> tuple[str | None, str]:
    """A SOAP fault's exceptionCode (or faultcode) and message."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return None, f"SOAP call failed: {content[:200]!r}"
    found = {_local(e.tag): (e.text or "") for e in root.iter()}
    code = found.get("exceptionCode") or found.get("faultcode", "").split(":")[-1] or None
    return code, found.get("exceptionMessage") or found.get("faultstring") or "SOAP call failed"


def _error_of(resp: requests.Response) -> tuple[str | None, str]:
    """Salesforce's errorCode and message from an error body (JSON array, object or text)."""
    try:
        body = resp.json()
    except ValueError:
        return None, f"HTTP {resp.status_code}: {resp.text[:200]}"
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("errorCode"), body[0].get("message", "")
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("error")
        return code, body.get("message") or body.get("error_description", "")
    return None, f"HTTP {resp.status_code}"
