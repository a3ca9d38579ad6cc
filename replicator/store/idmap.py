"""The id map: which Id a source record got in each target org.

Why it lives in the store: a restore that inserted a record under a new Id, then a second restore
touching its children (or a retry of failed ones), must point them at the record already restored
instead of creating it again. Keyed by target org name and source Id (Salesforce Ids are unique
across objects, so the object is kept for reading only).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from replicator.store.database import Database, now

__all__ = ["StoreIdMap"]


class StoreIdMap:
    """main.id_map rows of one target org (the loader's IdMap)."""

    def __init__(self, db: Database, target: str) -> None:
        self.db = db
        self.target = target

    def lookup(self, source_ids: Sequence[str]) -> dict[str, str]:
        """The known target Ids of these source Ids (unknown ones are absent)."""
        if not source_ids or not self.db.has_table("id_map"):
            return {}
        # The Ids travel as a registered Arrow table: a Python list parameter costs DuckDB a type probe
        # per element (measured: 0.26 s per 200-record chunk of a replicate, most of its time).
        cur = self.db.con.cursor()
        try:
            cur.register("_wanted_sources", pa.table({"source_id": pa.array(list(source_ids), pa.string())}))
            found = cur.execute(
                "SELECT m.source_id, m.target_id FROM main.id_map m JOIN _wanted_sources w "
                "ON m.source_id = w.source_id WHERE m.target = ?", [self.target]).fetchall()
        finally:
            cur.close()
        return dict(found)

    def add(self, sobject: str, pairs: pa.Table) -> None:
        """Remember new pairs (columns `source_id`, `target_id`); a newer pair replaces an older one."""
        if not pairs.num_rows:
            return
        self.db.require_writable()
        self.db.con.register("_id_pairs", pairs)
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO main.id_map SELECT ?, ?, source_id, target_id, ? FROM _id_pairs",
                [self.target, sobject, now()])
        finally:
            self.db.con.unregister("_id_pairs")

    def forget(self, target_ids: Sequence[str]) -> None:
        """Drop the pairs of target records that were deleted (a seed's clean_and_insert): a later
        incremental load must insert those records again, not skip them as already there."""
        if target_ids and self.db.has_table("id_map"):
            self.db.execute("DELETE FROM main.id_map WHERE target = ? AND target_id IN "
                            "(SELECT unnest(?::VARCHAR[]))", [self.target, list(target_ids)])

    def count(self) -> int:
        """How many source records this target org holds a mapped copy of."""
        if not self.db.has_table("id_map"):
            return 0
        return int(self.db.execute("SELECT count(*) FROM main.id_map WHERE target = ?",
                                   [self.target]).fetchone()[0])
