"""Which backed-up records a restore brings back: the chosen ones, then their related records.

Why the store answers: the records to restore are the versions as of the chosen run, deleted from
the org or not. Children are found by the child relationships the target's describe names (Contacts,
Opportunities and their line items, Cases, Tasks/Events by WhatId/WhoId, notes, attachments,
ContentDocumentLink, custom master-detail children), recursively; the versions of the files those
links point at come along. Values are always bound parameters; names are quoted identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from replicator.errors import InvalidInput, NotFound
from replicator.restore.model import Describer
from replicator.store.forgotten import Forgotten
from replicator.store.schema import as_of_select, quote
from replicator.store.snapshot import SnapshotStore

RELATED = ("none", "children", "all")
_WHERE = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?)\s*", re.S)
# Objects reached through another: a ContentDocumentLink brings the versions of its document.
FILE_VERSIONS = ("ContentDocumentLink", "ContentDocumentId", "ContentVersion")


class BadSelection(InvalidInput, ValueError):
    """A selection that cannot be read: a malformed filter, an unknown field, an empty result."""


class UnknownRecords(NotFound, ValueError):
    """Ids the chosen run does not hold."""


class ForgottenRecords(InvalidInput, ValueError):
    """Ids of records forgotten by a GDPR request: no restore or replicate writes them (issue 12)."""


def refusal(obj: str, requests: dict[str, int | None]) -> str:
    """One line naming the forgotten records and the requests that forgot them."""
    shown = sorted(requests)[:5]
    more = f" (and {len(requests) - 5} more)" if len(requests) > 5 else ""
    numbers = ", ".join(str(n) for n in sorted({r for r in requests.values() if r is not None}))
    return (f"{obj} {', '.join(shown)}{more} {'was' if len(requests) == 1 else 'were'} forgotten by GDPR "
            f"request {numbers or '(unknown)'} and will not be written (lift the request to restore it)")


@dataclass(frozen=True)
class Where:
    """`FIELD = value`, parsed: the field is checked against the store, the value is bound."""

    field: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Where:
        """A filter of the form `FIELD = value` (value optionally quoted)."""
        match = _WHERE.fullmatch(text)
        if match is None:
            raise BadSelection(f"a filter is FIELD = value, not {text!r}")
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        return cls(name, value)


class Snapshot:
    """The store's records as of one instant, read by Id or by a reference column."""

    def __init__(self, store: SnapshotStore, as_of: datetime, forgotten: Forgotten | None = None) -> None:
        self.store = store
        self.as_of = as_of
        self.forgotten = forgotten  # subjects of GDPR forget requests: refused, never written
        self.objects = set(store.reads.objects())

    def columns(self, obj: str) -> dict[str, str]:
        """The object's stored columns and their DuckDB types."""
        return self.store.reads.column_types(obj)

    def rows(self, obj: str, column: str, values: Iterable[str]) -> pa.Table:
        """Records of `obj` whose `column` holds one of `values`, as of the instant."""
        wanted = sorted(set(values))
        if not wanted or obj not in self.objects or column not in self.columns(obj):
            return pa.table({"Id": pa.array([], pa.string())})
        # The values travel as a registered Arrow table (a list parameter costs a probe per element).
        cur = self.store.db.con.cursor()
        try:
            cur.register("_wanted_values", pa.table({"v": pa.array(wanted, pa.string())}))
            query = (as_of_select(obj, "$1") + f" AND {quote(column)} IN (SELECT v FROM _wanted_values)"
                     ' ORDER BY "Id"')
            return cur.execute(query, [self.as_of]).to_arrow_table()
        finally:
            cur.close()

    def matching(self, obj: str, where: Where) -> pa.Table:
        """Records of `obj` whose field equals the bound value (cast to the column's type)."""
        columns = self.columns(obj)
        if where.field not in columns:
            raise BadSelection(f"{obj} has no field {where.field} in the store")
        sql_type = columns[where.field]
        try:
            return self.store.reads.read(
                as_of_select(obj, "$1") + f" AND {quote(where.field)} = CAST($2 AS {sql_type}) "
                'ORDER BY "Id"', [self.as_of, where.value])
        except duckdb.ConversionException:
            raise BadSelection(f"{where.value!r} is not a value of {obj}.{where.field} "
                               f"({sql_type})") from None


