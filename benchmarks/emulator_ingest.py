"""Benchmark: a 100,000-record Bulk API 2.0 Account insert, with the org's automations active, then inactive.

A small org is served by a separate emulator process (`python -m sfemu serve`); the
client is simple-salesforce's Bulk 2.0 client driven call for call like `sf.bulk2.Account.insert(...)`
(create job, upload the CSV, close, poll with `wait` 0.05 s instead of 5 s). The timer covers the
whole job, from creation to JobComplete. Account automations of the standard org (a validation rule,
before-save triggers, an after-insert trigger that creates a Task for every key account) run in the
first pass; the second pass deactivates them through the Tooling API first (the org is a sandbox,
where triggers may be switched off; the managed-package trigger stays on, as it would on Salesforce).

Prints one line:
    emulator_ingest records=N active_records_per_s=A inactive_records_per_s=I
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

SCALE, SEED = 200, 42  # the org stays small: the inserted Accounts are what is measured
INDUSTRIES = ("Agriculture", "Banking", "Energy", "Finance", "Retail", "Technology")


def accounts_csv(records: int, run: str) -> str:
    """Accounts as a client would upload them; one in ten is a key account (an automation fires)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Name", "External_Id__c", "AccountNumber", "Industry", "AnnualRevenue",
                     "NumberOfEmployees", "Phone", "Is_Key_Account__c", "Customer_Since__c"])
    for i in range(records):
        writer.writerow([f"Bench {run} {i}", f"{run}-{i}", f"ACC-{i:07d}", INDUSTRIES[i % len(INDUSTRIES)],
                         (i % 50) * 500_000, i % 5000, f"+1 415 555 {i % 10000:04d}",
                         "true" if i % 10 == 0 else "false", f"20{i % 24:02d}-0{1 + i % 9}-1{i % 10}"])
    return out.getvalue()


def login(info: dict[str, Any]) -> Any:
    from simple_salesforce import Salesforce

    http = requests.Session()
    http.trust_env = False  # else REQUESTS_CA_BUNDLE in the environment overrides `verify`
    http.verify = info["ca_path"]
    token = http.post(f"{info['base_url']}/services/oauth2/token", timeout=60, data={
        "grant_type": "password", "client_id": info["client_id"], "client_secret": info["client_secret"],
        "username": info["username"], "password": info["password"]}).json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=http)


def bulk_insert(sf: Any, data: str) -> tuple[float, dict[str, Any]]:
    """One insert job through simple-salesforce's Bulk 2.0 client; returns (seconds, final JobInfo)."""
    from simple_salesforce.bulk2 import Operation

    client = sf.bulk2.Account._client
    started = time.perf_counter()
    job = client.create_job(Operation.insert)
    client.upload_job_data(job["id"], data)
    client.close_job(job["id"])
    client.wait_for_job(job["id"], False, 0.05)
    seconds = time.perf_counter() - started
    return seconds, client.get_job(job["id"], False)


# Tooling objects holding Account automations -> (SOQL filter, Metadata that switches one off).
SWITCHES = {
    "ValidationRule": ("EntityDefinition.QualifiedApiName = 'Account'", {"active": False}),
    "WorkflowRule": ("TableEnumOrId = 'Account'", {"active": False}),
    "ApexTrigger": ("TableEnumOrId = 'Account'", {"status": "Inactive"}),  # sandboxes only
}


def account_automations(sf: Any) -> list[tuple[str, str]]:
    """(tooling object, id) of every Account automation a customer may switch off (not managed ones)."""
    found = []
    for kind, (where, _) in SWITCHES.items():
        query = f"SELECT Id, NamespacePrefix FROM {kind} WHERE {where}"
        found += [(kind, row["Id"]) for row in sf.toolingexecute("query/", params={"q": query})["records"]
                  if not row["NamespacePrefix"]]  # managed: Salesforce refuses CANNOT_MODIFY_MANAGED_OBJECT
    return found


def deactivate(sf: Any, found: list[tuple[str, str]]) -> None:
    for kind, record_id in found:
        metadata = SWITCHES[kind][1]
        sf.toolingexecute(f"sobjects/{kind}/{record_id}", method="PATCH", data={"Metadata": metadata})


def main() -> None:
    from sfemu.launch import start_emulator, stop, wait_ready

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="emulator-ingest-") as tmp:
        state_dir = Path(tmp) / "state"
        process, ready = start_emulator(state_dir, 0, SCALE, SEED, ["--no-files", "--org-type", "sandbox"])
        try:
            info = wait_ready(process, ready, state_dir / "emulator.log")
            sf = login(info)
            found = account_automations(sf)
            if not found:
                raise SystemExit("the org has no Account automation to switch off")
            bulk_insert(sf, accounts_csv(100, "warmup"))  # first-use costs (engines, caches) are not measured
            rates = {}
            for label in ("active", "inactive"):
                if label == "inactive":
                    deactivate(sf, found)
                seconds, job = bulk_insert(sf, accounts_csv(args.records, label))
                if job["state"] != "JobComplete" or job["numberRecordsProcessed"] != args.records:
                    raise SystemExit(f"{label} job did not complete: {job}")
                if job["numberRecordsFailed"]:
                    raise SystemExit(f"{label} job: {job['numberRecordsFailed']} records failed")
                rates[label] = args.records / seconds
        finally:
            stop(process)
    print(f"emulator_ingest records={args.records} active_records_per_s={rates['active']:.0f} "
          f"inactive_records_per_s={rates['inactive']:.0f}")


if __name__ == "__main__":
    main()
