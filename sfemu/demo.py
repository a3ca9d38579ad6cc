"""`replicator emulator summary`: start an emulated org and show it the way a Salesforce client sees it.

The summary deliberately goes through simple-salesforce with an OAuth password login, describe,
SOQL and Bulk 2.0, i.e. the same wire protocol a backup run uses, so a working demo means a
working emulator. Login hosts are hard-coded in simple-salesforce (`https://login.salesforce.com`),
so the demo's requests session sends those to the emulator; the leaf certificate also names them.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from rich.console import Console
from rich.table import Table

LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
READY_TIMEOUT = 900.0
API_VERSION = "62.0"


class LoginRedirect(HTTPAdapter):
    """Send requests for Salesforce's login hosts to the emulator instead."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        if parts.hostname in LOGIN_HOSTS:
            request.url = self.base_url + (request.url or "")[len(f"{parts.scheme}://{parts.netloc}"):]
        return super().send(request, *args, **kwargs)


def emulator_session(base_url: str, ca_path: str) -> requests.Session:
    """A requests session that trusts the emulator's CA and reaches it for login.salesforce.com.

    trust_env is off because REQUESTS_CA_BUNDLE in the environment would override `verify`.
    """
    session = requests.Session()
    session.verify = ca_path
    session.trust_env = False
    for host in LOGIN_HOSTS:
        session.mount(f"https://{host}", LoginRedirect(base_url))
    return session


def login(info: dict[str, Any], session: requests.Session | None = None, version: str = API_VERSION) -> Any:
    """simple-salesforce logged in with the OAuth password grant, exactly as a user configures it."""
    from simple_salesforce import Salesforce

    return Salesforce(
        username=info["username"], password=info["password"], consumer_key=info["client_id"],
        consumer_secret=info["client_secret"], domain="test" if info["org_type"] == "sandbox" else "login",
        session=session or emulator_session(info["base_url"], info["ca_path"]), version=version,
    )


# --- starting the emulator -----------------------------------------------------------------------


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_emulator(state_dir: Path, port: int, scale: int, seed: int,
                   extra: list[str] | None = None) -> tuple[subprocess.Popen, Path]:
    """Launch `python -m sfemu serve` in the background; returns (process, ready file)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ready = state_dir / "ready.json"
    ready.unlink(missing_ok=True)
    command = [sys.executable, "-m", "sfemu", "serve", "--state-dir", str(state_dir),
               "--port", str(port if port_free(port) else 0), "--scale", str(scale), "--seed", str(seed),
               "--ready-file", str(ready), *(extra or [])]
    with open(state_dir / "emulator.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    return process, ready


def wait_ready(process: subprocess.Popen, ready: Path, log: Path, timeout: float = READY_TIMEOUT) -> dict:
    """The ready file's contents once the server accepts connections; raises if it dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            raise RuntimeError(f"the emulator exited with code {process.returncode}:\n{tail}")
        if ready.exists():
            try:
                return json.loads(ready.read_text())
            except json.JSONDecodeError:
                pass  # caught mid-write
        time.sleep(0.2)
    raise RuntimeError(f"the emulator was not ready after {timeout:.0f} s (see {log})")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the summary ---------------------------------------------------------------------------------


def summarise(sf: Any, info: dict[str, Any], console: Console) -> None:
    """Print what a client sees of the org; each section reports its own failure and the rest go on."""
    sections: list[tuple[str, Callable[[Any, Console], None]]] = [
        ("Organization", _organization), ("API versions", _versions), ("Objects", _objects),
        ("Sample query", _sample_query), ("Bulk API 2.0", _bulk_count), ("API usage", _usage),
    ]
    console.rule(f"[bold]Emulated Salesforce org at {info['base_url']}")
    for title, section in sections:
        try:
            section(sf, console)
        except Exception as exc:  # one broken section must not hide the others
            console.print(f"[red]{title}: failed: {type(exc).__name__}: {exc}")


def _organization(sf: Any, console: Console) -> None:
    soql = "SELECT Id, Name, OrganizationType, InstanceName, IsSandbox FROM Organization"
    org = sf.query(soql)["records"][0]
    kind = "sandbox" if org.get("IsSandbox") else "production"
    console.print(f"[bold]{org.get('Name')}[/] ({kind}, {org.get('OrganizationType')}), "
                  f"instance {org.get('InstanceName')}, org id {org['Id']}")
    me = sf.session.get(f"https://{sf.sf_instance}/services/oauth2/userinfo", headers=sf.headers).json()
    console.print(f"Logged in as {me.get('preferred_username')} at https://{sf.sf_instance}")


def _versions(sf: Any, console: Console) -> None:
    versions = sf.session.get(f"https://{sf.sf_instance}/services/data/", headers=sf.headers).json()
    numbers = [v["version"] for v in versions]
    console.print(f"API versions: {numbers[0]} ... {numbers[-1]} ({len(numbers)} versions)")


def _objects(sf: Any, console: Console) -> None:
    described = sf.describe()["sobjects"]
    queryable = [o["name"] for o in described if o.get("queryable")]
    counts = sf.restful("limits/recordCount", params={"sObjects": ",".join(queryable)})["sObjects"]
    console.print(f"describeGlobal: {len(described)} objects ({len(queryable)} queryable)")
    table = Table("Object", "Records", title="Record counts (/limits/recordCount)")
    for item in sorted(counts, key=lambda c: -c["count"]):
        table.add_row(item["name"], f"{item['count']:,}")
    console.print(table)


def _sample_query(sf: Any, console: Console) -> None:
    soql = "SELECT Id, Name, Owner.Name, BillingCity FROM Account ORDER BY Name LIMIT 5"
    result = sf.query(soql)
    table = Table("Id", "Name", "Owner", "Billing city", title=soql)
    for r in result["records"]:
        table.add_row(r["Id"], r["Name"], (r.get("Owner") or {}).get("Name"), r.get("BillingCity"))
    console.print(table)


def _bulk_count(sf: Any, console: Console) -> None:
    rows = 0
    for page in sf.bulk2.Contact.query("SELECT Id FROM Contact", wait=1):
        rows += sum(1 for _ in csv.reader(io.StringIO(page))) - 1
    console.print(f"Bulk API 2.0 query of Contact: {rows:,} rows")


def _usage(sf: Any, console: Console) -> None:
    daily = sf.limits()["DailyApiRequests"]
    used = daily["Max"] - daily["Remaining"]
    header = sf.api_usage.get("api-usage")
    seen = f" (last Sforce-Limit-Info: api-usage={header.used}/{header.total})" if header else ""
    console.print(f"DailyApiRequests: {used:,} of {daily['Max']:,} used{seen}")


def run_demo(state_dir: Path, port: int, scale: int, seed: int, keep_running: bool) -> None:
    """Start the emulator, summarise the org through simple-salesforce, then stop it (unless kept)."""
    console = Console()
    process, ready = start_emulator(state_dir, port, scale, seed)
    try:
        with console.status(f"Starting the emulator (the first start generates a {scale}-record org)..."):
            info = wait_ready(process, ready, state_dir / "emulator.log")
        summarise(login(info), info, console)
    except BaseException:
        stop(process)
        raise
    if keep_running:
        console.print(f"\nThe emulator keeps running (pid {process.pid}) at {info['base_url']}; "
                      f"trust its CA with REQUESTS_CA_BUNDLE={info['ca_path']}. "
                      f"Username {info['username']}, password {info['password']}.")
        return
    stop(process)
    console.print("\nEmulator stopped. Run `replicator emulator summary --keep-running` to keep it up.")
