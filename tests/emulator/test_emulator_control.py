"""The control API (/_emulator/): status, clock, churn, ground-truth dumps, the call ledger and
clear 400s for bad input. Runs against the shared emulator and leaves it as it found it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from sfemu.client import emulator_session, login

FIXED_NOW = "2030-03-01T12:00:00+00:00"
STAMPS = {"CreatedDate", "LastModifiedDate", "SystemModstamp", "_DeletedAt"}


class Control:
    """Calls to the control API that return the raw response (tests look at status codes)."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.http = emulator_session(emulator.base_url, emulator.ca_path)

    def __call__(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return self.http.request(method, f"{self.emulator.control_url}/{path}", json=body, params=params,
                                 timeout=300)

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self(method, path, body, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def dump(self, obj: str, **params: Any) -> list[dict[str, str]]:
        response = self("GET", f"dump/{obj}", **params)
        assert response.status_code == 200, response.text
        return list(csv.DictReader(io.StringIO(response.text)))


@pytest.fixture
def control(emulator: Any) -> Iterator[Control]:
    yield Control(emulator)


@pytest.fixture
def pristine(control: Control) -> Iterator[None]:
    """Tests that change the org's data hand the next test the generated org again."""
    yield
    control.ok("POST", "reset", {})


def test_status_describes_the_org(control: Control) -> None:
    status = control.ok("GET", "status")
    assert status["org_id"].startswith("00D") and len(status["org_id"]) == 18
    assert status["org_type"] == "production"
    assert status["seed"] == 42 and status["scale"] == 2000
    assert status["counts"]["Account"] > 0
    assert set(status["api_usage"]) == {"used", "max", "remaining"}
    assert abs(datetime.fromisoformat(status["clock"]) - datetime.now(UTC)) < timedelta(days=3650)


def test_clock_set_and_advance(control: Control) -> None:
    try:
        assert control.ok("POST", "clock", {"now": FIXED_NOW})["now"].startswith("2030-03-01T12:00:0")
        moved = datetime.fromisoformat(control.ok("POST", "clock", {"advance_seconds": 7200})["now"])
        moved_by = moved - datetime.fromisoformat(FIXED_NOW)
        assert timedelta(hours=2) <= moved_by < timedelta(hours=2, seconds=30)
        assert datetime.fromisoformat(control.ok("GET", "clock")["now"]) >= moved
    finally:
        control.ok("POST", "clock", {"now": datetime.now(UTC).isoformat()})


def test_churn_stamps_follow_the_clock(control: Control, pristine: None) -> None:
    control.ok("POST", "reset", {"now": FIXED_NOW})
    before = {r["Id"]: r for r in control.dump("Account", deleted="true")}
    report = control.ok("POST", "churn", {"days": 2, "seed": 5})
    assert report["days"] == 2 and len(report["reports"]) == 2
    clock = datetime.fromisoformat(report["clock"])
    assert clock - datetime.fromisoformat(FIXED_NOW) >= timedelta(days=2)
    after = control.dump("Account", deleted="true")
    changed = [r for r in after
               if r["Id"] not in before or r["SystemModstamp"] != before[r["Id"]]["SystemModstamp"]]
    assert changed, "two days of churn changed no Account"
    start = datetime.fromisoformat(FIXED_NOW).replace(tzinfo=None)
    for row in changed:
        stamp = datetime.fromisoformat(row["SystemModstamp"].rstrip("Z"))
        assert start <= stamp <= clock.replace(tzinfo=None), row  # audit stamps on the emulated clock
    # A record's history never goes back in time.
    assert all(r["LastModifiedDate"] >= r["CreatedDate"] for r in after)


def test_reset_and_churn_are_deterministic(control: Control, pristine: None) -> None:
    dumps = []
    for _ in range(2):
        control.ok("POST", "reset", {"now": FIXED_NOW, "seed": 7, "scale": 400})
        control.ok("POST", "churn", {"days": 2, "seed": 11, "rates": {"update": 0.2, "delete": 0.05}})
        dumps.append({obj: control.dump(obj, deleted="true") for obj in ("Account", "Contact")})
    assert [len(d["Account"]) for d in dumps] == [len(dumps[0]["Account"])] * 2
    # Values, ids, deletions and audit stamps: identical, whatever the wall clock did in between.
    assert dumps[0] == dumps[1]
    stamps = {r["SystemModstamp"] for r in dumps[0]["Account"]}
    assert any(s.startswith(("2030-03-02", "2030-03-03")) for s in stamps)  # churned in the simulated days


def test_dump_formats_and_deleted_rows(control: Control) -> None:
    live = control.dump("Account")
    everything = control.dump("Account", deleted="true")
    ids = [r["Id"] for r in everything]
    assert ids == sorted(ids)
    assert len(live) == control.ok("GET", "status")["counts"]["Account"]
    binned = [r for r in everything if r["_DeletedAt"]]
    assert len(everything) == len(live) + len(binned)
    assert all(r["IsDeleted"] == "true" for r in binned)
    assert {"Id", "Name", "IsDeleted", "SystemModstamp", "_DeletedAt"} <= set(live[0])
    jsonl = control("GET", "dump/Account", format="jsonl")
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["Id"] for r in lines] == [r["Id"] for r in live]
    assert lines[0]["Name"] == live[0]["Name"]
    assert lines[0]["SystemModstamp"] == live[0]["SystemModstamp"]


def test_ledger_counts_api_calls(emulator: Any, control: Control) -> None:
    sf = login({"base_url": emulator.base_url, "ca_path": emulator.ca_path, "username": emulator.username,
                "password": emulator.password, "client_id": emulator.client_id,
                "client_secret": emulator.client_secret, "org_type": "production"})
    start = control.ok("GET", "ledger")["last_seq"]
    used = control.ok("GET", "limits")["used"]
    sf.query("SELECT Id FROM Account LIMIT 1")
    sf.describe()
    sf.limits()
    ledger = control.ok("GET", "ledger", since=start)
    api = [c for c in ledger["calls"] if c["kind"] == "rest"]
    assert [c["method"] for c in api] == ["GET"] * 3
    assert all(c["counted"] and c["status"] == 200 and c["user"] == emulator.username for c in api)
    assert ledger["summary"]["by_kind"]["rest"] == 3
    assert ledger["api_usage"]["used"] == used + 3
    assert all(c["seq"] > start for c in ledger["calls"])
    control.ok("DELETE", "ledger")
    assert control.ok("GET", "ledger")["calls"][0]["seq"] == 1


@pytest.mark.parametrize(("method", "path", "body", "params", "needle"), [
    ("POST", "clock", {"now": "yesterday"}, {}, "ISO-8601"),
    ("POST", "clock", {"now": FIXED_NOW, "advance_seconds": 3}, {}, "exactly one"),
    ("POST", "clock", {"advance_seconds": "soon"}, {}, "number"),
    ("PUT", "faults", {"error_rate": 3}, {}, "between 0 and 1"),
    ("PUT", "faults", {"explode": True}, {}, "unknown fault setting"),
    ("PUT", "faults", [1, 2], {}, "JSON object"),
    ("POST", "churn", {"days": 0}, {}, "at least 1"),
    ("POST", "churn", {"rates": {"explode": 1}}, {}, "bad churn rates"),
    ("POST", "reset", {"scale": "big"}, {}, "integer"),
    ("POST", "reset", {"counts": {"NoSuchObject": 3}}, {}, "unknown object"),
    ("POST", "limits", {"max": -1}, {}, "at least 0"),
    ("GET", "dump/NoSuchObject", None, {}, "unknown object"),
    ("GET", "dump/Account", None, {"format": "xml"}, "format"),
    ("GET", "ledger", None, {"since": "x"}, "integer"),
])
def test_bad_input_is_a_400_with_a_message(control: Control, method: str, path: str, body: Any,
                                           params: dict[str, str], needle: str) -> None:
    response = control(method, path, body, **params)
    assert response.status_code == 400, response.text
    error = response.json()[0]
    assert needle in error["message"]
    assert error["errorCode"] == "INVALID_CONTROL_REQUEST"


def test_malformed_json_is_a_400(control: Control) -> None:
    response = control.http.post(f"{control.emulator.control_url}/clock", data=b"{nope", timeout=30)
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_expiring_sessions_forces_invalid_session(emulator: Any, control: Control) -> None:
    session = emulator_session(emulator.base_url, emulator.ca_path)
    token = session.post(f"{emulator.base_url}/services/oauth2/token", data={
        "grant_type": "password", "client_id": emulator.client_id, "client_secret": emulator.client_secret,
        "username": emulator.username, "password": emulator.password}, timeout=30).json()["access_token"]
    url = f"{emulator.base_url}/services/data/v62.0/limits"
    headers = {"Authorization": f"Bearer {token}"}
    assert session.get(url, headers=headers, timeout=30).status_code == 200
    assert control.ok("POST", "sessions/expire")["revoked"] >= 1
    response = session.get(url, headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.json()[0]["errorCode"] == "INVALID_SESSION_ID"
