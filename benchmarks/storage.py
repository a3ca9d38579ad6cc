"""Benchmark: snapshot store size after 30 daily runs at 1% churn, as a multiple of one full snapshot.

Synthetic staging files stand in for the source: run 0 stages 1M Account-like records (17 fields,
typed like the catalog's Arrow schema), then each daily run stages 1% of the records: 90% updates
of existing records, 8% new records, 2% deletions (IsDeleted true). SnapshotStore.apply is driven
exactly as a backup run drives it. Sizes are file sizes after CHECKPOINT; the full snapshot is the
store after run 0 alone.

Prints one line:
    storage runs=30 records=1000000 churn=0.01 size_mb=S full_snapshot_mb=F ratio=R
            initial_load_s=I apply_s=A checkpoint_s=C peak_rss_mb=M load=L
(apply_s: median time of a daily run's apply transaction; checkpoint_s: median time of the
checkpoint after it (with a compaction now and then); peak_rss_mb: VmHWM of this process, which
also generates the staging files; load: the 1-minute load average at the end, since timings on a
shared 2-core machine mean little without it.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from replicator.salesforce.catalog import FieldPlan, ObjectPlan
from replicator.store.snapshot import Section, SnapshotStore

FIELDS = (("Id", "id"), ("IsDeleted", "boolean"), ("Name", "string"), ("Type", "picklist"),
          ("Industry", "picklist"), ("BillingCity", "string"), ("BillingState", "string"),
          ("BillingCountry", "string"), ("Phone", "phone"), ("Website", "url"), ("AnnualRevenue", "currency"),
          ("NumberOfEmployees", "int"), ("Description", "textarea"), ("OwnerId", "reference"),
          ("CreatedDate", "datetime"), ("LastModifiedDate", "datetime"), ("SystemModstamp", "datetime"))

# One record's values from its number i and its version v (0 = as created): deterministic, so a
# daily run can stage a record's full new state without reading it back.
RECORD_SQL = """
SELECT '001Dn0' || lpad(i::VARCHAR, 9, '0') || 'AAA' AS "Id",
       {deleted} AS "IsDeleted",
       'Account ' || i || CASE WHEN v > 0 THEN ' v' || v ELSE '' END AS "Name",
       (['Customer', 'Prospect', 'Partner', 'Reseller'])[1 + (i + v) % 4] AS "Type",
       (['Banking', 'Retail', 'Energy', 'Media', 'Technology', 'Health'])[1 + (i * 7 + v) % 6] AS "Industry",
       'City ' || (i % 5000) AS "BillingCity",
       'State ' || (i % 50) AS "BillingState",
       (['United States', 'Germany', 'France', 'Japan'])[1 + i % 4] AS "BillingCountry",
       '(' || (100 + i % 900) || ') 555-' || lpad((i % 10000)::VARCHAR, 4, '0') AS "Phone",
       'https://www.company' || i || '.example.com' AS "Website",
       CAST(((hash(i, v) % 100000000) / 100.0) AS DECIMAL(18,2)) AS "AnnualRevenue",
       CAST(hash(i, v, 1) % 50000 AS INTEGER) AS "NumberOfEmployees",
       'Notes on account ' || i || ': ' || md5((i * 31 + v)::VARCHAR) AS "Description",
       '005Dn0' || lpad((i % 200)::VARCHAR, 9, '0') || 'AAA' AS "OwnerId",
       TIMESTAMPTZ '2020-01-01 00:00:00+00' + to_seconds(i) AS "CreatedDate",
       TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_days(v) + to_seconds(i % 86400) AS "LastModifiedDate",
       TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_days(v) + to_seconds(i % 86400) AS "SystemModstamp"
