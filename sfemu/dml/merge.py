"""merge(): fold up to two records into a master, as the partner API's merge call does.

Salesforce's rules (SOAP API Developer Guide, merge() and MergeResult): Account, Contact, Lead and
Case merge; the master keeps its Id and takes the field values sent with it; the records merged away
get MasterRecordId = master and go to the recycle bin (so replication's getDeleted and REST's
/deleted list them); their child records are re-parented to the master, which moves the children's
SystemModstamp (a merge is a system change to them: LastModifiedDate stays, no triggers fire on
them). All of it happens in one transaction: any failure leaves the org unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from sfemu.dml.engine import DmlAbort, _id_errors
from sfemu.dml.results import DmlError
from sfemu.dml.save import ID, LIVE
from sfemu.store import quote

if TYPE_CHECKING:
    from sfemu.dml.engine import Dml
    from sfemu.schema import SObject

MERGEABLE = ("Account", "Contact", "Lead", "Case")
MAX_MERGED = 2
MASTER_RECORD = "MasterRecordId"


@dataclass
class MergeOutcome:
    """One MergeResult: the master's id, the ids merged away and the children re-parented."""

    id: str | None
    success: bool
    merged_ids: list[str] = field(default_factory=list)
    updated_related_ids: list[str] = field(default_factory=list)
    errors: list[DmlError] = field(default_factory=list)


class _Failed(Exception):
    def __init__(self, errors: list[DmlError]) -> None:
        super().__init__(errors[0].message)
        self.errors = errors


def merge(dml: Dml, obj: SObject, master: pa.Table, merged: list[str], *, null_marker: str,
          user_id: str | None = None) -> MergeOutcome:
    """Merge `merged` into the one-row `master` (its Id plus the field values to set)."""
    try:
        if obj.name not in MERGEABLE:
            raise _Failed([DmlError("INVALID_TYPE", f"Cannot merge records of type {obj.name}")])
        if not merged:
            raise _Failed([DmlError("REQUIRED_FIELD_MISSING", "Required field is missing: recordToMergeIds",
                                    ["recordToMergeIds"])])
        if len(merged) > MAX_MERGED:
            raise _Failed([DmlError("LIMIT_EXCEEDED", f"A merge request can merge at most {MAX_MERGED} "
                                                      "records into the master record")])
        texts = [master.column("Id")[0].as_py() if "Id" in master.column_names else None, *merged]
        ids = _resolve(dml, obj, texts)
        with dml.transaction():
            return _merge(dml, obj, master.set_column(master.column_names.index("Id"), "Id",
                                                      pa.array([ids[0]], pa.string())),
                          ids[1:], null_marker, user_id)
    except _Failed as failed:
        return MergeOutcome(None, False, errors=failed.errors)
    except DmlAbort as abort:  # an automation on the master or the merged records failed
        return MergeOutcome(None, False, errors=[abort.error])


def _resolve(dml: Dml, obj: SObject, texts: list[str | None]) -> list[str]:
    """Canonical live ids of master and merged records, or their errors (the master's first); an
    id listed twice (the master among the merged too) is DUPLICATE_VALUE."""
    resolved = dml.resolve(obj, pa.array(texts, pa.string()), "live")
    errors = _id_errors(resolved, list(range(len(texts))), "merge")
    if errors:
        raise _Failed(errors[min(errors)])
    return resolved.column("id").to_pylist()


def _merge(dml: Dml, obj: SObject, master: pa.Table, merged: list[str], null_marker: str,
           user_id: str | None) -> MergeOutcome:
    master_id = master.column("Id")[0].as_py()
    if master.num_columns > 1:
        result = dml.update(obj, master, empty_means_unchanged=True, null_marker=null_marker,
                            user_id=user_id)[0]
        if not result.success:
            raise _Failed(result.errors)
    related = _reparent(dml, obj, master_id, merged)
    cur, table = dml.store.cursor(), dml.store.table(obj)
    cur.execute(f"UPDATE {table} SET {quote(MASTER_RECORD)} = ? WHERE {ID} IN (SELECT unnest(?))",
                [master_id, merged])
    for result in dml.delete(merged, all_or_none=True, user_id=user_id):
        if not result.success:
            raise _Failed(result.errors)
    return MergeOutcome(master_id, True, merged, related)


def _reparent(dml: Dml, obj: SObject, master_id: str, merged: list[str]) -> list[str]:
    """Point every live child of the merged records at the master; the children's ids."""
    store, cur = dml.store, dml.store.cursor()
    stamp = dml.org.clock.stamp().replace(tzinfo=None)
    related: list[str] = []
    for rel in store.schema.children(obj.name):
        if not rel.field.stored or rel.field.name == MASTER_RECORD:
            continue
        column = quote(rel.field.name)
        stamped = rel.child.field("SystemModstamp") is not None
        rows = cur.execute(
            f"UPDATE {store.table(rel.child)} SET {column} = ?"
            + (f", {quote('SystemModstamp')} = ?" if stamped else "")
            + f" WHERE {LIVE} AND {column} IN (SELECT unnest(?)) RETURNING {ID}",
            [master_id, *([stamp] if stamped else []), merged]).fetchall()
        related.extend(r[0] for r in rows if r[0] not in related)
    return related
