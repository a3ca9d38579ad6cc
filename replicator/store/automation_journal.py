"""The automations journal: which automations of an org are switched off, written before the first switch.

Why a file per org beside the store rather than a table in it: it must be written while a restore or
seeding job may hold the store's writer lock, read by every command cheaply (a directory listing when
there is nothing to do), and survive SIGKILL at any instant. Each write goes to a temporary file that
is synced and renamed over the journal (then the folder is synced), so a reader sees the old journal
or the new one, never half of one. A companion lock file carries a flock for as long as a process
switches the org's automations: the kernel drops it when that process dies, which is how the next
command tells a killed run's journal (recover it) from a live one's (leave it alone).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from replicator.errors import Locked
from replicator.store.lock import _read_holder

__all__ = ["AutomationJournal", "journals_in"]

SUFFIX = ".json"


class AutomationJournal:
    """One org's journal under `folder` (the storage folder's `automations/`)."""

    def __init__(self, folder: Path, org: str, *, prepare: Callable[[], None] | None = None) -> None:
        self.folder = folder
        self.prepare = prepare  # e.g. claiming the storage folder, before anything is created in it
        self.org = org
        self.path = folder / f"{org}{SUFFIX}"
        self.lock_path = folder / f"{org}.lock"

    @contextmanager
    def hold(self) -> Iterator[AutomationJournal]:
        """Be the one process switching this org's automations for the block; Locked otherwise."""
        if self.prepare is not None:
            self.prepare()
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                raise Locked(f"the automations of org {self.org} are being switched by another process "
                             f"(pid {holder.get('pid', '?')}, started {holder.get('started', '?')}); "
                             "wait for it to finish") from None
            me = {"pid": os.getpid(), "started": datetime.now(UTC).isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
            yield self
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def read(self) -> dict[str, Any] | None:
        """The journal, or None when no automation of the org is switched off by Replicator."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as exc:  # renames are atomic, so only a hand edit gets here
            raise Locked(f"the automations journal {self.path} is damaged ({exc}); switch the org's "
                         "automations back on by hand, then remove it") from None
        return data if isinstance(data, dict) else None

    def write(self, state: dict[str, Any]) -> None:
        """Replace the journal atomically and durably (synced before this returns)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        self._sync_folder()

    def clear(self) -> None:
        """Remove the journal: nothing of the org is switched off any more."""
        self.path.unlink(missing_ok=True)
        self._sync_folder()

    def _sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def journals_in(folder: Path) -> list[str]:
    """The org names that have a journal in `folder` (cheap: one directory listing)."""
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(SUFFIX)] for p in folder.iterdir() if p.name.endswith(SUFFIX))

