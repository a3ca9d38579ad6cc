"""Seeding throughput: a production emulator backed up, then a seed of ~10,000 records over five
objects (Account, Contact, Opportunity, Case, Task) into a sandbox emulator with its automations switched
off; then the same at ~100,000.

One line per size: records seeded, seconds, records/s, API calls and records per call (the goal is at
least 200 records per call on REST). `BENCH_SEED_SIZES=10000` runs only the small one.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _backup_common import backup, config, emulator, line, stop, workdir

from replicator.config import load_config
from replicator.seed.jobs import SeedRequest, seed_run
from sfemu.launch import start_emulator, wait_ready

OBJECTS = ["Account", "Contact", "Opportunity", "Case", "Task"]
SHARES = {"Account": 0.2, "Contact": 0.4, "Opportunity": 0.2, "Case": 0.1, "Task": 0.1}
TEMPLATE = """
[root]
object = "Account"
[[root.children]]
relationship = "Contacts"
[[root.children]]
relationship = "Opportunities"
[[root.children]]
relationship = "Cases"
[[root.children]]
relationship = "Tasks"
[objects.Account]
exclude = ["External_Id__c"]
[objects.Contact]
mask = { FirstName = "first_name", LastName = "last_name", Email = "email", Phone = "phone" }
"""


def one(size: int) -> str:
    root = workdir()
    source, info = emulator(root, {o: int(size * s) for o, s in SHARES.items()})
    target_dir = root / "sandbox"
    process, ready = start_emulator(target_dir, 0, 10, 43, ["--org-type", "sandbox", "--no-files",
                                                            "--api-limit", "100000000"])
    try:
        sandbox = wait_ready(process, ready, target_dir / "emulator.log", timeout=600)
        path = config(root, info, OBJECTS)
        text = path.read_text(encoding="utf-8") + f"""
[orgs.sandbox]
login_url = "{sandbox['base_url']}"
auth = "password"
username = "{sandbox['username']}"
password_env = "BENCH_PASSWORD"
client_id = "{sandbox['client_id']}"
client_secret_env = "BENCH_SECRET"
ca_bundle = "{sandbox['ca_path']}"
sandbox = true
"""
        path.write_text(text, encoding="utf-8")
        os.chdir(root)
        backup(path)
        (root / "bench.toml").write_text(TEMPLATE, encoding="utf-8")
        os.environ.setdefault("REPLICATOR_SEED_SECRET", "benchmark-secret")
        started = time.monotonic()
        result = seed_run(load_config(path), SeedRequest(str(root / "bench.toml"), "sandbox",
                                                         disable_automations=True))
        seconds = time.monotonic() - started
        seed = result.seed
        records = seed["insert_success_records"]
        return line(f"seed_{size}", records=records, failed=seed["insert_fail_records"], seconds=seconds,
                    records_per_s=records / seconds, api_calls=seed["api_calls"],
                    records_per_call=records / max(seed["api_calls"], 1))
    finally:
        stop(process)
        stop(source)


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_SEED_SIZES", "10000,100000").split(",")]
    for size in sizes:
        print(one(size), flush=True)


if __name__ == "__main__":
    main()
