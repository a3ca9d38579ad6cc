"""Full backup throughput: records/s, API calls and peak RSS at 100k and 1M Accounts (memory must stay flat).

Usage: backup_full.py [N]   (default 1,000,000; the small run is N/10)
"""

from __future__ import annotations

import shutil
import sys

from _backup_common import backup, config, emulator, stop, workdir


def main() -> None:
    big = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    results = {}
    for n in (big // 10, big):
        root = workdir()
        process, info = emulator(root, {"Account": n})
        try:
            results[n] = backup(config(root, info, ["Account"]))
        finally:
            stop(process)
            shutil.rmtree(root, ignore_errors=True)
    r, small = results[big], results[big // 10]
    print(f"backup_full: {big:,} Account records in {r['wall']:.1f} s = {big / r['wall']:,.0f} records/s, "
          f"{r['api_calls']} API calls, status {r['status']}; peak RSS {small['rss_mib']:.0f} MiB "
          f"at {big // 10:,} vs {r['rss_mib']:.0f} MiB at {big:,}")


if __name__ == "__main__":
    main()