FROM {source}
"""


def account_plan() -> ObjectPlan:
    fields = [FieldPlan(name, ftype, True, precision=18 if ftype == "currency" else 0,
                        scale=2 if ftype == "currency" else 0) for name, ftype in FIELDS]
    return ObjectPlan(name="Account", included=True, method="bulk", cursor="SystemModstamp", fields=fields)


def stage_initial(path: Path, records: int) -> None:
    """Staging file of a first run: every record, version 0."""
    with duckdb.connect(str(path)) as con:
        source = f"(SELECT range AS i, 0 AS v FROM range({records}))"
        con.execute('CREATE TABLE "Account" AS ' + RECORD_SQL.format(deleted="false", source=source))


def stage_daily(path: Path, records: int, day: int, churn: float) -> None:
    """Staging file of daily run `day`: 1% of records changed (updates, inserts, deletions)."""
    changed = int(records * churn)
    updates, inserts = int(changed * 0.9), int(changed * 0.08)
    deletes = changed - updates - inserts
    first_new = records + (day - 1) * inserts
    with duckdb.connect(str(path)) as con:
        # Updates hit pseudo-random records outside a 6% pool; deletions take the pool's next records in
        # a fixed order, so no record is deleted twice.
        pool = "hash(i, 'pool') % 1000 < 60"
        con.execute(f"""CREATE TEMP TABLE picks AS
            SELECT i, row_number() OVER (ORDER BY hash(i, {day})) AS n FROM range({records}) t(i)
            WHERE NOT {pool} QUALIFY n <= {updates}""")
        con.execute(f"""CREATE TEMP TABLE gone AS
            SELECT i FROM range({records}) t(i) WHERE {pool}
            QUALIFY row_number() OVER (ORDER BY hash(i))
                BETWEEN {(day - 1) * deletes + 1} AND {day * deletes}""")
        new = f"range({first_new}, {first_new + inserts})"
        parts = [
            RECORD_SQL.format(deleted="false", source=f"(SELECT i, {day} AS v FROM picks)"),
            RECORD_SQL.format(deleted="true", source=f"(SELECT i, {day} AS v FROM gone)"),
            RECORD_SQL.format(deleted="false", source=f"(SELECT range AS i, {day} AS v FROM {new})"),
        ]
        con.execute('CREATE TABLE "Account" AS ' + " UNION ALL ".join(parts))


def apply_run(store: SnapshotStore, staging: Path, plan: ObjectPlan, items: int) -> tuple[float, float]:
    """Drive one run; returns the seconds of apply (the transaction) and of the checkpoint after it."""
    run_id = store.ledger.begin_run("bench", "synthetic", "backup", False)
    start = time.perf_counter()
    store.versions.apply(run_id, staging, [plan], [Section("Account", "ok", items=items, method="bulk")],
                         checkpoint=False)
    applied = time.perf_counter()
    store.versions.checkpoint()
    return applied - start, time.perf_counter() - applied


def build_store(root: Path, records: int, runs: int,
                churn: float) -> tuple[SnapshotStore, float, list[tuple[float, float]], int]:
    """Run 0 plus `runs` daily runs into root/snapshot.duckdb.

    Returns the store, the initial load time (apply + checkpoint), the daily (apply, checkpoint)
    times and the full snapshot's size."""
    plan = account_plan()
    store = SnapshotStore(root / "snapshot.duckdb")
    staging = root / "staging0.duckdb"
    stage_initial(staging, records)
    initial = sum(apply_run(store, staging, plan, records))
    staging.unlink()
    full_size = store.db.path.stat().st_size
    daily = []
    for day in range(1, runs + 1):
        staging = root / f"staging{day}.duckdb"
        stage_daily(staging, records, day, churn)
        daily.append(apply_run(store, staging, plan, int(records * churn)))
        staging.unlink()
    return store, initial, daily, full_size


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--churn", type=float, default=0.01)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        store, initial, daily, full_size = build_store(Path(tmp), args.records, args.runs, args.churn)
        size = store.db.path.stat().st_size
        store.close()
    mb = 1024 * 1024
    print(f"storage runs={args.runs} records={args.records} churn={args.churn} size_mb={size / mb:.1f} "
          f"full_snapshot_mb={full_size / mb:.1f} ratio={size / full_size:.2f} initial_load_s={initial:.2f} "
          f"apply_s={statistics.median(a for a, _ in daily):.2f} "
          f"checkpoint_s={statistics.median(c for _, c in daily):.2f} peak_rss_mb={peak_rss_mb():.0f} "
          f"load={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
