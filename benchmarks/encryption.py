"""Benchmark: what encryption at rest costs, and how fast the audit log appends.

Builds a plain store with one history table of 1M Account-like rows (17 columns), then times
`store encrypt` (store.encryption.rekey from no key to a key), `store rotate-key` (key to key), and
a full scan of the table (count and the summed length of two text columns, best of 3) on the plain
and on the encrypted file; then 1,000 audit appends (each flocked and fsynced, with its head).

Prints one line:
    encryption rows=1000000 plain_mb=P encrypted_mb=E encrypt_s=S rotate_s=R scan_plain_ms=A
               scan_encrypted_ms=B audit_appends_per_s=N peak_rss_mb=M load=L
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from replicator.config import Secret
from replicator.store import encryption
from replicator.store.audit_log import AuditLog

ROWS = 1_000_000
TABLE_SQL = """
CREATE SCHEMA hist;
CREATE TABLE hist."Account" AS
SELECT '001Dn0' || lpad(i::VARCHAR, 9, '0') || 'AAA' AS "Id", false AS "IsDeleted",
       'Account ' || i AS "Name", (['Customer', 'Prospect', 'Partner'])[1 + i % 3] AS "Type",
       'City ' || (i % 5000) AS "BillingCity", 'State ' || (i % 50) AS "BillingState",
       '(' || (100 + i % 900) || ') 555-' || lpad((i % 10000)::VARCHAR, 4, '0') AS "Phone",
       'https://www.company' || i || '.example.com' AS "Website",
       CAST(hash(i) % 100000000 / 100.0 AS DECIMAL(18, 2)) AS "AnnualRevenue",
       CAST(hash(i, 1) % 50000 AS INTEGER) AS "NumberOfEmployees",
       'Notes on account ' || i || ': ' || md5(i::VARCHAR) AS "Description",
       '005Dn0' || lpad((i % 200)::VARCHAR, 9, '0') || 'AAA' AS "OwnerId",
       TIMESTAMPTZ '2020-01-01 00:00:00+00' + to_seconds(i) AS "SystemModstamp",
       TIMESTAMPTZ '2024-01-01 00:00:00+00' AS _valid_from, NULL::TIMESTAMPTZ AS _valid_to,
       1 AS _run_id, false AS _deleted, i AS _key
FROM range({rows}) t(i);
"""
SCAN = 'SELECT count(*), sum(length("Description") + length("Website")) FROM hist."Account"'


def scan_ms(path: Path, key: Secret | None) -> float:
    """Best of three full scans, on a fresh connection (cold DuckDB buffer, warm OS cache)."""
    best = float("inf")
    for _ in range(3):
        con = encryption.connect(path, key, read_only=True)
        try:
            start = time.perf_counter()
            con.execute(SCAN).fetchall()
            best = min(best, time.perf_counter() - start)
        finally:
            con.close()
    return best * 1000


def main() -> None:
    key, new_key = Secret("BENCH_KEY", "b" * 44), Secret("BENCH_NEW_KEY", "c" * 44)
    with tempfile.TemporaryDirectory(prefix="replicator-bench-") as tmp:
        path = Path(tmp) / "snapshot.duckdb"
        with duckdb.connect(str(path)) as con:
            con.execute(TABLE_SQL.format(rows=ROWS))
        plain_mb = path.stat().st_size / 1e6
        plain_ms = scan_ms(path, None)
        start = time.perf_counter()
        encryption.rekey(path, None, key)
        encrypt_s = time.perf_counter() - start
        encrypted_mb = path.stat().st_size / 1e6
        encrypted_ms = scan_ms(path, key)
        start = time.perf_counter()
        encryption.rekey(path, key, new_key)
        rotate_s = time.perf_counter() - start
        log = AuditLog(Path(tmp) / "audit.jsonl")
        start = time.perf_counter()
        for n in range(1000):
            log.append({"key": "bench", "parameters": {"n": n}})
        appends = 1000 / (time.perf_counter() - start)
        assert log.verify().broken is None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"encryption rows={ROWS} plain_mb={plain_mb:.1f} encrypted_mb={encrypted_mb:.1f} "
          f"encrypt_s={encrypt_s:.2f} rotate_s={rotate_s:.2f} scan_plain_ms={plain_ms:.0f} "
          f"scan_encrypted_ms={encrypted_ms:.0f} audit_appends_per_s={appends:.0f} peak_rss_mb={rss:.0f} "
          f"load={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
