"""The snapshot store: one DuckDB file holding every version of every backed-up record.

Layout (all names verbatim from Salesforce, always quoted):
  hist."<Object>"            fields + _valid_from, _valid_to (NULL = current), _run_id, _deleted, _key
  main."<Object>"            view: current, not deleted records, no metadata columns
  main."<Object>_as_of"(x)   table macro: records as of run id x (INTEGER) or instant x (timestamp/ISO text)
  main."<Object>_history"(id)  table macro: every version of one record, tombstones included, oldest first
  main.objects               view: per object current / deleted / version counts
  main.runs, main.sections, main.activity, main.tracked_objects   the run ledger
  main.exports               the exports ledger
A version's validity is [_valid_from, _valid_to) in run timestamps (runs.run_ts, strictly increasing),
so "as of run N" is exactly the state right after run N committed.

The store is composed of what it does, each part in its own module over one shared connection
(store.database): `versions` (apply, prune, compact: store.versions), `ledger` (runs, sections,
activity: store.ledger), `exports` (the exports ledger: store.exports_ledger) and `reads` (as-of,
sql, types, streams: store.reads). Open it through store.repository, which takes the writer lock.
"""

from __future__ import annotations

from pathlib import Path

from replicator.config import Secret
from replicator.store.database import Database
from replicator.store.exports_ledger import ExportsLedger
from replicator.store.ledger import RunLedger, Section
from replicator.store.lock import WriterLock
from replicator.store.merge import Counts
from replicator.store.reads import Reads
from replicator.store.versions import Versions

__all__ = ["Counts", "Section", "SnapshotStore"]


class SnapshotStore:
    """The open store. Keep one instance open for a whole backup run (see RunLedger.mark_abandoned)."""

    def __init__(self, path: Path, *, read_only: bool = False, memory_limit: str = "512MB",
                 lock: WriterLock | None = None, sealed: bool = False, key: Secret | None = None) -> None:
        """`memory_limit`: DuckDB's cap; beyond it, big loads spill to <path>.tmp (memory stays flat).
        `lock`: the writer lock this store holds (store.repository.open_write); closing releases it.
        `sealed`: read-only and unable to reach anything but its own tables (store.database.SEALED).
        `key`: the encryption key of an encrypted store (store.encryption).

        512 MB keeps a run's peak RSS under ~700 MB whatever the object's size; a 1 GB cap would make
        the first load of 1M records x 53 fields ~3 s faster (no eviction) for ~200 MB more RSS.
        """
        self.db = Database(path, read_only=read_only, memory_limit=memory_limit, lock=lock,
                           sealed=sealed, key=key)
        self.reads = Reads(self.db)
        self.ledger = RunLedger(self.db)
        self.exports = ExportsLedger(self.db)
        self.versions = Versions(self.db, self.ledger, self.reads)
        if not read_only:
            self.ledger.mark_abandoned()

    def close(self) -> None:
        """Close the database, then let the next writer in (when this store holds the lock)."""
        self.db.close()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
