"""Benchmark: endpoint export of 1,000,000 Account-like records into PostgreSQL, next to `psql \\copy`.

A store gets one run of 1M records (17 fields, the storage benchmark's generator). A real PostgreSQL
server (tests/dbservers.py, durability on) receives them twice per round, into fresh databases:
  copy:     the same as-of-run data, written once to CSV beforehand (untimed), loaded with
            `psql \\copy` into a table created from the same DDL (the baseline: COPY alone);
  endpoint: `load_endpoint` (read the store as of the run, CSV per Arrow batch, COPY, commit).
Best of --rounds per method. Prints one line:
    export_postgres rows=N seconds=S rows_per_s=R copy_rows_per_s=C ratio=R/C
Needs PostgreSQL server binaries and psql (Debian: postgresql, postgresql-client).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from dbservers import running_postgres  # noqa: E402
from storage import account_plan, stage_initial  # noqa: E402

from replicator.config import EndpointSettings, Secret  # noqa: E402
from replicator.export import load_endpoint  # noqa: E402
from replicator.sinks.sql.tables import create_table  # noqa: E402
from replicator.sources.snapshot import object_types, read_as_of  # noqa: E402
from replicator.store.snapshot import Section, SnapshotStore  # noqa: E402


def build_store(root: Path, records: int) -> tuple[SnapshotStore, int]:
    staging = root / "staging.duckdb"
    stage_initial(staging, records)
    store = SnapshotStore(root / "snapshot.duckdb")
    plan = account_plan()
    run_id = store.ledger.begin_run("bench", "bench", "backup", False)
    store.versions.apply(run_id, staging, [plan], [Section("Account", "ok")])
    staging.unlink()
    return store, run_id


def time_copy(server, store: SnapshotStore, run_id: int, csv_path: Path, database: str) -> float:
    server.create_database(database)
    with psycopg.connect(server.dsn(database), autocommit=True) as con:
        con.execute(create_table("Account", object_types(store, "Account"), "postgresql").sql("postgres"))
    env = {**os.environ, "PGPASSWORD": server.password}
    command = [str(server.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", server.host,
               "-p", str(server.port), "-U", server.user, "-d", database,
               "-c", f"\\copy \"Account\" FROM '{csv_path}' WITH (FORMAT csv)"]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return time.perf_counter() - started


def time_endpoint(server, store: SnapshotStore, run_id: int, database: str) -> float:
    server.create_database(database)
    ep = EndpointSettings(name="bench", kind="postgresql", host=server.host, port=server.port,
                          database=database, user=server.user, password=Secret("BENCH", server.password),
                          schema="public", sslmode="disable")
    started = time.perf_counter()
    report = load_endpoint(store, ep, run_id, ["Account"])
    seconds = time.perf_counter() - started
    assert report.rows == report.tables[0].rows
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with (tempfile.TemporaryDirectory(prefix="export-pg-bench-") as tmp,
          running_postgres(fast=False) as server):
        root = Path(tmp)
        store, run_id = build_store(root, args.records)
        try:
            csv_path = root / "account.csv"
            with pacsv.CSVWriter(csv_path, read_as_of(store, "Account", run_id).schema,
                                 write_options=pacsv.WriteOptions(include_header=False)) as writer:
                for batch in read_as_of(store, "Account", run_id):
                    writer.write_batch(batch)
            os.chmod(root, 0o755)  # psql runs as us, but keep the file readable for any user
            copy_s = endpoint_s = float("inf")
            for n in range(args.rounds):
                copy_s = min(copy_s, time_copy(server, store, run_id, csv_path, f"copy_{n}"))
                endpoint_s = min(endpoint_s, time_endpoint(server, store, run_id, f"endpoint_{n}"))
            rows = store.reads.current_counts()["Account"]
        finally:
            store.close()
    rate, copy_rate = rows / endpoint_s, rows / copy_s
    print(f"export_postgres rows={rows} seconds={endpoint_s:.2f} rows_per_s={rate:.0f} "
          f"copy_rows_per_s={copy_rate:.0f} ratio={rate / copy_rate:.2f}")


if __name__ == "__main__":
    main()
