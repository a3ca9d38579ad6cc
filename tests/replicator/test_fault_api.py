"""The fault matrix, Salesforce's side: server errors, cut bodies, slow answers, expiring sessions,
QUERY_TIMEOUT, failed Bulk jobs, the API allocation running out and a wrong password. Each run ends
in the status that is true, in one line, with its exit code; the next run equals the org exactly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from faultkit import OBJECTS, Job, backed_up_job, churn, cli_backup, heal_and_compare, small_org, verdict

__all__ = ["small_org"]  # the module fixture, imported for pytest


@pytest.fixture(scope="module")
def backed_up(small_org: Any, tmp_path_factory: pytest.TempPathFactory) -> Job:
    """One store for the module: each fault lands on a store the previous scenario healed."""
    return backed_up_job(small_org, tmp_path_factory.mktemp("api"))


@pytest.fixture
def job(backed_up: Job) -> Iterator[Job]:
    """The module's job after another day of changes; faults and limits cleared afterwards."""
    churn(backed_up.org)
    yield backed_up
    backed_up.org.control("PUT", "faults", {})
    backed_up.org.control("POST", "limits", {"max": 15000})


@pytest.mark.parametrize("faults", [
    {"error_rate": 0.15, "error_status": 500, "seed": 4},
    {"error_rate": 0.15, "error_status": 503, "seed": 5},
    {"reset_rate": 0.15, "reset_min_bytes": 1500, "seed": 6},
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


def test_query_timeouts_on_every_object_fail_the_run_naming_them(job: Job) -> None:
    job.org.control("PUT", "faults", {"query_timeout_objects": OBJECTS})
    seen = cli_backup(job.config, "--full")  # every object read: none is "unchanged", so none is ok
    verdict(seen, job.storage, "failed", "no object could be backed up: ", *OBJECTS)
    heal_and_compare(job.org, job.config, job.storage)


def test_the_org_running_out_of_api_calls_makes_the_run_partial(job: Job) -> None:
    # an hour on, the previous scenarios' calls are out of the 24-hour window for good (churn moves
    # the clock by exactly a day): the allocation left is what this test sets, not what slides out
    job.org.control("POST", "clock", {"advance_seconds": 3600})
    used = job.org.control("GET", "limits")["used"]
    job.org.control("POST", "limits", {"max": used + 2})  # fewer calls than a day of changes needs
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

