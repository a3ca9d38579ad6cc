"""The fault matrix, Salesforce's side: server errors, cut bodies, slow answers, expiring sessions,
QUERY_TIMEOUT, failed Bulk jobs, the API allocation running out and a wrong password. Each run ends
in the status that is true, in one line, with its exit code; the next run equals the org exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import Job, backed_up_job, cli_backup, heal_and_compare, small_org, verdict

__all__ = ["small_org"]  # the module fixture, imported for pytest


@pytest.fixture
def job(small_org: Any, tmp_path: Path) -> Iterator[Job]:
    yield backed_up_job(small_org, tmp_path)
    small_org.control("PUT", "faults", {})
    small_org.control("POST", "limits", {"max": 15000})


@pytest.mark.parametrize("faults", [
    {"error_rate": 0.3, "error_status": 500, "seed": 4},
    {"error_rate": 0.3, "error_status": 503, "seed": 5},
    {"reset_rate": 0.3, "reset_min_bytes": 1500, "seed": 6},
    {"slow_ms": 150},
    {"session_expire_after": 4},
], ids=["500-at-a-rate", "503-at-a-rate", "cut-bodies", "slow", "session-expiry"])
def test_transient_faults_are_retried_and_the_run_completes(job: Job, faults: dict) -> None:
    job.org.control("PUT", "faults", faults)
    seen = cli_backup(job.config)
    verdict(seen, job.storage, "completed", "100.0% of records backed up")
    heal_and_compare(job.org, job.config, job.storage)


def test_an_org_failing_every_call_fails_the_run_naming_the_error(job: Job) -> None:
    job.org.control("PUT", "faults", {"error_rate": 1.0, "error_status": 503})
    seen = cli_backup(job.config)
    verdict(seen, job.storage, "failed", "503")
    heal_and_compare(job.org, job.config, job.storage)


def test_query_timeouts_on_the_big_objects_make_the_run_partial(job: Job) -> None:
    # Account, Contact and Task hold most of the org: their last known counts weigh in the 95% rule
    job.org.control("PUT", "faults", {"query_timeout_objects": ["Account", "Contact", "Task"]})
    seen = cli_backup(job.config)
    row = verdict(seen, job.storage, "partial", "not backed up: ", "Account", "Contact", "Task")
    share = float(row["message"].split("%")[0])
    assert share < 50, row["message"]
    heal_and_compare(job.org, job.config, job.storage)


def test_failed_bulk_jobs_fall_back_to_rest(small_org: Any, tmp_path: Path) -> None:
    small_org.control("POST", "reset", {"scale": 200, "counts": {"Task": 10_000}})  # Bulk from 10,000 records
    try:
        job = backed_up_job(small_org, tmp_path)
        small_org.control("PUT", "faults", {"bulk_fail_objects": ["Task"]})
        seen = cli_backup(job.config)
        verdict(seen, job.storage, "completed")
        task = next(s for s in _sections(job.storage) if s["object"] == "Task")
        assert task["method"] == "rest" and "Bulk API refused" in task["message"], task
        heal_and_compare(job.org, job.config, job.storage)
    finally:
        small_org.control("PUT", "faults", {})
        small_org.control("POST", "reset", {"scale": 200})


def test_the_org_running_out_of_api_calls_makes_the_run_partial(job: Job) -> None:
    used = job.org.control("GET", "limits")["used"]
    job.org.control("POST", "limits", {"max": used + 12})  # the plan and a few objects, then refused
    seen = cli_backup(job.config)
    verdict(seen, job.storage, "partial", "API")
    job.org.control("POST", "limits", {"max": 15000})
    heal_and_compare(job.org, job.config, job.storage)


def test_a_wrong_password_disables_the_job_until_it_is_fixed(job: Job, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    seen = cli_backup(job.config, env={"REPLICATOR_E2E_PASSWORD": "not-the-password"})
    verdict(seen, job.storage, "disabled", "credentials")
    assert "not-the-password" not in seen.out + seen.err
    heal_and_compare(job.org, job.config, job.storage)


def _sections(storage: Path) -> list[dict[str, Any]]:
    from replicator.store.snapshot import SnapshotStore

    store = SnapshotStore(storage / "snapshot.duckdb", read_only=True)
    try:
        return store.ledger.sections(store.ledger.runs()[-1]["run_id"])
    finally:
        store.close()
