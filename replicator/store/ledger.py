"""The run ledger: one row per run (status, totals), one per run and object (sections), and the
activity log of what failed and why.

Why a ledger inside the store: a run's final row is written in the same transaction as its versions
(store.versions), so the ledger never claims a run committed data it did not. A run row is written
'running' at once when the run begins, so a killed run is visible, and the next writer marks it
'aborted'.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from replicator.store.database import Database, now
from replicator.store.merge import Counts

__all__ = ["FAILED", "RunLedger", "Section"]

FAILED = "failed"
RUN_TOTALS = ("items", "inserted", "updated", "deleted", "api_calls", "bulk_batches")


@dataclass
class Section:
    """What the backup did for one object in one run (the source fills it; apply adds the counts)."""

    object: str
    status: str  # "ok", "partial", "failed" (failed: its staged rows are not applied), ...
    message: str | None = None
    items: int = 0
    api_calls: int = 0
    bulk_batches: int = 0
    method: str | None = None
    seconds: float = 0.0
    org_count: int | None = None
    store_count: int | None = None  # None: apply fills in the current record count after the run


class RunLedger:
    """Runs, sections and activity of one open store."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._own_runs: set[int] = set()

    def mark_abandoned(self) -> int:
        """Mark 'running' runs that no live store instance of this process owns as 'aborted'.

        Sound because only the holder of the writer lock opens the store for writing, and DuckDB
        lets only one process open the file read-write: whoever began those runs has closed the
        store or died. Returns how many runs were marked.
        """
        return self.db.execute(
            "UPDATE main.runs SET status = 'aborted', finished_at = ?, "
            "message = coalesce(message, 'the run ended before its status could be recorded "
            "(its process was killed, or the storage refused the write); nothing of it was committed') "
            "WHERE status = 'running' AND NOT list_contains(?, run_id)",
            [now(), sorted(self._own_runs)]).fetchone()[0]

    def begin_run(self, job: str, org: str, kind: str, full: bool) -> int:
        """Register a run ('running', committed at once) with its run timestamp; returns its id."""
        self.mark_abandoned()
        started = now()
        run_id, last_ts = self.db.execute(
            "SELECT coalesce(max(run_id), 0) + 1, max(run_ts) FROM main.runs").fetchone()
        run_ts = started if last_ts is None else max(started, last_ts + timedelta(milliseconds=1))
        self.db.execute(
            'INSERT INTO main.runs (run_id, job, org, kind, "full", status, run_ts, started_at, pid, host) '
            "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
            [run_id, job, org, kind, full, run_ts, started, os.getpid(), socket.gethostname()])
        self._own_runs.add(run_id)
        return run_id

    def runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first."""
        return self.db.rows("SELECT * FROM main.runs ORDER BY run_id")

    def run(self, run_id: int) -> dict[str, Any] | None:
        """One run's row, or None."""
        found = self.db.rows("SELECT * FROM main.runs WHERE run_id = ?", [run_id])
        return found[0] if found else None

    def sections(self, run_id: int) -> list[dict[str, Any]]:
        """A run's per-object rows, by object."""
        return self.db.rows("SELECT * FROM main.sections WHERE run_id = ? ORDER BY object", [run_id])

    def activity(self, obj: str | None = None, run_id: int | None = None) -> list[dict[str, Any]]:
        """The activity log (what failed and why), newest first, optionally for one object or run."""
        return self.db.rows(
            "SELECT * FROM main.activity WHERE (? IS NULL OR object = ?) AND (? IS NULL OR run_id = ?) "
            "ORDER BY logged_at DESC, object", [obj, obj, run_id, run_id])

    def running(self, run_id: int) -> dict[str, Any]:
        """The row of a run that is still running (a run is closed exactly once)."""
        run = self.run(run_id)
        if run is None:
            raise ValueError(f"run {run_id} does not exist")
        if run["status"] != "running":
            raise ValueError(f"run {run_id} is {run['status']}, not running")
        return run

    def finish_run(self, run_id: int, status: str, message: str | None = None,
                   counters: Mapping[str, Any] | None = None, sections: Iterable[Section] = ()) -> None:
        """Close a run that ends without apply (failed before staging, disabled org, ...)."""
        self.running(run_id)
        with self.db.transaction():
            self.close_run(run_id, status, message, counters, list(sections), {})
        self.closed(run_id)

    def closed(self, run_id: int) -> None:
        """Forget a run this instance owned once its final row committed."""
        self._own_runs.discard(run_id)

    def close_run(self, run_id: int, status: str, message: str | None, counters: Mapping[str, Any] | None,
                  sections: list[Section], counts: Mapping[str, Counts]) -> None:
        """Sections, activity and the run's final row (inside the caller's transaction)."""
        at = now()
        totals = dict.fromkeys(RUN_TOTALS, 0)
        for s in sections:
            c = counts.get(s.object, Counts())
            self.db.execute(
                "INSERT INTO main.sections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, s.object, s.status, s.message, s.items, c.inserted, c.updated, c.deleted,
                 s.api_calls, s.bulk_batches, s.method, s.seconds, s.org_count, s.store_count])
            if s.status not in ("ok", "completed"):
                self.db.execute("INSERT INTO main.activity VALUES (?, ?, ?, ?, ?)",
                                [run_id, s.object, at, s.status, s.message or s.status])
            for key, value in (("items", s.items), ("inserted", c.inserted), ("updated", c.updated),
                               ("deleted", c.deleted), ("api_calls", s.api_calls),
                               ("bulk_batches", s.bulk_batches)):
                totals[key] += value
        for key in RUN_TOTALS:
            if counters and key in counters:
                totals[key] = counters[key]
        if status == FAILED and message:
            self.db.execute("INSERT INTO main.activity VALUES (?, NULL, ?, ?, ?)",
                            [run_id, at, status, message])
        self.db.execute(
            "UPDATE main.runs SET status = ?, message = ?, finished_at = ?, items = ?, inserted = ?, "
            "updated = ?, deleted = ?, api_calls = ?, bulk_batches = ?, counters = ? WHERE run_id = ?",
            [status, message, at, *(totals[k] for k in RUN_TOTALS),
             json.dumps(dict(counters)) if counters else None, run_id])
