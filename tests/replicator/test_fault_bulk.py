"""The fault matrix: Bulk API query jobs that end Failed. An object big enough for Bulk (10,000
records) is read through REST instead, the run completes and says so in the object's section, and
the next run equals the org field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faultkit import backed_up_job, cli_backup, heal_and_compare, small_org, verdict

from replicator.store.snapshot import SnapshotStore

__all__ = ["small_org"]  # the module fixture, imported for pytest


def test_failed_bulk_jobs_fall_back_to_rest(small_org: Any, tmp_path: Path) -> None:
    small_org.control("POST", "reset", {"scale": 200, "counts": {"Task": 10_000}})  # Bulk from 10,000 records
    job = backed_up_job(small_org, tmp_path)
    small_org.control("PUT", "faults", {"bulk_fail_objects": ["Task"]})
    seen = cli_backup(job.config)
    verdict(seen, job.storage, "completed")
    task = next(s for s in last_sections(job.storage) if s["object"] == "Task")
    assert task["method"] == "rest" and "Bulk API refused" in task["message"], task
    heal_and_compare(job.org, job.config, job.storage)


def last_sections(storage: Path) -> list[dict[str, Any]]:
    store = SnapshotStore(storage / "snapshot.duckdb", read_only=True)
    try:
        return store.ledger.sections(store.ledger.runs()[-1]["run_id"])
    finally:
        store.close()
