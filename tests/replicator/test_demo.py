"""`make demo` end to end: emulator up, full backup, a churned day, incremental backup, time travel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_backs_up_twice_and_shows_a_changed_and_a_deleted_record(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "replicator"), "demo", "--state-dir", str(tmp_path / "demo"),
         "--scale", "600"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"},
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:] + out[-3000:]
    assert out.count("completed") == 2, out
    assert "run 1: completed" in out and "run 2: completed" in out
    assert "A changed Account" in out and "A deleted Account" in out
    # the deleted record's history ends in a tombstone written by run 2
    deleted_part = out[out.index("A deleted Account"):]
    assert "│ 2 " in deleted_part and "True" in deleted_part
    # and the store it leaves behind passes `replicator check`, file bodies read and verified
    checked = subprocess.run(
        [str(Path(sys.executable).parent / "replicator"), "--config", str(tmp_path / "demo" / "config.toml"),
         "check", "--read-blobs", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["problems"] == [] and report["versions"] > 0 and report["blobs_read"] > 0
