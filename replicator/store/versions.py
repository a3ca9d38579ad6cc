"""Writing history: a run's staged records become versions (one transaction), retention prunes old
versions, and compaction rewrites the file so deleted bytes really go.

Why one transaction per run: `apply` writes every object's versions, the sections and the run's final
status in ONE DuckDB transaction. A process killed before COMMIT leaves nothing of the run (DuckDB
writes the WAL at commit); the run row, committed earlier by `begin_run`, stays 'running' and the
next writer marks it 'aborted'. The cursor only moves with committed versions, so the next run
re-reads the same range and completes the work without duplicate or lost versions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from replicator.salesforce.catalog import ObjectPlan
from replicator.store import encryption
from replicator.store.database import Database
from replicator.store.database import now as utc_now
from replicator.store.forgotten import forgotten_counts
from replicator.store.ledger import FAILED, RunLedger, Section
from replicator.store.merge import Counts, evolve, merge_object, staged_tables
from replicator.store.reads import Reads
from replicator.store.rewrite import rebuild
from replicator.store.schema import object_sql, objects_view, quote

__all__ = ["CountMismatch", "Versions", "months_before"]


class CountMismatch(Exception):
    """Applying would leave objects whose live count differs from the org's; nothing was committed.

    `off` maps each object to (org count, store count after the apply that was rolled back).
    """

    def __init__(self, off: Mapping[str, tuple[int, int]]) -> None:
        super().__init__(", ".join(f"{o}: org {n}, store {m}" for o, (n, m) in off.items()))
        self.off = dict(off)

# Compact when at least this share of the file's blocks (and this many 256 KiB blocks) are free.
# Measured (benchmarks/storage.py, 1M records, 30 runs at 1% churn): the used data is 1.40x one full
# snapshot; free blocks come on top until a compaction. 5% keeps the file under 1.5x at any moment,
# at the price of a 2-3 s compaction about every ten daily runs.
COMPACT_FREE_FRACTION = 0.05
COMPACT_MIN_FREE_BLOCKS = 16


def months_before(dt: datetime, months: int) -> datetime:
    """The same instant `months` calendar months earlier (the day clamped to the month's length)."""
    y, m = divmod(dt.year * 12 + dt.month - 1 - months, 12)
    m += 1
    for day in range(dt.day, 0, -1):
        try:
            return dt.replace(year=y, month=m, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


class Versions:
    """The history tables of one open store: apply, prune, checkpoint, compact."""

    def __init__(self, db: Database, ledger: RunLedger, reads: Reads) -> None:
        self.db, self.ledger, self.reads = db, ledger, reads

    def apply(self, run_id: int, staging: Path, plans: list[ObjectPlan], sections: list[Section], *,
              status: str | None = None, message: str | None = None,
              counters: Mapping[str, Any] | None = None, checkpoint: bool = True,
              compare_all: Collection[str] = (), expect: Mapping[str, int] | None = None
              ) -> dict[str, Counts]:
        """Commit a run's staged records as versions, its sections and its final status: one transaction.

        Objects whose Section is 'failed' are left untouched (their staged rows may be an incomplete
        range, and the cursor must not move past unread records). `status` defaults to 'completed'
        when no section failed, 'failed' when all did, else 'partial'. `checkpoint`: end with
        checkpoint() (the default; benchmarks time it apart). `compare_all`: objects whose staged
        rows are compared field by field (merge_object). `expect`: the org's live count per object;
        when an applied object would end with another count, nothing is committed and CountMismatch
        names those objects, so the caller can re-read them in full and apply again (the only way
        to see deletions Salesforce no longer reports, such as records purged long ago).
        """
        run_ts = self.ledger.running(run_id)["run_ts"]
        failed = {s.object for s in sections if s.status == FAILED}
        con = self.db.con
        encryption.attach(con, staging, "_stg", self.db.key, read_only=True)  # encrypted like the store
        try:
            with self.db.transaction():
                tables = staged_tables(con, "_stg")
                counts: dict[str, Counts] = {}
                for plan in plans:
                    if not plan.included or plan.name in failed:
                        continue
                    columns = evolve(con, plan.name, plan)
                    counts[plan.name] = merge_object(con, plan, columns, tables.get(plan.name),
                                                     tables.get(plan.name + "__deleted"), run_id, run_ts,
                                                     compare_all=plan.name in compare_all)
                    self._track(plan, run_id)
                    self._record_field_types(plan, run_id)
                    for ddl in object_sql(plan.name):
                        con.execute(ddl)
                con.execute(objects_view(self.reads.objects()))
                live = self.reads.live_counts()
                if expect is not None:
                    # the org may still hold records the store has forgotten (GDPR): allow that many
                    spare = forgotten_counts(self.db)
                    off = {o: (n, live.get(o, 0)) for o, n in expect.items()
                           if o in counts and not n - spare.get(o, 0) <= live.get(o, 0) <= n}
                    if off:
                        raise CountMismatch(off)  # rolls the transaction back
                sections = [s if s.store_count is not None or s.object not in live
                            else Section(**{**asdict(s), "store_count": live[s.object]}) for s in sections]
                if status is None:
                    status = ("completed" if not failed else
                              FAILED if sections and all(s.status == FAILED for s in sections) else "partial")
                self.ledger.close_run(run_id, status, message, counters, sections, counts)
        finally:
            con.execute("DETACH _stg")
        self.ledger.closed(run_id)
        if checkpoint:
            self.checkpoint()
        return counts

    def checkpoint(self) -> None:
        """Write the WAL into the file, then compact when free blocks pass COMPACT_FREE_FRACTION.

        DuckDB reuses free blocks but never shrinks the file, and its checkpoints merge the small row
        groups that daily appends create, which can leave a third of a 1M-record store free at once.
        Compacting then (seconds per million versions, every dozen runs or so) keeps the file near
        its used size.
        """
        self.db.execute("CHECKPOINT")
        total, free = self.db.execute(
            "SELECT total_blocks, free_blocks FROM pragma_database_size() "
            "WHERE database_name = current_database()").fetchone()
        if total and free >= COMPACT_MIN_FREE_BLOCKS and free >= total * COMPACT_FREE_FRACTION:
            self.compact()

    def _track(self, plan: ObjectPlan, run_id: int) -> None:
        updated = self.db.execute(
            "UPDATE main.tracked_objects SET cursor_field = ?, last_run = ? WHERE object = ?",
            [plan.cursor, run_id, plan.name]).fetchone()[0]
        if not updated:
            self.db.execute("INSERT INTO main.tracked_objects VALUES (?, ?, ?, ?)",
                            [plan.name, plan.cursor, run_id, run_id])

    def _record_field_types(self, plan: ObjectPlan, run_id: int) -> None:
        """Remember the describe type and sizes of the plan's stored fields (inside apply's transaction)."""
        found = [(plan.name, f.name, f.type, f.length, f.precision, f.scale, run_id)
                 for f in plan.included_fields]
        if plan.blob_field and all(r[1] != plan.blob_field for r in found):
            found.append((plan.name, plan.blob_field, "base64", 0, 0, 0, run_id))
        self.db.execute("DELETE FROM main.field_types WHERE object = ? AND list_contains(?, field)",
                        [plan.name, [r[1] for r in found]])
        self.db.con.executemany("INSERT INTO main.field_types VALUES (?, ?, ?, ?, ?, ?, ?)", found)

    def prune(self, retention_months: int | None, *, now: datetime | None = None) -> int:
        """Delete versions no as-of at or after the cutoff (now - retention) can see; returns how many.

        Removed: versions retired at or before the cutoff, and tombstones of records deleted at or
        before it (the record is gone from every state inside the retention window). Current records
        are never touched. The file is compacted when a tenth of the versions went.
        """
        if retention_months is None:
            return 0
        cutoff = months_before(now or utc_now(), retention_months)
        with self.db.transaction() as con:
            pruned = total = 0
            for obj in self.reads.objects():
                hist = f"hist.{quote(obj)}"
                pruned += con.execute(
                    f"DELETE FROM {hist} WHERE (_valid_to IS NOT NULL AND _valid_to <= ?) "
                    "OR (_valid_to IS NULL AND _deleted AND _valid_from <= ?)",
                    [cutoff, cutoff]).fetchone()[0]
                total += con.execute(f"SELECT count(*) FROM {hist}").fetchone()[0]
        if pruned and pruned * 10 >= pruned + total:
            self.compact()
        else:
            self.checkpoint()
        return pruned

    def compact(self) -> None:
        """Rewrite the file without free blocks or deleted rows: the only way deleted bytes really go.

        COPY FROM DATABASE into a fresh file swapped in atomically (store.rewrite.rebuild): a crash
        before the rename leaves the old file intact (the half-written copy is removed next time).
        """
        rebuild(self.db, lambda con: con.execute("COPY FROM DATABASE src TO dst"), "compact")
