"""The fault matrix, the storage's side: the storage folder fills up or turns read-only while a run
works (a real tmpfs and read-only bind mounts; the tests run as root). Before the commit the run
ends 'failed' in one sentence with nothing of it committed; after the commit it stays 'completed'
and says what the next run finishes; either way no traceback, and the next run equals the org.

The kernel refuses to make a mount read-only while a file on it is open for writing (the store's
DuckDB file is, all run long), so 'read-only mid-run' is played on the folders a run writes next:
its staging folder, the blob store, the job state.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import (
    Job,
    backed_up_job,
    churn,
    cli_backup,
    finish,
    heal_and_compare,
    runs,
    small_org,
    start,
    verdict,
)
from test_backup_e2e import _wait_marker as wait_paused

__all__ = ["small_org"]  # the module fixture, imported for pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
TMPFS_MB = 64


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def job(small_org: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Job]:
    """One store on its own small tmpfs for the module (each scenario leaves it healed)."""
    folder = tmp_path_factory.mktemp("storage")
    disk = folder / "disk"
    disk.mkdir()
    mount("-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", str(disk))
    try:
        yield backed_up_job(small_org, folder, disk / "store")
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def fill(folder: Path) -> Path:
    """Write a file until the device is full; returns it (delete it to free the room)."""
    filler = folder / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    try:  # the last, partial chunk
        with open(filler, "ab", buffering=0) as out:
            while True:
                out.write(b"\0" * 4096)
    except OSError:
        pass
    return filler


@pytest.mark.parametrize("phase, status", [
    ("planned", "failed"),  # the extract cannot stage
    ("extracted", "failed"),  # the file bodies cannot be stored
    ("applying", "failed"),  # the commit cannot write the WAL
    ("applied", "completed"),  # committed; the job state and checkpoint cannot be written
])
def test_a_full_disk_mid_run(job: Job, phase: str, status: str) -> None:
    churn(job.org)
    proc = start(job.config, pause=phase, pause_seconds=2)
    wait_paused(proc, phase)
    filler = fill(job.storage.parent)
    try:
        seen = finish(proc)
    finally:
        filler.unlink()
    verdict(seen, job.storage, status, "is full")
    if status == "failed":
        assert "nothing of this run was committed" in seen.out
    heal_and_compare(job.org, job.config, job.storage)


@pytest.mark.parametrize("phase, folder, status", [
    ("planned", "runs", "failed"),  # the staging file cannot be created
    ("extracted", "blobs", "failed"),  # the file bodies cannot be stored
    ("applied", "jobs", "completed"),  # committed; the job state cannot be saved
])
def test_a_folder_turning_read_only_mid_run(job: Job, phase: str, folder: str, status: str) -> None:
    churn(job.org)
    target = job.storage / folder
    target.mkdir(exist_ok=True)
    proc = start(job.config, pause=phase, pause_seconds=2)
    wait_paused(proc, phase)
    mount("--bind", str(target), str(target))
    try:
        mount("-o", "remount,bind,ro", str(target))
        seen = finish(proc)
    finally:
        subprocess.run(["umount", str(target)], check=True)
    verdict(seen, job.storage, status, "is read-only")
    heal_and_compare(job.org, job.config, job.storage)


def test_a_full_disk_before_the_run_is_refused_in_one_line(job: Job) -> None:
    before = runs(job.storage)
    filler = fill(job.storage.parent)
    try:
        seen = cli_backup(job.config)
    finally:
        filler.unlink()
    assert seen.code == 1 and "Traceback" not in seen.err, seen
    assert seen.err.strip().splitlines()[-1] == f"Error: the storage folder {job.storage} is full"
    assert runs(job.storage) == before
    heal_and_compare(job.org, job.config, job.storage)


def test_a_read_only_storage_folder_is_refused_in_one_line(job: Job) -> None:
    disk = job.storage.parent
    before = runs(job.storage)
    listing = sorted(p.relative_to(disk) for p in disk.rglob("*"))
    mount("-o", "remount,ro", str(disk))
    try:
        seen = cli_backup(job.config)
    finally:
        mount("-o", "remount,rw", str(disk))
    assert seen.code == 1 and "Traceback" not in seen.err, seen
    assert seen.err.strip().splitlines()[-1] == f"Error: the storage folder {job.storage} is read-only"
    assert sorted(p.relative_to(disk) for p in disk.rglob("*")) == listing
    assert runs(job.storage) == before
    heal_and_compare(job.org, job.config, job.storage)
