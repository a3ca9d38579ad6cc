"""Restore and replicate throughput: records/s and API calls through the one loader.

1. restore: an emulator holds a hierarchy of about N records (Accounts -> Contacts, Opportunities ->
   line items, Cases, Tasks); it is backed up, every record of it is deleted and purged, and
   `restore run --object Account --where "IsDeleted = false" --with-related children` brings it back
   (new Ids, every reference remapped).
2. replicate: M records (Accounts, Contacts, Opportunities, Cases) backed up from one emulator and
   replicated into a second one started as a sandbox.
Validation rules are switched off in the target first (generated data breaks them on purpose).
Usage: restore.py [N] [M]   (defaults 10,000 and 100,000)
Prints one line: restore records=.. seconds=.. records_per_s=.. api_calls=.. records_per_call=..
replicate_records=.. replicate_seconds=.. replicate_records_per_s=.. replicate_api_calls=..
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from _backup_common import config, emulator, line, stop, workdir

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import ca_session  # noqa: E402

from replicator.backup.run import BackupRequest, run_backup  # noqa: E402
from replicator.config import load_config  # noqa: E402
from replicator.restore.job import RestoreRequest, run_restore  # noqa: E402
from replicator.restore.replicate import ReplicateRequest, replicate  # noqa: E402
from sfemu.launch import start_emulator, wait_ready  # noqa: E402

HIERARCHY = {"Account": 0.1, "Contact": 0.3, "Opportunity": 0.2, "OpportunityLineItem": 0.2, "Case": 0.1,
             "Task": 0.1}
REPLICATED = {"Account": 0.1, "Contact": 0.4, "Opportunity": 0.3, "Case": 0.2}


class Org:
    """A logged-in REST session to one emulator (set-up and clean-up calls, not measured)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info, self.http = info, ca_session(info["ca_path"])
        token = self.http.post(f"{info['base_url']}/services/oauth2/token", data={
            "grant_type": "password", "client_id": info["client_id"], "client_secret": info["client_secret"],
            "username": info["username"], "password": info["password"]}, timeout=60).json()
        self.base = f"{token['instance_url']}/services/data/v62.0/"
        self.http.headers["Authorization"] = f"Bearer {token['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, self.base + path, timeout=600, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def ids(self, obj: str) -> list[str]:
        found, page = [], self.call("GET", "query", params={"q": f"SELECT Id FROM {obj}"})
        while True:
            found += [r["Id"] for r in page["records"]]
            if page.get("done", True):
                return found
            page = self.call("GET", page["nextRecordsUrl"].split("/v62.0/", 1)[1])

    def delete_all(self, obj: str) -> None:
        ids = self.ids(obj)
        for at in range(0, len(ids), 200):
            self.call("DELETE", "composite/sobjects", params={"ids": ",".join(ids[at:at + 200]),
                                                               "allOrNone": "false"})

    def validation_rules_off(self) -> None:
        rules = self.call("GET", "tooling/query", params={"q": "SELECT Id FROM ValidationRule"})["records"]
        for rule in rules:
            meta = self.call("GET", f"tooling/sobjects/ValidationRule/{rule['Id']}")["Metadata"]
            self.call("PATCH", f"tooling/sobjects/ValidationRule/{rule['Id']}",
                      json={"Metadata": {**meta, "active": False}})


def counts(total: int, shares: dict[str, float]) -> dict[str, int]:
    return {obj: int(total * share) for obj, share in shares.items()}


def bench_restore(total: int) -> dict[str, Any]:
    root = workdir()
    sizes = counts(total, HIERARCHY)
    process, info = emulator(root, sizes)
    try:
        path = config(root, info, list(sizes))
        run_backup(load_config(path), BackupRequest("bench"))
        org = Org(info)
        org.validation_rules_off()
        for obj in reversed(list(sizes)):
            org.delete_all(obj)
        org.http.post(info["control_url"].rstrip("/") + "/recyclebin/empty", json={}, timeout=600)
        started = time.monotonic()
        result = run_restore(load_config(path), RestoreRequest(object="Account", where="IsDeleted = false",
                                                               with_related="children"))
        seconds = time.monotonic() - started
        records = sum(c.get("inserted", 0) + c.get("undeleted", 0) + c.get("updated", 0)
                      for c in result.counts.values())
        return {"records": records, "seconds": seconds, "api_calls": result.api_calls,
                "failed": len(result.failures)}
    finally:
        stop(process)
        shutil.rmtree(root, ignore_errors=True)


def bench_replicate(total: int) -> dict[str, Any]:
    root = workdir()
    sizes = counts(total, REPLICATED)
    process, info = emulator(root, sizes)
    sandbox_state = root / "sandbox"
    sandbox, ready = start_emulator(sandbox_state, 0, 50, 7, ["--org-type", "sandbox", "--no-files",
                                                             "--api-limit", "100000000"])
    try:
        target = wait_ready(sandbox, ready, sandbox_state / "emulator.log", timeout=600)
        path = config(root, info, list(sizes))
        with path.open("a") as text:
            text.write(f'[orgs.sandbox]\nlogin_url = "{target["base_url"]}"\nauth = "password"\n'
                       f'username = "{target["username"]}"\npassword_env = "BENCH_SANDBOX_PASSWORD"\n'
                       f'client_id = "{target["client_id"]}"\nclient_secret_env = "BENCH_SANDBOX_SECRET"\n'
                       f'ca_bundle = "{target["ca_path"]}"\n')
        os.environ["BENCH_SANDBOX_PASSWORD"], os.environ["BENCH_SANDBOX_SECRET"] = \
            target["password"], target["client_secret"]
        run_backup(load_config(path), BackupRequest("bench"))
        Org(target).validation_rules_off()
        started = time.monotonic()
        result = replicate(load_config(path), ReplicateRequest(to_org="sandbox"))
        seconds = time.monotonic() - started
        records = sum(c.get("inserted", 0) for c in result.counts.values())
        return {"records": records, "seconds": seconds, "api_calls": result.api_calls,
                "failed": len(result.failures)}
    finally:
        stop(sandbox)
        stop(process)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    hierarchy = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    copied = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    r = bench_restore(hierarchy)
    p = bench_replicate(copied)
    print(line("restore", records=r["records"], seconds=r["seconds"],
               records_per_s=round(r["records"] / r["seconds"]), api_calls=r["api_calls"],
               records_per_call=r["records"] / max(r["api_calls"], 1), failed=r["failed"],
               replicate_records=p["records"], replicate_seconds=p["seconds"],
               replicate_records_per_s=round(p["records"] / p["seconds"]), replicate_api_calls=p["api_calls"],
               replicate_failed=p["failed"]))


if __name__ == "__main__":
    main()
