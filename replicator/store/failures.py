"""Storage failures told apart from bugs: a full, read-only or failing storage folder is the user's
to fix, so a run turns it into one sentence (errors.StorageProblem) and an honest status.

Why here: the same OSError reaches a run from many layers (our own file writes, DuckDB's WAL and
checkpoints, dlt's load packages), wrapped differently by each; the store layer knows the folder.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from replicator.errors import StorageProblem

__all__ = ["storage_problem"]

# What each errno says about the folder, in the words a user reads.
WHAT = {
    errno.ENOSPC: "is full",
    errno.EDQUOT: "is over its disk quota",
    errno.EROFS: "is read-only",
    errno.EIO: "failed a read or write (I/O error)",
    errno.EACCES: "refused a write (permission denied)",
    errno.EPERM: "refused a write (operation not permitted)",
}
# DuckDB reports the OS error only in its message text (IOException, TransactionException, ...).
TEXTS = {os.strerror(code): what for code, what in WHAT.items()}
INVALIDATED = "database has been invalidated"


def storage_problem(exc: BaseException, root: Path) -> StorageProblem | None:
    """The storage problem behind `exc` (searched through causes, contexts and dlt's wrapped
    exception), or None when `exc` is something else."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        what = _what(current)
        if what is not None:
            return StorageProblem(f"the storage folder {root} {what}")
        pending += [current.__cause__, current.__context__, getattr(current, "exception", None)]
    return None


def _what(exc: BaseException) -> str | None:
    if isinstance(exc, OSError) and exc.errno in WHAT:
        return WHAT[exc.errno]
    if type(exc).__module__.startswith(("duckdb", "_duckdb")):
        text = str(exc)
        found = next((what for words, what in TEXTS.items() if words in text), None)
        if found is None and INVALIDATED in text:
            found = "failed a write earlier in this run"
        return found
    return None
