"""Shared fixtures: config files in a temp folder, and one emulator subprocess for the whole session.

The emulator runs as a real subprocess over real HTTPS (as a user would run it), so tests exercise
the same sockets, TLS and auth that simple-salesforce meets against a real org.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

READY_TIMEOUT = 120.0
# Session fixtures `postgres_server` and `mariadb_server`: real database servers for export tests.
pytest_plugins = ["dbservers"]

MINIMAL_CONFIG = """
[storage]
path = "store"

[orgs.demo]
login_url = "https://127.0.0.1:8443"
auth = "password"
username = "admin@demo.replicator.local"
password_env = "REPLICATOR_TEST_PASSWORD"

[jobs.daily]
org = "demo"
"""


@pytest.fixture
def tmp_config(tmp_path: Path) -> Callable[..., Path]:
    """Factory: write a config file (default: a minimal valid one) and return its path.

    `tmp_config(text, name="config.toml")`; text is dedented, so tests can indent their TOML.
    """

    def write(text: str = MINIMAL_CONFIG, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


def ca_session(ca_path: str) -> requests.Session:
    """A requests session that trusts the emulator's CA.

    requests lets REQUESTS_CA_BUNDLE (set on many machines, CI included) override `session.verify`,
    so the session ignores the environment: the emulator is on loopback and needs no proxy.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_path
    return session


@dataclass
class Emulator:
    """A running emulator: connection facts from its ready file plus helpers to talk to it."""

    base_url: str
    ca_path: str
    username: str
    password: str
    client_id: str
    client_secret: str
    control_url: str
    state_dir: Path
    process: subprocess.Popen = field(repr=False)
    security_token: str = ""
    http: requests.Session = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.http = ca_session(self.ca_path)

    def control(self, method: str, path: str, json: Any = None) -> Any:
        """Call the control API; `path` is relative to /_emulator (e.g. "ledger"). Returns parsed JSON."""
        url = f"{self.control_url.rstrip('/')}/{path.lstrip('/')}"
        response = self.http.request(method, url, json=json, timeout=120)
        response.raise_for_status()
        return response.json() if response.content else None

    def token(self) -> dict[str, Any]:
        """A fresh OAuth password-grant token response, fetched the way a connected app would."""
        response = self.http.post(
            f"{self.base_url}/services/oauth2/token",
            data={
                "grant_type": "password", "client_id": self.client_id, "client_secret": self.client_secret,
                "username": self.username, "password": self.password,
            },
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    def sf(self, version: str = "62.0") -> Any:
        """A logged-in simple_salesforce.Salesforce whose own requests.Session trusts the emulator's CA."""
        from simple_salesforce import Salesforce

        token = self.token()
        return Salesforce(
            instance_url=token["instance_url"], session_id=token["access_token"],
            session=ca_session(self.ca_path),
            version=version,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, limit: int = 8000) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return text[-limit:]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """One emulator (scale 2000, seed 42) for the session; its stderr is shown if it fails or tests fail."""
    root = tmp_path_factory.mktemp("emulator")
    state_dir, ready_file, stderr_path = root / "state", root / "ready.json", root / "stderr.log"
    command = [
        sys.executable, "-m", "sfemu", "serve",
        "--host", "127.0.0.1", "--port", str(_free_port()), "--state-dir", str(state_dir),
        "--scale", "2000", "--seed", "42", "--ready-file", str(ready_file),
    ]
    with open(root / "stdout.log", "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                   env=os.environ.copy())
    try:
        info = _wait_ready(process, ready_file, stderr_path)
        yield Emulator(
            base_url=info["base_url"].rstrip("/"), ca_path=info["ca_path"], username=info["username"],
            password=info["password"], client_id=info["client_id"], client_secret=info["client_secret"],
            control_url=info["control_url"], state_dir=state_dir, process=process,
            security_token=info.get("security_token", ""),
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if request.session.testsfailed:
            sys.__stderr__.write(f"\n--- emulator stderr (tail) ---\n{_tail(stderr_path)}\n")


def _wait_ready(process: subprocess.Popen, ready_file: Path, stderr_path: Path) -> dict[str, Any]:
    """Poll for the ready file (written once the server listens); fail fast if the process dies."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"emulator exited with code {process.returncode} before it was ready:\n"
                        f"{_tail(stderr_path)}")
        if ready_file.exists():
            try:
                return json.loads(ready_file.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                pass  # caught mid-write; the next poll sees the whole file
        time.sleep(0.2)
    pytest.fail(f"emulator not ready after {READY_TIMEOUT:.0f} s:\n{_tail(stderr_path)}")
