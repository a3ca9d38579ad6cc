"""The one lock every writer of a storage folder takes: backups, exports, diffs, compaction.

One store has one writer at a time. Backups always took this lock; exports and diffs write the
exports ledger, so they take it too and a second writer meets a sentence naming the holder instead
of the database's own lock error. flock is released by the kernel when the holder dies, so the lock
of a killed process is taken over without any staleness guess; the file's JSON (what, job, pid,
start) only names the holder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from replicator.errors import Locked
from replicator.store.layout import Layout

__all__ = ["StoreLocked", "WriterLock", "holder_of", "refusal", "writer_lock"]

log = logging.getLogger("replicator.store.lock")


class StoreLocked(Locked):
    """Another process writes to the store right now; `holder` is what its lock file says."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


class WriterLock:
    """A held writer lock; `release()` (or closing the store that owns it) lets the next writer in."""

    def __init__(self, layout: Layout, fd: int, previous: dict[str, Any]) -> None:
        self.layout = layout
        self.previous = previous  # the holder before us (a process that died holding it), if any
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, layout: Layout, what: str, job: str | None = None) -> WriterLock:
        """Take the lock for `what` (backup, export, diff, compaction), or raise StoreLocked at once."""
        layout.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                raise StoreLocked(refusal(layout, holder, "wait for it to finish"), holder) from None
            previous = _read_holder(fd)
            if previous.get("pid") and previous["pid"] != os.getpid():
                log.warning("taking over the lock of %s pid %s (started %s), which is no longer running",
                            previous.get("what", "backup"), previous["pid"], previous.get("started"))
            me = {"pid": os.getpid(), "what": what, "job": job,
                  "started": datetime.now(UTC).isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(layout, fd, previous)

    def release(self) -> None:
        """Clear the holder and drop the lock (closing the descriptor releases the flock)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)
            self._fd = None


@contextmanager
def writer_lock(layout: Layout, what: str, job: str | None = None) -> Iterator[WriterLock]:
    """Hold the writer lock for the block (see WriterLock.acquire)."""
    lock = WriterLock.acquire(layout, what, job)
    try:
        yield lock
    finally:
        lock.release()


def holder_of(layout: Layout) -> dict[str, Any] | None:
    """Who holds the lock now (its JSON), or None when nobody does; never takes or waits for it."""
    if not layout.lock.exists():
        return None
    fd = os.open(layout.lock, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def refusal(layout: Layout, holder: dict[str, Any], remedy: str) -> str:
    """The sentence a refused writer (or reader) reads: what runs, for which job, in which process,
    since when, and what to do."""
    what = holder.get("what") or "backup"
    job = f"job {holder['job']}, " if holder.get("job") else ("job ?, " if what == "backup" else "")
    article = "an" if what[:1] in "aeiou" else "a"
    return (f"{article} {what} is already running on {layout.root} ({job}pid {holder.get('pid', '?')}, "
            f"started {holder.get('started', '?')}); {remedy}")


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
