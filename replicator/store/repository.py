"""The storage folder as a repository: callers ask it to open the store, never build its paths.

Why one entry point: the store will later live on DuckLake with a PostgreSQL catalog, where "does it
hold a backup" and "open it for writing" mean a catalog query and an advisory lock instead of a file
and a flock. Jobs call `has_backups`, `open_read` and `open_write` and stay the same either way.
Opening for writing takes the writer lock (store.lock) and the store releases it when it closes, so
no writer can forget it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from replicator.config import Secret, StorageSettings
from replicator.errors import ConfigProblem, NotFound
from replicator.store import encryption
from replicator.store.audit_log import AuditLog
from replicator.store.automation_journal import AutomationJournal, journals_in
from replicator.store.blobs import BlobStore, load_key
from replicator.store.database import Database, StoreInUse
from replicator.store.layout import Layout
from replicator.store.lock import WriterLock, holder_of, refusal
from replicator.store.rewrite import leftovers, remove_leftovers
from replicator.store.snapshot import SnapshotStore

__all__ = ["ForeignFolder", "NoBackups", "Repository"]

MARKER_TEXT = ("This folder is a Replicator store: Replicator creates, replaces and removes files in it.\n"
               "Keep other files elsewhere.\n")

# Room a failed run needs to record its status (a WAL entry, a checkpoint's few blocks) on a full disk.
ROOM_BYTES = 4 << 20


class NoBackups(NotFound):
    """The storage folder holds no backup yet: nothing to read, export or check."""


class ForeignFolder(ConfigProblem):
    """The storage path names a folder that holds other files: a writer would replace or remove them."""


class Repository:
    """One storage folder: its history store, blobs, job states and run folders."""

    def __init__(self, root: Path, key: Secret | None = None, *, blob_key_env: str | None = None,
                 blob_key_file: Path | None = None) -> None:
        """`key`: the snapshot store's encryption key (store.encryption), None for a plain store;
        `blob_key_env`/`blob_key_file`: where the blob key comes from (store.blobs.load_key)."""
        self.layout = Layout(Path(root))
        self.key = key
        self.blob_key_env, self.blob_key_file = blob_key_env, blob_key_file

    @classmethod
    def for_storage(cls, storage: StorageSettings) -> Repository:
        """The configured storage folder, with its store's key and blob key as configured."""
        return cls(storage.path, storage.store_key(), blob_key_env=storage.blob_key_env,
                   blob_key_file=storage.blob_key_file)

    def has_backups(self) -> bool:
        """True once a backup created the store (even if no run has committed yet)."""
        return self.layout.database.exists()

    def _require_backups(self) -> None:
        if not self.has_backups():
            raise NoBackups(f"no backups yet: {self.layout.root} holds no snapshot store "
                            "(run a backup first)")

    def open_read(self) -> SnapshotStore:
        """The store, read-only (readers never take the writer lock); NoBackups before the first backup."""
        return self._reader(sealed=False)

    def open_query(self) -> SnapshotStore:
        """The store for analysts' SQL: read-only, with files, extensions and settings out of reach,
        so a query can read the store's tables and nothing else on the machine."""
        return self._reader(sealed=True)

    def _reader(self, *, sealed: bool) -> SnapshotStore:
        """A read-only store. While a writer has the database open, DuckDB lets no other process in,
        not even to read: say which writer, from its lock file (a DuckLake catalog will not have
        this limit)."""
        self._require_backups()
        try:
            return SnapshotStore(self.layout.database, read_only=True, sealed=sealed, key=self.key)
        except StoreInUse:
            holder = holder_of(self.layout)
            if not holder:
                raise
            raise StoreInUse(refusal(self.layout, holder, "read commands work again when it has "
                                     "finished")) from None

    def open_write(self, what: str, job: str | None = None, *, create: bool = False) -> SnapshotStore:
        """The store for writing, holding the writer lock until it is closed.

        `what` names the writer for whoever is refused meanwhile (backup, export, diff, compaction).
        Raises StoreLocked while another writer holds it, NoBackups unless `create` (only backups
        create the store).
        """
        if not create:
            self._require_backups()
        self._claim()
        lock = WriterLock.acquire(self.layout, what, job)
        try:
            remove_leftovers(self.layout.database)
            return SnapshotStore(self.layout.database, lock=lock, key=self.key)
        except BaseException:
            lock.release()
            raise

    def _claim(self) -> None:
        """Make sure the folder is ours before a writer touches it: a store (marked, or created before
        markers existed), or empty and marked now. A share that already holds a `runs/` folder of
        reports must not lose it to a backup's clean-up, so any other folder is refused untouched."""
        root = self.layout.root
        if self.layout.marker.is_file():
            return
        if root.exists() and not root.is_dir():
            raise ForeignFolder(f"the storage path {root} is a file, not a folder", key="storage.path")
        # An audit log written there before it was a store (by an older version) is ours too.
        entries = sorted(entry.name for entry in root.iterdir()
                         if entry != self.layout.audit) if root.is_dir() else []
        if entries:
            if not self.layout.database.is_file():
                shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
                raise ForeignFolder(
                    f"the storage folder {root} already holds files that are not a Replicator store "
                    f"({shown}): choose an empty or new folder for storage.path", key="storage.path")
            Database(self.layout.database, read_only=True, memory_limit="64MB", lock=None,
                     key=self.key).close()
        root.mkdir(parents=True, exist_ok=True)
        self.layout.marker.write_text(MARKER_TEXT, encoding="utf-8")

    def is_encrypted(self) -> bool:
        """Whether the store is encrypted (NoBackups before the first backup)."""
        self._require_backups()
        return encryption.is_encrypted(self.layout.database)

    def rekey(self, new_key: Secret | None) -> None:
        """Rewrite the store under `new_key` (None: plain) atomically, holding the writer lock
        (store.encryption.rekey); the repository's key must open the store as it is now."""
        self._require_backups()
        lock = WriterLock.acquire(self.layout, "store re-encryption")
        try:
            remove_leftovers(self.layout.database)  # a killed rewrite's copy would outlive the old key
            encryption.rekey(self.layout.database, self.key, new_key)
        finally:
            lock.release()

    def blob_key(self, environ: Mapping[str, str] | None = None) -> bytes:
        """The blob master key as configured; <storage>/blob.key is generated on first use."""
        key = load_key(self.layout.root, self.blob_key_env, environ, key_file=self.blob_key_file)
        assert key is not None  # load_key creates the default key file
        return key

    def blobs(self, environ: Mapping[str, str] | None = None) -> BlobStore:
        """The encrypted file bodies, keyed as configured."""
        return BlobStore(self.layout.blobs, self.blob_key(environ))

    def blob_listing(self, environ: Mapping[str, str] | None = None) -> BlobStore:
        """The blob store for asking which blobs exist (or removing one): blob names are keyed, so it
        needs the key, but it never creates a key file, so a read-only check leaves the folder as it was."""
        key = load_key(self.layout.root, self.blob_key_env, environ, key_file=self.blob_key_file,
                       create=False)
        return BlobStore(self.layout.blobs, key)

    def audit_log(self) -> AuditLog:
        """The folder's audit log (a file beside the store, whatever the store is: see store.audit_log),
        appended to only once the folder is a store (marked, or holding the database)."""
        ours = self.layout.marker.is_file() or self.layout.database.is_file()
        return AuditLog(self.layout.audit, writable=ours)

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

    def leftover_rewrites(self) -> list[Path]:
        """Fresh database files a killed compaction, GDPR rewrite or re-key left beside the store."""
        return leftovers(self.layout.database)

    def remove_run_folders(self) -> None:
        """Remove every run folder: call only while holding the writer lock (no run is executing)."""
        shutil.rmtree(self.layout.runs, ignore_errors=True)

    def reserve_room(self) -> None:
        """Hold ROOM_BYTES in a ballast file, so a run that finds the disk full can free them to record
        its 'failed' status (the alternative is a row left 'running' that says nothing). Best effort:
        on a disk already too full, the run goes on without it."""
        room = self.layout.room
        try:
            if room.exists() and room.stat().st_size >= ROOM_BYTES:
                return
            fd = os.open(room, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, ROOM_BYTES)
            finally:
                os.close(fd)
        except OSError:
            room.unlink(missing_ok=True)

    def release_room(self) -> None:
        """Give the ballast back to the disk (the next run reserves it again)."""
        self.layout.room.unlink(missing_ok=True)

    def automation_journal(self, org: str) -> AutomationJournal:
        """The journal of the org's switched-off automations (the folder is claimed when it is first held)."""
        return AutomationJournal(self.layout.automations, org, prepare=self._claim)

    def automation_journals(self) -> list[str]:
        """Orgs with a journal: automations switched off by a run in progress, a killed one, or by hand."""
        return journals_in(self.layout.automations)
