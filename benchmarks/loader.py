"""Benchmark: the loader alone (no store, no plan) loading a 10,000-record hierarchy, then 100,000 records.

The hierarchy is what a restore of accounts "with related records" sends: Accounts (a tenth with a
parent Account: a self lookup set by the second pass), Contacts, Opportunities with line items,
Cases and Tasks (polymorphic WhatId/WhoId), in the proportions 10/25/20/20/15/10. A sandbox org is
served by a separate emulator process; the org's automations are switched off around each load with
`switched_off` (as `restore run --disable-automations` does) and are back on afterwards. The timer
covers the load alone; calls are the emulator ledger's count, checked against the plan's price.

Prints one line:
    loader records=10000 records_per_s=R api_calls=C records_per_call=P replicate_records=100000 ...
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import requests

from replicator.config import OrgSettings, PasswordAuth
from replicator.config.secret import Secret
from replicator.salesforce.automations import switched_off
from replicator.salesforce.client import OrgClient
from replicator.sinks.salesforce.load import load
from replicator.sinks.salesforce.model import LoadPlan, ObjectStep, Reference
from replicator.sinks.salesforce.price import price
from replicator.store.automation_journal import AutomationJournal
from replicator.store.idmap import StoreIdMap
from replicator.store.snapshot import SnapshotStore

SHARES = {"Account": 10, "Contact": 25, "Opportunity": 20, "OpportunityLineItem": 20, "Case": 15, "Task": 10}
PREFIX = {"Account": "001", "Contact": "003", "Opportunity": "006", "OpportunityLineItem": "00k",
          "Case": "500", "Task": "00T"}


def ids(sobject: str, n: int, run: str) -> list[str]:
    """Source Ids shaped like Salesforce's (not in the org: records of a backup deleted since)."""
    return [f"{PREFIX[sobject]}{run}{i:011d}AAA" for i in range(n)]


def batches(columns: dict[str, list[Any]]) -> Callable[[], Iterator[pa.RecordBatch]]:
    table = pa.table(columns)
    return lambda: iter(table.to_batches(max_chunksize=5_000))


