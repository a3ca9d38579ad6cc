"""Incremental backups: 1% churn on a 1M-record org (seconds, API calls), then a run with no change
across 50 objects (API calls; goal at most 5 with /composite: see replicator/backup.py).

Usage: backup_incremental.py [N]   (Account records, default 1,000,000)
"""

from __future__ import annotations

import shutil
import sys

from _backup_common import backup, config, emulator, stop, workdir

from replicator.emulator.cli import Control

EXTRA_OBJECTS = 22  # the standard org plans 28-31 objects; these make it 50+


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
        control.call("POST", "churn", {"days": 1, "rates": {"update": 0.01, "insert": 0.0, "delete": 0.0,
                                                           "undelete": 0.0, "objects": ["Account"]}})
        churned = backup(path)
        quiet = backup(path)
    finally:
        stop(process)
        shutil.rmtree(root, ignore_errors=True)
    print(f"backup_incremental: {n:,} Accounts, 1% churn: {churned['wall']:.1f} s, "
          f"{churned['api_calls']} API calls (full: {full['wall']:.1f} s); no change across "
          f"{quiet['objects']} objects: {quiet['api_calls']} API calls, {quiet['wall']:.1f} s, "
          f"status {quiet['status']}")


if __name__ == "__main__":
    main()
