"""When an incremental read is not enough: the objects a run must re-read in full, and why.

A cursor (SystemModstamp) sees every change Salesforce stamps, but some changes leave no stamp: a
new field's default value filled into old records, a lookup cleared because its target was
purged, a record purged long before the run, an object with no SystemModstamp at all. A backup
that says `completed` must equal the org, so for these the run reads the object whole, compares
every field with the store (merge_object's compare_all), and turns ids the org no longer has into
deletions. This module decides which objects need that; the run sequences it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from replicator.salesforce.catalog import ObjectPlan
from replicator.store.schema import quote

APPLIED = ("completed", "partial")


def schema_changes(recorded: Mapping[str, Mapping[str, Any]], plan: ObjectPlan) -> list[str]:
    """The plan's fields added or retyped since the store last recorded the object's describe.

    Empty when the store has never recorded the object (its first read is whole anyway). A field
    that disappeared is not a change here: its column keeps the values it had.
    """
    if not recorded:
        return []
    events = []
    for f in plan.included_fields:
        old = recorded.get(f.name)
        if old is None:
            events.append(f"{f.name} added")
        elif (old["type"], old["length"], old["precision"], old["scale"]) != (
                f.type, f.length, f.precision, f.scale):
            before = _shape(old["type"], old["length"], old["precision"], old["scale"])
            after = _shape(f.type, f.length, f.precision, f.scale)
            events.append(f"{f.name} changed from {before} to {after}")
    return events


def _shape(ftype: str, length: int, precision: int, scale: int) -> str:
    if precision:
        return f"{ftype}({precision},{scale})"
    return f"{ftype}({length})" if length else ftype


def full_due(runs: Iterable[Mapping[str, Any]], job: str, every_days: int, now: datetime) -> bool:
    """True when the job's last whole read (a `--full` run, or its first run) is `every_days` or more ago.

    Like ProBackup's "regular full backups compared against the database": the periodic full read
    finds what no incremental question can (values changed without a stamp, ids purged long ago).
    `every_days` 0 switches it off; a job with no applied run yet reads everything anyway.
    """
    if every_days <= 0:
        return False
    applied = sorted((r for r in runs if r["job"] == job and r["status"] in APPLIED),
                     key=lambda r: r["run_id"])
    if not applied:
        return False
    whole = [r for r in applied if r["full"]] or applied[:1]
    return now - whole[-1]["started_at"] >= timedelta(days=every_days)


def purged_ids(con: Any, dataset: str, deleted_suffix: str,
               plans: Iterable[ObjectPlan]) -> dict[str, list[str]]:
    """Ids /deleted reported that the queryAll read did not return: removed for good (hard delete).

    A record in the recycle bin comes back from queryAll with IsDeleted; one that is not there
    any more was purged, and Salesforce cleared every lookup to it without moving a stamp.
    """
    found: dict[str, list[str]] = {}
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", [dataset]).fetchall()}
    for plan in plans:
        gone = plan.name + deleted_suffix
        if gone not in tables:
            continue
        staged = (f'WHERE "Id" NOT IN (SELECT "Id" FROM {quote(dataset)}.{quote(plan.name)})'
                  if plan.name in tables else "")
        ids = [r[0] for r in con.execute(
            f'SELECT DISTINCT "Id" FROM {quote(dataset)}.{quote(gone)} {staged}').fetchall()]
        if ids:
            found[plan.name] = ids
    return found


def referencing(read: Callable[[str, list[Any]], Any], objects: Collection[str],
                plans: Iterable[ObjectPlan], purged: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Current records in the store whose lookups point at purged records, per object.

    `read(sql, params)` runs a query on the store; `objects` are the objects it holds. These
    records changed in the org (the lookup is now empty) without a new SystemModstamp, so the
    run reads them again by Id and compares every field.
    """
    every = [i for ids in purged.values() for i in ids]
    found: dict[str, list[str]] = {}
    for plan in plans:
        if plan.name not in objects:
            continue
        fields = [f.name for f in plan.included_fields
                  if f.type == "reference" and set(f.reference_to) & purged.keys()]
        if not fields:
            continue
        test = " OR ".join(f"list_contains(?, {quote(f)})" for f in fields)
        table = read(f'SELECT "Id" FROM hist.{quote(plan.name)} WHERE _valid_to IS NULL AND NOT _deleted '
                     f"AND ({test})", [every] * len(fields))
        ids = table.column(0).to_pylist()
        if ids:
            found[plan.name] = ids
    return found