def seed(snapshot: Snapshot, obj: str, ids: Sequence[str] | None, where: Where | None) -> pa.Table:
    """The chosen records of `obj`: by Id (each must be in the run) or by a filter (not empty)."""
    if obj not in snapshot.objects:
        raise NotFound(f"the store holds no object {obj}")
    if (ids is None) == (where is None):
        raise BadSelection("choose records either by Id or by a filter")
    if ids is not None:
        found = snapshot.rows(obj, "Id", ids)
        missing = sorted(set(ids) - set(found.column("Id").to_pylist()))
        forgotten = snapshot.forgotten.requests(missing) if snapshot.forgotten and missing else {}
        if forgotten:
            raise ForgottenRecords(refusal(obj, forgotten))
        if missing:
            raise UnknownRecords(f"{obj} as of the chosen run holds no record {', '.join(missing[:5])}"
                                 + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""))
    else:
        assert where is not None
        found = snapshot.matching(obj, where)
    if not found.num_rows:
        raise BadSelection(f"no {obj} record as of the chosen run has {where.field} = {where.value!r}"
                           if where else f"no {obj} record chosen")
    return found


class Selection:
    """The records to restore, per object (as-of rows); grows as related records are found."""

    def __init__(self) -> None:
        self.tables: dict[str, pa.Table] = {}
        self.ids: dict[str, set[str]] = {}

    def add(self, obj: str, table: pa.Table) -> pa.Table:
        """Add the rows not yet selected; returns them."""
        have = self.ids.setdefault(obj, set())
        mask = pc.invert(pc.is_in(table.column("Id"), value_set=pa.array(sorted(have), pa.string())))
        new = table.filter(mask)
        if new.num_rows:
            have.update(new.column("Id").to_pylist())
            old = self.tables.get(obj)
            self.tables[obj] = new if old is None else pa.concat_tables([old, new], promote_options="default")
        return new

    def contains(self, record_id: str) -> bool:
        """Is this Id selected (in any object)?"""
        return any(record_id in ids for ids in self.ids.values())


def add_children(snapshot: Snapshot, describer: Describer, selection: Selection,
                 frontier: dict[str, pa.Table]) -> None:
    """Children of `frontier`'s records, recursively, and the file versions their links point at."""
    while frontier:
        found: dict[str, list[pa.Table]] = {}
        for parent, table in frontier.items():
            model = describer.model(parent)
            if model is None:
                continue
            ids = table.column("Id").to_pylist()
            for child, column, _ in model.children:
                if child in snapshot.objects:
                    found.setdefault(child, []).append(snapshot.rows(child, column, ids))
        frontier = {}
        for child, tables in sorted(found.items()):
            child_model = describer.model(child)
            if child_model is None or not child_model.createable:
                continue
            for table in tables:
                new = selection.add(child, table)
                if new.num_rows:
                    frontier[child] = new if child not in frontier else pa.concat_tables(
                        [frontier[child], new], promote_options="default")
        links = frontier.get(FILE_VERSIONS[0])
        if links is not None and FILE_VERSIONS[1] in links.column_names:
            docs = [d for d in links.column(FILE_VERSIONS[1]).to_pylist() if d]
            versions = snapshot.rows(FILE_VERSIONS[2], FILE_VERSIONS[1], docs)
            if "IsLatest" in versions.column_names:  # only the latest version is restored
                versions = versions.filter(pc.fill_null(versions.column("IsLatest"), False))
            versions = selection.add(FILE_VERSIONS[2], versions)
            if versions.num_rows:
                frontier[FILE_VERSIONS[2]] = versions
