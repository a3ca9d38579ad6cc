"""Hostile and careless requests (issue 13): each gets Salesforce's 400 (or 413), never a 500, and
leaves the org as it was; slow or idle clients are cut off; the ready file with passwords is private.

Everything goes over real HTTPS: requests for well-formed HTTP, raw TLS sockets for what no HTTP
library would send (a huge Content-Length with no body, headers a line at a time).
"""

from __future__ import annotations

import socket
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from sfemu.launch import start_emulator, stop, wait_ready

API = "/services/data/v62.0"


class Api:
    """Bearer-token calls to the shared emulator, answers returned as they come (no raising)."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.headers = {"Authorization": f"Bearer {emulator.token()['access_token']}",
                        "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> Any:
        url = f"{self.emulator.base_url}{API}{path}"
        return self.emulator.http.post(url, data=body, headers=self.headers, timeout=60)

    def query(self, soql: str) -> Any:
        return self.emulator.http.get(f"{self.emulator.base_url}{API}/query", params={"q": soql},
                                      headers=self.headers, timeout=60)

    def accounts(self) -> int:
        return self.query("SELECT COUNT() FROM Account").json()["totalSize"]


@pytest.fixture
def api(emulator: Any) -> Api:
    return Api(emulator)


def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    return response.status_code, body[0]["errorCode"]


DEEP = 100_000
MALFORMED_JSON = {
    "lone surrogate escape": b'{"Name": "\\ud800"}',
    "lone low surrogate escape": b'{"Name": "a\\udc00b"}',
    "surrogate as UTF-8 bytes": '{"Name": "\ud800"}'.encode("utf-8", "surrogatepass"),
    "invalid UTF-8": b'{"Name": "\xff\xfe"}',
    "100,000-deep array": b"[" * DEEP + b"]" * DEEP,
    "100,000-deep object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "101-deep object": b'{"Name": "x", "Description": ' + b"[" * 101 + b"]" * 101 + b"}",
    "NaN": b'{"Name": "x", "NumberOfEmployees": NaN}',
    "Infinity": b'{"Name": "x", "AnnualRevenue": -Infinity}',
}


@pytest.mark.parametrize("body", MALFORMED_JSON.values(), ids=MALFORMED_JSON.keys())
@pytest.mark.parametrize("path", ["/sobjects/Account", "/composite/sobjects"])
def test_malformed_json_is_a_json_parser_error_and_changes_nothing(api: Api, path: str, body: bytes) -> None:
    before = api.accounts()
    assert error_of(api.post(path, body)) == (400, "JSON_PARSER_ERROR")
    assert api.accounts() == before


def test_a_field_name_with_control_characters_is_no_such_column(api: Api) -> None:
    before = api.accounts()
    response = api.post("/sobjects/Account", b'{"Na\\u0000me": "x"}')
    assert error_of(response) == (400, "INVALID_FIELD")
    assert response.json()[0]["message"] == "No such column 'Na\\x00me' on sobject of type Account"
    assert api.accounts() == before


def test_a_surrogate_pair_escape_is_one_character(api: Api, emulator: Any) -> None:
    created = api.post("/sobjects/Account", b'{"Name": "smile \\ud83d\\ude00"}')
    assert created.status_code == 201, created.text
    record_id = created.json()["id"]
    try:
        found = api.query(f"SELECT Name FROM Account WHERE Id = '{record_id}'").json()["records"]
        assert found[0]["Name"] == "smile \U0001F600"
    finally:
        emulator.sf().Account.delete(record_id)


MALFORMED_SOQL = {
    "5,000 nested parentheses": "SELECT Id FROM Account WHERE " + "(" * 5000 + "Name = 'x'" + ")" * 5000,
    "5,000 NOTs": "SELECT Id FROM Account WHERE " + "NOT " * 5000 + "Name = 'x'",
    "101 nested parentheses": "SELECT Id FROM Account WHERE " + "(" * 101 + "Name = 'x'" + ")" * 101,
    "superscript digit": "SELECT Id FROM Account LIMIT \u00b2",
    "Arabic-Indic digits": "SELECT Id FROM Account LIMIT \u0661\u0660",
    "Arabic-Indic date": "SELECT Id FROM Account WHERE CreatedDate > \u0662\u0660\u0662\u0664-01-01",
    "lone surrogate escape": "SELECT Id FROM Account WHERE Name = '\\ud800'",
    "high then non-low escape": "SELECT Id FROM Account WHERE Name = '\\ud83d\\u0041'",
    "next line control": "SELECT Id FROM Account WHERE Name = \u0085'x'",
    "line separator": "SELECT Id\u2028FROM Account",
    "LIMIT past Java's int": "SELECT Id FROM Account LIMIT 1000000000000000000000000",
    "N past Java's int": "SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:99999999999999999",
}


@pytest.mark.parametrize("soql", MALFORMED_SOQL.values(), ids=MALFORMED_SOQL.keys())
def test_hostile_soql_is_a_malformed_query(api: Api, soql: str) -> None:
    assert error_of(api.query(soql)) == (400, "MALFORMED_QUERY")


@pytest.mark.parametrize("soql", [
    "SELECT Id FROM Account WHERE " + "(" * 100 + "Name = 'x'" + ")" * 100,
    "SELECT Id FROM Account WHERE " + "NOT " * 99 + "Name = 'x'",
    "SELECT Id FROM Account WHERE Name = '\\ud83d\\ude00'",
    "SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:2147483647",
    "SELECT Id FROM Account WHERE CreatedDate < N_YEARS_AGO:2147483647",
    "SELECT Id FROM Account WHERE CreatedDate > NEXT_N_WEEKS:2147483647",
], ids=["100 nested parentheses", "99 NOTs", "surrogate pair escape", "LAST_N_DAYS:max", "N_YEARS_AGO:max",
        "NEXT_N_WEEKS:max"])
def test_nesting_and_escapes_within_limits_still_work(api: Api, soql: str) -> None:
    response = api.query(soql)
    assert response.status_code == 200, response.text


ABSURD_CLOCK = {
    "year 9999": (b'{"now": "9999-12-31T23:59:59"}', "INVALID_CONTROL_REQUEST"),
    "year 1": (b'{"now": "0001-01-01T00:00:00"}', "INVALID_CONTROL_REQUEST"),
    "advance 1e20 s": (b'{"advance_seconds": 1e20}', "INVALID_CONTROL_REQUEST"),
    "advance -1e12 s": (b'{"advance_seconds": -1e12}', "INVALID_CONTROL_REQUEST"),
    "advance 1e300 s": (b'{"advance_seconds": 1e300}', "INVALID_CONTROL_REQUEST"),
    "advance NaN": (b'{"advance_seconds": NaN}', "JSON_PARSER_ERROR"),
    "advance Infinity": (b'{"advance_seconds": Infinity}', "JSON_PARSER_ERROR"),
    "advance 10^5000": (b'{"advance_seconds": 1' + b"0" * 5000 + b"}", "JSON_PARSER_ERROR"),
}


@pytest.mark.parametrize("body, code", ABSURD_CLOCK.values(), ids=ABSURD_CLOCK.keys())
def test_absurd_clock_values_are_refused_and_the_clock_keeps_working(emulator: Any, body: bytes,
                                                                     code: str) -> None:
    url = f"{emulator.control_url}/clock"
    before = emulator.control("GET", "clock")["now"]
    response = emulator.http.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert error_of(response) == (400, code)
    after = emulator.control("GET", "clock")["now"]
    assert abs(_seconds(after) - _seconds(before)) < 60  # unmoved (real time passes)
    assert emulator.control("GET", "status")["clock"]  # every reading of the clock still works


@pytest.mark.parametrize("window", [{"start": "0001-01-01T00:00:00+14:00", "end": "2026-01-01T00:00:00Z"},
                                    {"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:59:59-14:00"}],
                         ids=["before year 1 in UTC", "after year 9999 in UTC"])
def test_replication_windows_past_the_calendar_are_invalid_dates(api: Api, window: dict[str, str]) -> None:
    for kind in ("updated", "deleted"):
        url = f"{api.emulator.base_url}{API}/sobjects/Account/{kind}"
        response = api.emulator.http.get(url, params=window, headers=api.headers, timeout=60)
        assert error_of(response) == (400, "INVALID_REPLICATION_DATE")


def test_absurd_churn_days_are_refused(emulator: Any) -> None:
    response = emulator.http.post(f"{emulator.control_url}/churn", json={"days": 10**9}, timeout=60)
    assert error_of(response) == (400, "INVALID_CONTROL_REQUEST")


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


# --- raw connections ------------------------------------------------------------------------------


def tls_socket(base_url: str, ca_path: str) -> ssl.SSLSocket:
    parts = urlsplit(base_url)
    raw = socket.create_connection((parts.hostname, parts.port), timeout=30)
    return ssl.create_default_context(cafile=ca_path).wrap_socket(raw, server_hostname=parts.hostname)


def read_until_closed(sock: ssl.SSLSocket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout` passes)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (TimeoutError, ConnectionError, ssl.SSLError):
        pass
    return out


def read_until(sock: ssl.SSLSocket, marker: bytes, timeout: float = 30) -> bytes:
    """What the server sends until `marker` shows up (or it closes, or `timeout` passes)."""
    sock.settimeout(timeout)
    out = b""
    while marker not in out and (chunk := sock.recv(65536)):
        out += chunk
    return out


def test_a_declared_huge_body_gets_413_before_it_is_sent(emulator: Any) -> None:
    sock = tls_socket(emulator.base_url, emulator.ca_path)
    sock.sendall(b"POST /_emulator/clock HTTP/1.1\r\nHost: emulator\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000000000000\r\n\r\n")  # a terabyte announced, not a byte sent
    answer = read_until(sock, b"REQUEST_ENTITY_TOO_LARGE")
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"The request body exceeds the maximum of 50 MB" in answer


def test_a_chunked_body_over_the_limit_gets_413_once_it_passes_the_limit(emulator: Any) -> None:
    sock = tls_socket(emulator.base_url, emulator.ca_path)
    sock.sendall(b"POST /_emulator/clock HTTP/1.1\r\nHost: emulator\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b" " * (1024 * 1024)
    try:
        for _ in range(51):  # 51 MB: one more than the 50 MB a JSON body may hold
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except (ConnectionError, ssl.SSLError):
        pass  # the server may answer and close before the whole body is sent
    answer = read_until(sock, b"REQUEST_ENTITY_TOO_LARGE")
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413 ")


# --- slow clients and the ready file: an emulator of their own, with a one-second request deadline -


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("strict-emulator")
    process, ready = start_emulator(state, 0, 5, 7, ["--request-timeout", "1"])
    try:
        info = wait_ready(process, ready, state / "emulator.log", timeout=300)
        yield {**info, "ready_file": ready, "log": state / "emulator.log"}
    finally:
        stop(process)


def test_the_ready_file_and_the_log_with_passwords_are_private(strict: dict[str, Any], emulator: Any) -> None:
    session_ready = Path(emulator.state_dir).parent / "ready.json"  # where conftest asks for it
    for path in (strict["ready_file"], strict["log"], session_ready):
        assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600, path
    assert strict["password"] in Path(strict["ready_file"]).read_text()


SLOW = {
    "silent": [],
    "headers a line at a time": [b"GET /services/data HTTP/1.1\r\n", b"Host: emulator\r\n", b"X-A: 1\r\n",
                                 b"X-B: 2\r\n", b"X-C: 3\r\n"],
    "body never finished": [b"POST /_emulator/clock HTTP/1.1\r\nHost: emulator\r\n"
                            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"],
}


@pytest.mark.parametrize("parts", SLOW.values(), ids=SLOW.keys())
def test_slow_or_idle_clients_are_cut_off(strict: dict[str, Any], parts: list[bytes]) -> None:
    sock = tls_socket(strict["base_url"], strict["ca_path"])
    began = time.monotonic()
    try:
        for part in parts:
            sock.sendall(part)
            time.sleep(0.4)
    except (ConnectionError, ssl.SSLError):
        pass  # already cut off
    answer = read_until_closed(sock, timeout=20)
    sock.close()
    assert time.monotonic() - began < 5  # closed by the 1 s deadline, not by our 20 s wait
    assert answer == b""


def test_a_slow_answer_is_not_the_clients_fault(strict: dict[str, Any]) -> None:
    """The deadline covers sending the request; an answer that takes longer than it still arrives."""
    http = requests.Session()
    http.trust_env, http.verify = False, strict["ca_path"]
    http.put(f"{strict['control_url']}/faults", json={"slow_ms": 1500}, timeout=30).raise_for_status()
    try:
        versions = http.get(f"{strict['base_url']}/services/data", timeout=30)
        assert versions.status_code == 200
        again = http.get(f"{strict['base_url']}/services/data", timeout=30)  # same kept-alive connection
        assert again.status_code == 200
    finally:
        http.put(f"{strict['control_url']}/faults", json={}, timeout=30)
