"""Incremental backups: 1% churn on a 1M-record org (seconds, API calls), then a run with no change
across 50 objects (API calls as the org counts them, logins excluded; goal at most 5: see
replicator/probe.py).

Usage: backup_incremental.py [N]   (Account records, default 1,000,000)
Prints one line: backup_incremental records=.. churn=.. seconds=.. api_calls=.. full_seconds=..
nochange_objects=.. nochange_api_calls=.. (the org's ledger) nochange_login_calls=.. nochange_seconds=..
status=..
"""

from __future__ import annotations

import shutil
import sys

from _backup_common import backup, config, emulator, line, stop, workdir

from sfemu.cli import Control

EXTRA_OBJECTS = 22  # the standard org plans 28-31 objects; these make it 50+
CHURN = 0.01  # share of the Accounts updated between the full and the incremental run


def schema(root) -> str:
    lines = ["objects:"]
    for i in range(EXTRA_OBJECTS):
        lines += [f"  Bench{i:02d}__c:", f'    prefix: "b{i:02d}"', "    fields:",
                  "      Amount__c: {type: double, precision: 18, scale: 2}"]
    path = root / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    root = workdir()
    counts = {"Account": n, **{f"Bench{i:02d}__c": 20 for i in range(EXTRA_OBJECTS)}}
    process, info = emulator(root, counts, ["--schema", schema(root)])
    try:
        path = config(root, info)
        full = backup(path)
        control = Control(info["base_url"], info["ca_path"], None)
        control.call("POST", "churn", {"days": 1, "rates": {"update": CHURN, "insert": 0.0, "delete": 0.0,
                                                           "undelete": 0.0, "objects": ["Account"]}})
        churned = backup(path)
        seq = control.call("GET", "ledger")["last_seq"]
        quiet = backup(path)
        counted = control.call("GET", "ledger", params={"since": seq})["summary"]["counted"]
    finally:
        stop(process)
        shutil.rmtree(root, ignore_errors=True)
    print(line("backup_incremental", records=n, churn=CHURN, seconds=churned["wall"],
               api_calls=churned["api_calls"], full_seconds=full["wall"], nochange_objects=quiet["objects"],
               nochange_api_calls=counted, nochange_login_calls=quiet["api_calls"] - counted,
               nochange_seconds=quiet["wall"], status=quiet["status"]))


if __name__ == "__main__":
    main()
