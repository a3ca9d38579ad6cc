"""`sfemu start` / `sfemu stop` and `churn --rate`: the emulator driven by scripts as a client would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import requests


def sfemu(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "sfemu", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_start_returns_when_ready_churn_takes_rates_and_stop_ends_the_server(tmp_path: Path) -> None:
    state = tmp_path / "org"
    info = json.loads(sfemu("start", "--state-dir", str(state), "--port", "0", "--scale", "300").stdout)
    try:
        # ready means connectable: the versions resource answers at once
        versions = requests.get(f"{info['base_url']}/services/data/", verify=info["ca_path"], timeout=30)
        assert versions.status_code == 200
        report = json.loads(sfemu("churn", "--url", info["base_url"], "--ca", info["ca_path"],
                                  "--rate", "update=0", "--rate", "insert=0", "--rate", "delete=0.5",
                                  "--rate", "undelete=0").stdout)
        kinds = {kind for counts in report["reports"][0]["counts"].values() for kind in counts}
        assert "delete" in kinds and not kinds & {"update", "insert", "undelete"}
        bad = sfemu("churn", "--url", info["base_url"], "--ca", info["ca_path"], "--rate", "delete=2",
                    check=False)
        assert bad.returncode == 2 and "FRACTION from 0 to 1" in bad.stderr
    finally:
        stopped = sfemu("stop", "--state-dir", str(state))
    assert stopped.stdout.strip() == f"stopped emulator {info['pid']}"
    again = sfemu("stop", "--state-dir", str(state))
    assert again.stdout.strip() == f"emulator {info['pid']} was not running"
    gone = sfemu("stop", "--state-dir", str(tmp_path / "never"), check=False)
    assert gone.returncode == 1 and "no running emulator recorded" in gone.stderr