def plan(total: int, run: str, pricebook_entry: str) -> LoadPlan:
    n = {name: total * share // 100 for name, share in SHARES.items()}
    acc, con, opp = ids("Account", n["Account"], run), ids("Contact", n["Contact"], run), ids(
        "Opportunity", n["Opportunity"], run)
    steps = (
        ObjectStep("Account", ("Name", "Industry", "ParentId"),
                   (Reference("ParentId", ("Account",), deferred=True),),
                   inserts=batches({"Id": acc, "Name": [f"Bench {run} {i}" for i in range(len(acc))],
                                    "Industry": ["Energy"] * len(acc),
                                    "ParentId": [acc[i - 1] if i % 10 == 9 else None
                                                 for i in range(len(acc))]}),
                   insert_count=len(acc)),
        ObjectStep("Contact", ("LastName", "Email", "AccountId"), (Reference("AccountId", ("Account",)),),
                   inserts=batches({"Id": con, "LastName": [f"Person {i}" for i in range(len(con))],
                                    "Email": [f"p{i}@example.com" for i in range(len(con))],
                                    "AccountId": [acc[i % len(acc)] for i in range(len(con))]}),
                   insert_count=len(con)),
        ObjectStep("Opportunity", ("Name", "StageName", "CloseDate", "Amount", "AccountId"),
                   (Reference("AccountId", ("Account",)),),
                   inserts=batches({"Id": opp, "Name": [f"Deal {i}" for i in range(len(opp))],
                                    "StageName": ["Prospecting"] * len(opp),
                                    "CloseDate": pa.array([20_000] * len(opp), pa.date32()),
                                    "Amount": [1000.0 + i for i in range(len(opp))],
                                    "AccountId": [acc[i % len(acc)] for i in range(len(opp))]}),
                   insert_count=len(opp)),
        _leaf("OpportunityLineItem", n, run, ("OpportunityId", "PricebookEntryId", "Quantity", "UnitPrice"),
              (Reference("OpportunityId", ("Opportunity",), required=True),),
              lambda i: {"OpportunityId": opp[i % len(opp)], "PricebookEntryId": pricebook_entry,
                         "Quantity": 2.0, "UnitPrice": 50.0}),
        _leaf("Case", n, run, ("Subject", "Status", "Origin", "AccountId", "ContactId"),
              (Reference("AccountId", ("Account",)), Reference("ContactId", ("Contact",))),
              lambda i: {"Subject": f"Case {i}", "Status": "New", "Origin": "Web",
                         "AccountId": acc[i % len(acc)], "ContactId": con[i % len(con)]}),
        _leaf("Task", n, run, ("Subject", "Status", "Priority", "WhatId", "WhoId"),
              (Reference("WhatId", ("Opportunity", "Account")), Reference("WhoId", ("Contact", "Lead"))),
              lambda i: {"Subject": f"Call {i}", "Status": "Not Started", "Priority": "Normal",
                         "WhatId": opp[i % len(opp)], "WhoId": con[i % len(con)]}),
    )
    return LoadPlan("bench", steps)


def _leaf(sobject: str, n: dict[str, int], run: str, fields: tuple[str, ...], refs: tuple[Reference, ...],
          row: Callable[[int], dict[str, Any]]) -> ObjectStep:
    count = n[sobject]
    rows = [row(i) for i in range(count)]
    columns = {"Id": ids(sobject, count, run), **{f: [r[f] for r in rows] for f in fields}}
    return ObjectStep(sobject, fields, refs, inserts=batches(columns), insert_count=count)


def control(info: dict[str, Any], path: str) -> Any:
    http = requests.Session()
    http.trust_env = False
    http.verify = info["ca_path"]
    return http.get(f"{info['control_url']}/{path}", timeout=120).json()


def measure(client: OrgClient, info: dict[str, Any], store: SnapshotStore, journal: AutomationJournal,
            total: int, run: str, entry: str) -> tuple[float, int]:
    """(records per second, API calls counted by the emulator) of one load with automations off."""
    the_plan = plan(total, run, entry)
    predicted = price(the_plan).calls
    outcomes: list[Any] = []
    with switched_off(client, journal):
        since = control(info, "ledger")["last_seq"]
        started = time.perf_counter()
        result = load(client, the_plan, StoreIdMap(store.db, "bench"), record=outcomes.extend)
        seconds = time.perf_counter() - started
        counted = control(info, f"ledger?since={since}")["summary"]["counted"]
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise SystemExit(f"{len(failed)} records failed, e.g. {failed[0]}")
    if not counted == predicted == result.api_calls:
        raise SystemExit(f"predicted {predicted} calls, the emulator counted {counted}, "
                         f"the loader {result.api_calls}")
    return total / seconds, counted


def main() -> None:
    from sfemu.launch import start_emulator, stop, wait_ready

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--replicate", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="restore-bench-") as tmp:
        root = Path(tmp)
        process, ready = start_emulator(root / "state", 0, 200, 42,
                                        ["--no-files", "--org-type", "sandbox", "--api-limit", "100000000"])
        try:
            info = wait_ready(process, ready, root / "state" / "emulator.log", timeout=600)
            settings = OrgSettings(name="bench", login_url=info["base_url"], api_version="62.0",
                                   ca_bundle=Path(info["ca_path"]), auth=PasswordAuth(
                                       username=info["username"], password=Secret("BENCH", info["password"]),
                                       client_id=info["client_id"],
                                       client_secret=Secret("BENCH_SECRET", info["client_secret"])))
            client = OrgClient(settings)
            entries = client.query_pages("SELECT Id FROM PricebookEntry WHERE IsActive = true LIMIT 1")
            entry = next(entries)[0]["Id"]
            journal = AutomationJournal(root / "automations", "bench")
            with SnapshotStore(root / "store.duckdb") as store:
                rate, calls = measure(client, info, store, journal, args.records, "1", entry)
                big_rate, big_calls = measure(client, info, store, journal, args.replicate, "2", entry)
        finally:
            stop(process)
    print(f"loader records={args.records} records_per_s={rate:.0f} api_calls={calls} "
          f"records_per_call={args.records / calls:.0f} replicate_records={args.replicate} "
          f"replicate_records_per_s={big_rate:.0f} replicate_api_calls={big_calls} "
          f"replicate_records_per_call={args.replicate / big_calls:.0f}")


if __name__ == "__main__":
    main()
