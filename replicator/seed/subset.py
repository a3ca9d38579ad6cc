"""The subset closure: which records of the snapshot store, as of a run, a seed copies.

Why in DuckDB: the selection is a set of Ids per object held in an in-memory database attached to
the store's (every cursor sees it), filled by INSERT ... SELECT over the `as of` state, so even a
seed of millions of records never brings an object into Python. Filter values are bound parameters,
cast to the column's type by DuckDB; names come from describe and the store and are quoted.

Order: the root (filter, limit), then children by relationship name, depth first, each limited to
children of records already chosen; then parents, repeatedly, until every lookup of a chosen record
that points at a seedable object points at a chosen record (polymorphic lookups: each target object
is tried, and the store decides which one holds the Id).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from replicator.seed.template import LIST_VALUE, NO_VALUE, Condition, TemplateProblem
from replicator.store.schema import as_of_select, quote
from replicator.store.snapshot import SnapshotStore

__all__ = ["WORK", "Selection"]

WORK = "seedwork"  # the attached in-memory database holding the selection
CHOSEN = f"(SELECT id FROM {WORK}.ids WHERE sobject = ?)"  # the chosen Ids of the object bound to ?
_SQL_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "like": "LIKE",
            "in": "IN", "not in": "NOT IN"}


@dataclass(frozen=True)
class ParentLink:
    """A lookup the closure follows: `sobject.field` -> each of `targets` that the store holds."""

    sobject: str
    field: str
    targets: tuple[str, ...]


class Selection:
    """The chosen Ids per object, as of one instant of the store."""

    def __init__(self, store: SnapshotStore, as_of: datetime, template_name: str) -> None:
        self.store, self.as_of, self.template_name = store, as_of, template_name
        self.con = store.db.con
        attached = {r[0] for r in self.con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
        if WORK in attached:
            self.con.execute(f"DETACH {WORK}")
        self.con.execute(f"ATTACH ':memory:' AS {WORK} (READ_WRITE)")  # also on a read-only store
        self.con.execute(f"CREATE TABLE {WORK}.ids (sobject VARCHAR NOT NULL, id VARCHAR NOT NULL)")
        self.con.execute(f"CREATE TABLE {WORK}.matched (source_id VARCHAR NOT NULL, target_id VARCHAR)")

    def close(self) -> None:
        """Drop the selection (the store's own tables were never touched)."""
        self.con.execute(f"DETACH {WORK}")

    # --- reading the store as of the instant --------------------------------------------------

    def source(self, obj: str) -> tuple[str, list[Any]]:
        """SQL (and its parameters) of `obj`'s records as of the instant."""
        return as_of_select(obj, "?"), [self.as_of, self.as_of]


    def _count(self) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {WORK}.ids").fetchone()[0])

    def where(self, obj: str, conditions: Sequence[Condition], columns: dict[str, str],
              alias: str = "t") -> tuple[str, list[Any]]:
        """A WHERE fragment of typed conditions, values bound and cast to the column's type."""
        parts, params = [], []
        for c in conditions:
            if c.field not in columns:
                raise TemplateProblem(f"{self.template_name}: {c.key}.field: {obj} has no field "
                                      f"{c.field!r} in the backup")
            col, sql_type = f"{alias}.{quote(c.field)}", columns[c.field]
            if c.op in NO_VALUE:
                parts.append(f"{col} IS {'NOT ' if c.op == 'is not null' else ''}NULL")
                continue
            values = c.value if c.op in LIST_VALUE else [c.value]
            for v in values:
                self._check_cast(c, v, sql_type)
            cast_type = "VARCHAR" if c.op == "like" else sql_type
            marks = ", ".join(f"CAST(? AS {cast_type})" for _ in values)
            parts.append(f"{col} {_SQL_OPS[c.op]} ({marks})" if c.op in LIST_VALUE
                         else f"{col} {_SQL_OPS[c.op]} {marks}")
            params.extend(values)
        return " AND ".join(parts) or "true", params

    def _check_cast(self, c: Condition, value: Any, sql_type: str) -> None:
        if c.op == "like":
            if not isinstance(value, str):
                raise TemplateProblem(f"{self.template_name}: {c.key}.value: 'like' needs text")
            return
        try:
            self.con.execute(f"SELECT CAST(? AS {sql_type})", [value]).fetchone()
        except duckdb.Error:
            raise TemplateProblem(f"{self.template_name}: {c.key}.value: {value!r} is not a valid "
                                  f"{sql_type.lower()} for {c.field}") from None

    # --- filling the selection ------------------------------------------------------------------

    def add_root(self, obj: str, conditions: Sequence[Condition], columns: dict[str, str],
                 limit: int | None) -> int:
        """Records of the root object that pass the filter, lowest Ids first, at most `limit`."""
        source, params = self.source(obj)
        where, values = self.where(obj, conditions, columns)
        return self._insert(obj, f"SELECT t.\"Id\" FROM ({source}) t WHERE {where} ORDER BY t.\"Id\"",
                            [*params, *values], limit)

    def add_children(self, parent: str, obj: str, field: str, conditions: Sequence[Condition],
                     columns: dict[str, str], limit: int | None) -> int:
        """Records of `obj` whose `field` points at a chosen `parent` and that pass the filter."""
        source, params = self.source(obj)
        where, values = self.where(obj, conditions, columns)
        query = (f"SELECT t.\"Id\" FROM ({source}) t WHERE t.{quote(field)} IN {CHOSEN} "
                 f"AND t.\"Id\" NOT IN {CHOSEN} AND {where} ORDER BY t.\"Id\"")
        return self._insert(obj, query, [*params, parent, obj, *values], limit)

    def _insert(self, obj: str, query: str, params: list[Any], limit: int | None) -> int:
        before = self._count()
        self.con.execute(f"INSERT INTO {WORK}.ids SELECT ?, \"Id\" FROM ({query}"
                         f"{' LIMIT ?' if limit else ''})", [obj, *params, *([limit] if limit else [])])
        return self._count() - before

    def close_parents(self, links: Iterable[ParentLink]) -> int:
        """Pull every parent a chosen record points at, until nothing new comes; returns how many."""
        links = list(links)
        added = 0
        while True:
            step = 0
            for link in links:
                if not self.count(link.sobject):
                    continue
                child, child_params = self.source(link.sobject)
                for target in link.targets:
                    parent, parent_params = self.source(target)
                    before = self._count()
                    self.con.execute(
                        f"INSERT INTO {WORK}.ids SELECT DISTINCT ?, p.\"Id\" FROM ({parent}) p "
                        f"WHERE p.\"Id\" IN (SELECT c.{quote(link.field)} FROM ({child}) c "
                        f"WHERE c.\"Id\" IN {CHOSEN}) AND p.\"Id\" NOT IN {CHOSEN}",
                        [target, *parent_params, *child_params, link.sobject, target])
                    step += self._count() - before
            added += step
            if not step:
                return added

    # --- reading the selection ------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Chosen records per object."""
        return dict(self.con.execute(f"SELECT sobject, count(*) FROM {WORK}.ids GROUP BY sobject").fetchall())

    def count(self, obj: str) -> int:
        row = self.con.execute(f"SELECT count(*) FROM {WORK}.ids WHERE sobject = ?", [obj]).fetchone()
        return int(row[0])

    def referenced(self, obj: str, field: str) -> list[str]:
        """Distinct values of a lookup among the chosen records of `obj` (e.g. the owners to match)."""
        source, params = self.source(obj)
        return [r[0] for r in self.con.execute(
            f"SELECT DISTINCT t.{quote(field)} FROM ({source}) t WHERE t.\"Id\" IN {CHOSEN} "
            f"AND t.{quote(field)} IS NOT NULL", [*params, obj]).fetchall()]

    def add_matched(self, pairs: dict[str, str | None]) -> None:
        """Source Ids of records never seeded but found in the target (users, record types, pricebooks)."""
        if pairs:
            self.con.executemany(f"INSERT INTO {WORK}.matched VALUES (?, ?)", list(pairs.items()))
