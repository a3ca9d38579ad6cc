"""Benchmark: time travel in the snapshot store (1M Account-like records, 30 daily versions at 1% churn).

The store is built like benchmarks/storage.py does (synthetic staging files driven through
SnapshotStore.apply). Then, through the SQL an analyst would type:
  as_of_s     the full as-of snapshot `SELECT * FROM "Account_as_of"(run)` fetched as Arrow
              (1M records), for runs spread over the history;
  history_ms  `SELECT * FROM "Account_history"(id)` for records with several versions and without.
Medians of several repetitions.

Prints one line:
    time_travel records=1000000 versions=30 as_of_s=A history_ms=H as_of_cpu_s=P as_of_count_ms=C load=L
(as_of_cpu_s: CPU seconds of the as-of snapshot over all threads, a number that machine load does
not inflate; as_of_count_ms: `SELECT count(*)` as of a run; load: the 1-minute load average when done.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from storage import build_store  # benchmarks/ is on sys.path when this script runs


def timed(fn, reps: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(reps):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tt-") as tmp:
        store = build_store(Path(tmp), args.records, args.runs, args.churn)[0]
        last = store.ledger.runs()[-1]["run_id"]
        runs = [max(1, last * k // 4) for k in (1, 2, 3, 4)]
        rows = store.reads.sql(f'SELECT count(*) AS n FROM "Account_as_of"({last})').column("n")[0].as_py()
        assert rows >= args.records, rows
        as_of = statistics.median(
            timed(lambda r=r: store.reads.sql(f'SELECT * FROM "Account_as_of"({r})'), args.reps)
            for r in runs)
        as_of_cpu = statistics.median(
            timed(lambda r=r: store.reads.sql(f'SELECT * FROM "Account_as_of"({r})'), args.reps,
                  time.process_time)
            for r in runs)
        count = statistics.median(
            timed(lambda r=r: store.reads.sql(f'SELECT count(*) FROM "Account_as_of"({r})'), args.reps)
            for r in runs)
        ids = store.reads.read('SELECT "Id" FROM hist."Account" GROUP BY "Id" HAVING count(*) > 1 LIMIT 5'
                               ).column("Id")
        ids = [*ids.to_pylist(), "001Dn0000000007AAA", "001Dn0000500000AAA", "001Dn0000999999AAA"]
        history = statistics.median(
            timed(lambda i=i: store.reads.read('SELECT * FROM "Account_history"(?)', [i]), args.reps)
            for i in ids)
        store.close()
    print(f"time_travel records={args.records} versions={args.runs} as_of_s={as_of:.3f} "
          f"history_ms={history * 1000:.1f} as_of_cpu_s={as_of_cpu:.3f} as_of_count_ms={count * 1000:.1f} "
          f"load={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
