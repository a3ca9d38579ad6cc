"""Benchmark: GDPR forget of one record in a store of 1,000,000 records with 30 versions (runs).

The store is built as benchmarks/storage.py builds it (run 0 stages 1M Account-like records, then 30
daily runs at 1% churn), and the record to forget changes in every run, so it has 31 versions. The
forget then runs as `replicator gdpr forget` in a child process (its own peak memory): it finds the
record, rewrites the whole DuckDB file without it (every other version copied) and swaps it in.

Prints one line:
    gdpr_forget records=1000000 runs=30 versions=V store_mb=S seconds=T peak_rss_mb=M load=L
(seconds: wall time of the child, Python start included; peak_rss_mb: the child's max RSS; load: the
1-minute load average at the end, since timings on a shared 2-core machine mean little without it.)
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.storage import RECORD_SQL, account_plan, apply_run, stage_daily, stage_initial
from replicator.store.snapshot import SnapshotStore

TARGET = 424_242  # the record number of the person to forget
CHURN = 0.01
CONFIG = """[storage]
path = "{path}"

[orgs.bench]
login_url = "https://127.0.0.1:8443"
auth = "password"
username = "bench@example.org"
password_env = "REPLICATOR_BENCH_PASSWORD"

[jobs.daily]
org = "bench"
"""


def build(root: Path, records: int, runs: int, churn: float) -> str:
    """The store under root/store, the target changed in every daily run; returns the target's Id."""
    plan = account_plan()
    store = SnapshotStore(root / "store" / "snapshot.duckdb")
    try:
        for day in range(runs + 1):
            staging = root / f"staging{day}.duckdb"
            if day == 0:
                stage_initial(staging, records)
            else:
                stage_daily(staging, records, day, churn)
                with duckdb.connect(str(staging)) as con:
                    source = f"(SELECT {TARGET} AS i, {day} AS v)"
                    con.execute("""DELETE FROM "Account" WHERE "Id" = '001Dn0' || lpad(?, 9, '0') || 'AAA'""",
                                [str(TARGET)])
                    con.execute('INSERT INTO "Account" ' + RECORD_SQL.format(deleted="false", source=source))
            apply_run(store, staging, plan, records if day == 0 else int(records * churn))
            staging.unlink()
        return store.db.execute('SELECT "Id" FROM main."Account" WHERE "Name" LIKE ?',
                                [f"Account {TARGET} v%"]).fetchone()[0]
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the first run")
    parser.add_argument("--runs", type=int, default=30, help="daily runs after it (1%% churn each)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gdpr-") as tmp:
        root = Path(tmp)
        rid = build(root, args.records, args.runs, CHURN)
        db = root / "store" / "snapshot.duckdb"
        with duckdb.connect(str(db), read_only=True) as con:
            versions = con.execute('SELECT count(*) FROM hist."Account" WHERE "Id" = ?', [rid]).fetchone()[0]
        size = db.stat().st_size
        config = root / "config.toml"
        config.write_text(CONFIG.format(path=(root / "store").as_posix()), encoding="utf-8")
        command = [sys.executable, "-c", "from replicator.cli import main; main()", "--config", str(config),
                   "gdpr", "forget", "--object", "Account", "--id", rid, "--json"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"forget failed: {done.stderr or done.stdout}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"gdpr_forget records={args.records} runs={args.runs} versions={versions} "
          f"store_mb={size / 1024 / 1024:.1f} seconds={seconds:.2f} peak_rss_mb={peak:.0f} "
          f"load={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
