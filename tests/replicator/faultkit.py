"""The fault matrix's kit (tests/replicator/test_fault_*.py): a small org, the CLI run as a user runs it,
and the verdict every fault must end in.

Each scenario: a day of churn, the fault switched on, `replicator backup run` in a subprocess; the run
must end in the status that is true, print one line, no traceback, exit with the status's code, and
`runs` must say the same. Then the fault is cleared, the next run completes and the store as of it
equals the org's ground truth (`/_emulator/dump`) field by field, as test_exactness compares.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_backup_e2e import PASSWORD_ENV, SECRET_ENV, config_text, near_minute_end
from test_exactness import differences, truth

from replicator.backup.run import BackupRequest, run_backup
from replicator.check import CheckRequest, check
from replicator.config import load_config
from replicator.store.snapshot import SnapshotStore

SCALE = 200  # ~15 Accounts, 30 Tasks: the whole matrix stays within a few minutes on one core
OBJECTS = ["Account", "Contact", "Opportunity", "Case", "Task", "Attachment", "ContentVersion"]
EXIT = {"completed": 0, "partial": 2, "failed": 1, "disabled": 1}
REPLICATOR = str(Path(sys.executable).parent / "replicator")


@pytest.fixture(scope="module")
def small_org(emulator: Any) -> Iterator[Any]:
    """The worker's emulator scaled down for this module, its credentials in the environment;
    restored as it was started afterwards (other modules expect the default org)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv(PASSWORD_ENV, emulator.password)
        env.setenv(SECRET_ENV, emulator.client_secret)
        emulator.control("POST", "reset", {"scale": SCALE})
        try:
            yield emulator
        finally:
            emulator.control("PUT", "faults", {})
            emulator.control("POST", "limits", {"max": 15000})
            emulator.control("POST", "reset", {})


def write_config(folder: Path, org: Any, storage: Path, **kwargs: Any) -> Path:
    """A job over OBJECTS whose store lives in `storage` (absolute: a test may mount it)."""
    text = config_text(org, wait=True, selection=f"include = {json.dumps(OBJECTS)}", **kwargs)
    path = folder / "config.toml"
    path.write_text(text.replace('path = "store"', f'path = "{storage}"'), encoding="utf-8")
    return path


@dataclass
class Outcome:
    """What a user saw of one `replicator backup run`: exit code and both streams."""

    code: int
    out: str
    err: str


def start(config: Path, *args: str, pause: str | None = None, pause_seconds: float = 60,
          env: dict[str, str] | None = None) -> subprocess.Popen:
    """`replicator backup run` as a user starts it; `pause` sleeps at that phase (run.pause)."""
    environ = {**os.environ, "REPLICATOR_TEST_PAUSE_AT": pause or "",
               "REPLICATOR_TEST_PAUSE_SECONDS": str(pause_seconds), **(env or {})}
    return subprocess.Popen([REPLICATOR, "--config", str(config), "backup", "run", *args], env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def finish(proc: subprocess.Popen, timeout: float = 120) -> Outcome:
    out, err = proc.communicate(timeout=timeout)
    return Outcome(proc.returncode, out.decode(), err.decode())


def cli_backup(config: Path, *args: str, **kwargs: Any) -> Outcome:
    return finish(start(config, *args, **kwargs))


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def runs(storage: Path) -> list[dict[str, Any]]:
    """The run ledger, oldest first, as `runs` shows it."""
    store = SnapshotStore(storage / "snapshot.duckdb", read_only=True)
    try:
        return store.ledger.runs()
    finally:
        store.close()


def verdict(seen: Outcome, storage: Path, status: str, *words: str) -> dict[str, Any]:
    """The run ended `status`, said so in one line naming `words`, with the status's exit code and no
    traceback, and the ledger records the same status and message. Returns the run's row."""
    assert "Traceback" not in seen.err, seen.err
    lines = seen.out.strip().splitlines()
    assert len(lines) == 1, seen.out
    assert lines[0].split(": ", 1)[1].startswith(f"{status} ("), (status, seen.out, seen.err[-2000:])
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert seen.code == EXIT[status], (seen.code, seen.out)
    last = runs(storage)[-1]
    assert last["status"] == status and last["message"] in lines[0], (last, lines[0])
    return last


def heal_and_compare(org: Any, config: Path, storage: Path) -> int:
    """Faults off, one more run (in-process): it completes, equals the org field by field, and the
    store passes `check` (no run left running, no staging left behind, every body readable)."""
    org.control("PUT", "faults", {})
    near_minute_end(org)  # the run waits for the org's change log to pass its start: seconds from there
    result = run_backup(load_config(config), BackupRequest("daily"))
    assert result.status == "completed", result.message
    assert_equals_org(org, storage, result.run_id)
    checked = check(load_config(config), CheckRequest(read_blobs=True))  # history tiles, bodies decrypt
    assert not checked.problems, checked.text()
    return result.run_id


def assert_equals_org(org: Any, storage: Path, run_id: int) -> None:
    problems = []
    for obj in OBJECTS:
        problems += differences(store_rows(storage, obj, run_id), truth(org, obj), obj)
    assert not problems, f"{len(problems)} differences, e.g. {problems[:5]}"


def store_rows(storage: Path, obj: str, run_id: int) -> dict[str, dict[str, Any]]:
    store = SnapshotStore(storage / "snapshot.duckdb", read_only=True)
    try:
        table = store.reads.sql(f'SELECT * FROM "{obj}_as_of"({int(run_id)})', None)
    finally:
        store.close()
    return {r["Id"]: r for r in table.to_pylist()}


def churn(org: Any) -> None:
    """A day of changes of every kind; the clock then near a minute's end, so the next run (maybe a
    child process: a longer lead) waits only seconds for the org's change log to pass its start."""
    org.control("POST", "churn", {"days": 1, "rates": {"update": 0.1, "insert": 0.05, "delete": 0.05,
                                                       "undelete": 0.5}})
    near_minute_end(org, lead=20)


@dataclass
class Job:
    """A job with one completed backup behind it and a day of changes in the org since."""

    org: Any
    config: Path
    storage: Path


def backed_up_job(org: Any, folder: Path, storage: Path | None = None, **kwargs: Any) -> Job:
    storage = storage or folder / "store"
    config = write_config(folder, org, storage, **kwargs)
    first = run_backup(load_config(config), BackupRequest("daily"))
    assert first.status == "completed", first.message
    churn(org)
    return Job(org, config, storage)
