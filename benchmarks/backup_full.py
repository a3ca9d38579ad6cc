"""Full backup throughput: records/s, API calls and peak RSS at N/10 and N Accounts (memory must stay flat).

Usage: backup_full.py [N]   (default 1,000,000; the small run is N/10)
Prints one line: backup_full records=.. seconds=.. records_per_s=.. api_calls=.. peak_rss_mb_small=..
peak_rss_mb=.. status=..  (the small run's RSS is named for its size when N is the default: _100k/_1m)
"""

from __future__ import annotations

import shutil
import sys

from _backup_common import backup, config, emulator, line, stop, workdir


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
    print(line("backup_full", records=big, seconds=r["wall"], records_per_s=round(big / r["wall"]),
               api_calls=r["api_calls"], **{f"peak_rss_mb_{_size(big // 10)}": round(small["rss_mib"]),
                                            f"peak_rss_mb_{_size(big)}": round(r["rss_mib"])},
               status=r["status"]))


def _size(n: int) -> str:
    """1000000 -> 1m, 100000 -> 100k, 1234 -> 1234."""
    for unit, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= unit and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


if __name__ == "__main__":
    main()
