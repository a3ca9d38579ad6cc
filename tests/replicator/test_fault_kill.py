"""The fault matrix, the process's side: `replicator backup run` SIGKILLed at every phase (plan,
mid-extract, after extract, files, reconcile, before the commit, after it). A run is atomic: the next
run takes the lock over, marks the killed run 'aborted' (or keeps it 'completed' when it had
committed), leaves no staging behind, completes, and equals the org field by field. A Ctrl-C
is recorded 'aborted' at once."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from faultkit import Job, backed_up_job, churn, finish, heal_and_compare, kill, runs, small_org, start
from test_backup_e2e import _wait_marker as wait_paused

__all__ = ["small_org"]  # the module fixture, imported for pytest


@pytest.fixture(scope="module")
def job(small_org: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Job]:
    """One store for the module: each kill lands on a store the previous scenario healed."""
    yield backed_up_job(small_org, tmp_path_factory.mktemp("kill"))


@pytest.mark.parametrize("phase, args", [
    ("started", ()),  # registered, planning
    ("planned", ()),
    ("extracted", ()),
    ("files", ()),
    ("reconciled", ("--full",)),  # a whole read: the ids the org no longer has are being reconciled
    ("applying", ()),  # counted, about to commit
])
def test_sigkill_before_the_commit_loses_nothing(job: Job, phase: str, args: tuple[str, ...]) -> None:
    churn(job.org)
    before = runs(job.storage)[-1]
    proc = start(job.config, *args, pause=phase)
    wait_paused(proc, phase)
    kill(proc)
    half_written = job.storage / "blobs" / ".tmp" / "0123abcd"  # as a kill inside a download leaves it
    half_written.parent.mkdir(parents=True, exist_ok=True)
    half_written.write_bytes(b"RB1 half a body")
    killed = runs(job.storage)[-1]
    assert killed["run_id"] == before["run_id"] + 1 and killed["status"] == "running"
    healed = heal_and_compare(job.org, job.config, job.storage)
    killed = next(r for r in runs(job.storage) if r["run_id"] == killed["run_id"])
    assert killed["status"] == "aborted" and "killed" in killed["message"], killed
    assert healed == killed["run_id"] + 1
    assert not half_written.exists()


def test_sigkill_mid_extract_loses_nothing(job: Job) -> None:
    churn(job.org)
    job.org.control("PUT", "faults", {"slow_ms": 300})  # each page takes a while: the kill lands inside
    proc = start(job.config)
    deadline = time.monotonic() + 60
    while not any((job.storage / "runs").glob("*/dlt")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before its extract could be interrupted"
    kill(proc)
    assert any((job.storage / "runs").glob("*/*")), "the kill landed outside the extract"
    killed = runs(job.storage)[-1]
    heal_and_compare(job.org, job.config, job.storage)
    assert next(r for r in runs(job.storage) if r["run_id"] == killed["run_id"])["status"] == "aborted"


def test_sigkill_after_the_commit_keeps_the_run(job: Job) -> None:
    """Killed after its commit, before the job state, checkpoint and retention: the run stands
    (DuckDB replays its WAL), and the next run re-reads the previous windows without a duplicate."""
    churn(job.org)
    proc = start(job.config, pause="applied")
    wait_paused(proc, "applied")
    kill(proc)
    committed = runs(job.storage)[-1]
    assert committed["status"] == "completed", committed
    heal_and_compare(job.org, job.config, job.storage)
    assert next(r for r in runs(job.storage) if r["run_id"] == committed["run_id"]) == committed



def test_ctrl_c_says_aborted_at_once(job: Job) -> None:
    """An interrupt (SIGINT, a user's Ctrl-C) before the commit: no traceback, and `runs` says
    'aborted' right away instead of 'running' until the next writer comes."""
    churn(job.org)
    proc = start(job.config, pause="extracted")
    wait_paused(proc, "extracted")
    proc.send_signal(signal.SIGINT)
    seen = finish(proc)
    assert seen.code == 1 and "Traceback" not in seen.err and "Aborted!" in seen.err, seen
    interrupted = runs(job.storage)[-1]
    assert interrupted["status"] == "aborted" and "interrupted" in interrupted["message"], interrupted
    heal_and_compare(job.org, job.config, job.storage)
