"""The storage folder's layout, spelled in one place.

Everything Replicator keeps for one storage folder lives under it: the history database, the
writers' lock, the encrypted file bodies and their key, each job's remembered plan, and the run
folders that hold a run's raw staging rows until it commits. Only `store/` asks this module for
the database's path: callers open the store through `store.repository`, so the same interface can
later sit on a DuckLake catalog that is not a file at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout"]

MARKER = ".replicator-store"  # written when the store is created: this folder is ours to manage
DATABASE = "snapshot.duckdb"
LOCK = "backup.lock"  # the name predates the other writers; kept so a running old version still sees it
BLOBS = "blobs"
BLOB_KEY = "blob.key"
JOBS = "jobs"
RUNS = "runs"
AUTOMATIONS = "automations"
AUDIT = "audit.jsonl"
ROOM = "reserved.space"  # ballast a run gives back when the disk fills, to record why it failed


@dataclass(frozen=True)
class Layout:
    """Paths inside one storage folder (nothing here touches the disk)."""

    root: Path

    @property
    def marker(self) -> Path:
        """The file that says the folder is a Replicator store (a writer manages only such folders)."""
        return self.root / MARKER

    @property
    def database(self) -> Path:
        """The history database (store-internal: open it through the repository)."""
        return self.root / DATABASE

    @property
    def lock(self) -> Path:
        """The file every writer holds a flock on (store.lock)."""
        return self.root / LOCK

    @property
    def blobs(self) -> Path:
        """Encrypted, content-addressed file bodies."""
        return self.root / BLOBS

    @property
    def blob_key(self) -> Path:
        """The generated master key for the blobs, when no environment variable names one."""
        return self.root / BLOB_KEY

    def job_state(self, job: str) -> Path:
        """What a job remembers between runs (its plan and probe watermarks)."""
        return self.root / JOBS / f"{job}.json"

    @property
    def runs(self) -> Path:
        """The folder of run folders: a run's staging lives here only while the run executes."""
        return self.root / RUNS

    def run_folder(self, run_id: int) -> Path:
        """One run's working folder (raw staged rows; removed when the run ends)."""
        return self.runs / str(run_id)

    @property
    def automations(self) -> Path:
        """The automations journals: one per org whose automations Replicator has switched off."""
        return self.root / AUTOMATIONS

    @property
    def audit(self) -> Path:
        """The append-only, hash-chained audit log (store.audit_log)."""
        return self.root / AUDIT

    @property
    def room(self) -> Path:
        """The ballast file (store.repository.reserve_room)."""
        return self.root / ROOM
