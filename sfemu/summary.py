"""`sfemu summary`: start an emulated org and show it the way a Salesforce client sees it.

The summary deliberately goes through simple-salesforce with an OAuth password login, describe,
SOQL and Bulk 2.0, i.e. the same wire protocol a backup run uses, so a working summary means a
working emulator.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sfemu.client import login
from sfemu.launch import start_emulator, stop, wait_ready


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


def run_summary(state_dir: Path, port: int, scale: int, seed: int, keep_running: bool) -> None:
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
