"""Benchmark: a full Bulk API 2.0 query of every Account, end to end over HTTPS.

The org is generated in this process (datagen), then served by a separate emulator process
(`python -m sfemu serve`, which reuses the generated org), so the peak RSS reported is
the server's own while it serves the query. The client is simple-salesforce's Bulk 2.0 client
driven call for call like `sf.bulk2.Account.query(...)` (create job, wait, page with
maxRecords=50000); the timer starts at job creation and `wait` is 0.1 s instead of 5 s.

Prints one line:
    emulator_bulk records=N seconds=S records_per_s=R peak_rss_mb=M
(peak_rss_mb: VmHWM of the server process.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

FIELDS = ("Id, Name, Type, ParentId, BillingStreet, BillingCity, BillingPostalCode, BillingCountry, "
          "BillingLatitude, Phone, Industry, AnnualRevenue, NumberOfEmployees, Is_Key_Account__c, "
          "CreatedDate, LastModifiedDate, SystemModstamp")
SCALE, SEED = 1000, 42  # the rest of the org stays small: Accounts are what is measured


def generate(state_dir: Path, records: int) -> int:
    """Provision the org the server will reuse (same generation parameters as its command line).

    Returns the live Accounts: the generator also puts a few in the recycle bin."""
    from sfemu.org import OrgSettings, open_org

    settings = OrgSettings(state_dir=state_dir.resolve(), seed=SEED, scale=SCALE,
                           counts={"Account": records}, files=False)
    org, _ = open_org(settings)
    live = org.store.count(org.schema.get("Account"))
    org.store.close()
    return live


def start_server(state_dir: Path, records: int) -> tuple[subprocess.Popen, dict]:
    ready = state_dir.parent / "ready.json"
    command = [sys.executable, "-m", "sfemu", "serve", "--port", "0",
               "--state-dir", str(state_dir), "--scale", str(SCALE), "--seed", str(SEED),
               "--count", f"Account={records}", "--no-files", "--ready-file", str(ready)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"emulator exited with code {process.returncode}")
        if ready.exists():
            try:
                return process, json.loads(ready.read_text())
            except json.JSONDecodeError:
                pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("emulator did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bulk_query(info: dict, soql: str, page: int) -> int:
    """Run the query through simple-salesforce's Bulk 2.0 client; returns the records received."""
    from simple_salesforce import Salesforce
    from simple_salesforce.bulk2 import Operation

    http = requests.Session()
    http.trust_env = False  # else REQUESTS_CA_BUNDLE in the environment overrides `verify`
    http.verify = info["ca_path"]
    token = http.post(f"{info['base_url']}/services/oauth2/token", timeout=60, data={
        "grant_type": "password", "client_id": info["client_id"], "client_secret": info["client_secret"],
        "username": info["username"], "password": info["password"]}).json()
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=http)
    client = sf.bulk2.Account._client
    job = client.create_job(Operation.query, soql)
    client.wait_for_job(job["id"], True, 0.1)
    total, locator = 0, ""
    while True:
        result = client.get_query_results(job["id"], locator, page)
        total += result["number_of_records"]
        locator = result["locator"]
        if not locator:
            return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--max-records", type=int, default=50_000, help="results page size (maxRecords)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="emulator-bulk-") as tmp:
        state_dir = Path(tmp) / "state"
        expected = generate(state_dir, args.records)
        process, info = start_server(state_dir, args.records)
        try:
            started = time.perf_counter()
            received = bulk_query(info, f"SELECT {FIELDS} FROM Account", args.max_records)
            seconds = time.perf_counter() - started
            rss = peak_rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
    if received != expected:
        raise SystemExit(f"expected {expected} records, received {received}")
    print(f"emulator_bulk records={received} seconds={seconds:.2f} records_per_s={received / seconds:.0f} "
          f"peak_rss_mb={rss:.0f}")


if __name__ == "__main__":
    main()
