"""The storage folder as a repository: callers ask it to open the store, never build its paths.

Why one entry point: the store will later live on DuckLake with a PostgreSQL catalog, where "does it
hold a backup" and "open it for writing" mean a catalog query and an advisory lock instead of a file
and a flock. Jobs call `has_backups`, `open_read` and `open_write` and stay the same either way.
Opening for writing takes the writer lock (store.lock) and the store releases it when it closes, so
no writer can forget it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from replicator.errors import NotFound
from replicator.store.blobs import BlobStore
from replicator.store.layout import Layout
from replicator.store.lock import WriterLock
from replicator.store.snapshot import SnapshotStore

__all__ = ["NoBackups", "Repository"]


class NoBackups(NotFound):
    """The storage folder holds no backup yet: nothing to read, export or check."""


class Repository:
    """One storage folder: its history store, blobs, job states and run folders."""

    def __init__(self, root: Path) -> None:
        self.layout = Layout(Path(root))

    def has_backups(self) -> bool:
        """True once a backup created the store (even if no run has committed yet)."""
        return self.layout.database.exists()

    def _require_backups(self) -> None:
        if not self.has_backups():
            raise NoBackups(f"no backups yet: {self.layout.root} holds no snapshot store "
                            "(run a backup first)")

    def open_read(self) -> SnapshotStore:
        """The store, read-only (readers never take the writer lock); NoBackups before the first backup."""
        self._require_backups()
        return SnapshotStore(self.layout.database, read_only=True)

    def open_query(self) -> SnapshotStore:
        """The store for analysts' SQL: read-only, with files, extensions and settings out of reach,
        so a query can read the store's tables and nothing else on the machine."""
        self._require_backups()
        return SnapshotStore(self.layout.database, read_only=True, sealed=True)

    def open_write(self, what: str, job: str | None = None, *, create: bool = False) -> SnapshotStore:
        """The store for writing, holding the writer lock until it is closed.

        `what` names the writer for whoever is refused meanwhile (backup, export, diff, compaction).
        Raises StoreLocked while another writer holds it, NoBackups unless `create` (only backups
        create the store).
        """
        if not create:
            self._require_backups()
        lock = WriterLock.acquire(self.layout, what, job)
        try:
            return SnapshotStore(self.layout.database, lock=lock)
        except BaseException:
            lock.release()
            raise

    def blobs(self, key_env: str | None = None, environ: Mapping[str, str] | None = None, *,
              key_file: Path | None = None) -> BlobStore:
        """The encrypted file bodies, keyed as configured (see store.blobs.load_key)."""
        return BlobStore.for_storage(self.layout.root, key_env, environ, key_file=key_file)

    def blob_listing(self, key_env: str | None = None, environ: Mapping[str, str] | None = None, *,
                     key_file: Path | None = None) -> BlobStore:
        """The blob store for asking which blobs exist: blob names are keyed, so it needs the key, but
        it never creates a key file, so a read-only check leaves the folder as it was."""
        return BlobStore.for_storage(self.layout.root, key_env, environ, key_file=key_file, create_key=False)

    def job_state(self, job: str) -> Path:
        """Where a job keeps its plan and watermarks between runs (the folder is created)."""
        path = self.layout.job_state(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def run_folder(self, run_id: int) -> Path:
        """A fresh working folder for one run's staging (raw rows: remove it when the run ends)."""
        path = self.layout.run_folder(run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def leftover_run_folders(self) -> list[Path]:
        """Run folders left behind by killed runs (they hold raw rows)."""
        if not self.layout.runs.is_dir():
            return []
        return sorted(self.layout.runs.iterdir())

    def remove_run_folders(self) -> None:
        """Remove every run folder: call only while holding the writer lock (no run is executing)."""
        shutil.rmtree(self.layout.runs, ignore_errors=True)
