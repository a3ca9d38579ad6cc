"""How a backup run ends in the store's ledger: finished with a status, stopped by the storage, or
by a bug.

Users read `runs` to learn what happened, so every way out of a run records a row, even the ugly
ones: a full disk or a read-only folder (the run says so in one sentence; nothing of it was
committed) and a crash (recorded 'failed' before the traceback reaches whoever fixes it).
"""

from __future__ import annotations

import logging
import shutil
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replicator.errors import StorageProblem
from replicator.result import JobResult
from replicator.salesforce.client import OrgClient
from replicator.store.failures import storage_problem
from replicator.store.repository import Repository
from replicator.store.snapshot import SnapshotStore

log = logging.getLogger("replicator.backup.run")


@dataclass
class RunResult(JobResult):
    """A finished run: its status decides the exit code (0 completed, 2 partial, 1 otherwise)."""

    run_id: int | None
    status: str
    message: str
    sections: list[Any] = field(default_factory=list)
    api_calls: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """Schedulers alert on a partial run (2) differently from a failed one (1)."""
        return {"completed": 0, "partial": 2}.get(self.status, 1)

    def to_json(self) -> dict[str, Any]:
        """The run in a few numbers; `runs show` has its sections."""
        return {"run_id": self.run_id, "status": self.status, "message": self.message,
                "api_calls": self.api_calls, "seconds": round(self.seconds, 2), "objects": len(self.sections)}

    def text(self) -> str:
        """One line: run, status, why, and its cost."""
        return (f"run {self.run_id}: {self.status} ({self.message}); "
                f"{self.api_calls} API calls, {self.seconds:.1f} s")


def storage_or(exc: Exception, repository: Repository) -> StorageProblem:
    """The storage problem behind `exc` (the caller raises it), or `exc` itself re-raised: a bug."""
    problem = storage_problem(exc, repository.layout.root)
    if problem is None:
        raise exc
    return problem


@dataclass
class Outcome:
    """Records one registered run's end in the ledger and returns it as a RunResult."""

    store: SnapshotStore
    repository: Repository
    client: OrgClient
    run_id: int
    run_dir: Path
    started: float

    def result(self, status: str, message: str, sections: list[Any] | None = None) -> RunResult:
        """The run as the caller reports it (its API calls and time so far)."""
        return RunResult(self.run_id, status, message, sections or [], self.client.ledger.calls,
                         time.monotonic() - self.started)

    def finish(self, status: str, message: str, sections: list[Any] | None = None) -> RunResult:
        """Record a run that ended before its apply (the apply records its own status)."""
        self.store.ledger.finish_run(self.run_id, status, message, {"api_calls": self.client.ledger.calls})
        return self.result(status, message, sections)

    def storage_failed(self, problem: StorageProblem) -> RunResult:
        """The storage refused a write before the run committed: nothing of the run is in the store.

        The staging folder and the ballast (Repository.reserve_room) go first: on a full disk they
        free the room the status row needs. Then the run is recorded 'failed' through a fresh
        connection (DuckDB may have invalidated the one whose write failed). When even that write
        is refused (a read-only folder), the result still says 'failed' and the next run marks
        the row 'aborted'.
        """
        shutil.rmtree(self.run_dir, ignore_errors=True)
        with suppress(OSError):  # read-only: nothing to give back
            self.repository.release_room()
        message = f"{problem.message}; nothing of this run was committed"
        log.warning("run %s: %s", self.run_id, message)
        try:
            self.store.db.reopen()
            return self.finish("failed", message)
        except Exception as exc:
            if storage_problem(exc, self.repository.layout.root) is None:
                raise
        return self.result("failed", f"{message} (the store could not record it either)")

    def crashed(self, exc: Exception) -> None:
        """A bug stopped the run: record it 'failed' (best effort) so `runs` tells the truth; the
        caller re-raises, so the traceback still reaches whoever fixes it."""
        with suppress(Exception):  # the run may be past its commit, or the store unusable
            self.finish("failed", f"the run stopped on an unexpected error ({type(exc).__name__}); "
                        "see the log for its traceback")
