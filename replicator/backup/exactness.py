"""When an incremental read is not enough: the objects a run must re-read in full, and why.

A cursor (SystemModstamp) sees every change Salesforce stamps, but some changes leave no stamp: a
new field's default value filled into old records, a lookup cleared because its target was
purged, a record purged long before the run, an object with no SystemModstamp at all. A backup
that says `completed` must equal the org, so for these the run reads the object whole, compares
every field with the store (merge_object's compare_all), and turns ids the org no longer has into
deletions. This module decides which objects need that and does the staging-side work (ids
to reconcile, purged ids, records to re-read); the run sequences it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from replicator.config import Secret
from replicator.progress import Progress
from replicator.salesforce.catalog import ObjectPlan
from replicator.sources.salesforce import DELETED_SUFFIX, STAGING_DATASET, connect_staging
from replicator.store.reads import Reads
from replicator.store.schema import quote
from replicator.store.snapshot import SnapshotStore

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


def reconcile(store: SnapshotStore, plans: list[ObjectPlan], staging: Path,
              reporter: Progress) -> dict[str, int]:
    """Objects read whole: ids the store holds as current but the org no longer has become
    "<Object>__deleted" rows.

    A whole read takes every record of the object with queryAll (live and recycle bin), so a
    current id that it did not return was purged from the org: a deletion no incremental query
    can see. Only objects whose whole read succeeded are passed here.
    """
    found: dict[str, int] = {}
    now = datetime.now(UTC)
    con = connect_staging(staging, store.db.key)
    try:
        for plan in plans:
            if plan.filter_by is not None or not _has_table(con, plan.name):
                reporter.advance(plan.name)
                continue
            con.register("held_ids", store.reads.current_ids(plan.name))
            deleted = _staged(plan.name + DELETED_SUFFIX)
            con.execute(f"CREATE TABLE IF NOT EXISTS {deleted} (\"Id\" VARCHAR, deleted_at TIMESTAMPTZ)")
            row = con.execute(
                f"INSERT INTO {deleted} SELECT h.\"Id\", ?::TIMESTAMPTZ FROM held_ids h "
                f"WHERE h.\"Id\" NOT IN (SELECT \"Id\" FROM {_staged(plan.name)})", [now]).fetchone()
            found[plan.name] = int(row[0]) if row else 0
            con.unregister("held_ids")
            reporter.advance(plan.name)
    finally:
        con.close()
    return found


def purged_ids(staging: Path, plans: Iterable[ObjectPlan], key: Secret | None = None) -> dict[str, list[str]]:
    """Ids /deleted reported that the queryAll read did not return: removed for good (hard delete).

    A record in the recycle bin comes back from queryAll with IsDeleted; one that is not there
    any more was purged, and Salesforce cleared every lookup to it without moving a stamp.
    """
    if not staging.exists():
        return {}
    found: dict[str, list[str]] = {}
    con = connect_staging(staging, key)
    try:
        for plan in plans:
            if not _has_table(con, plan.name + DELETED_SUFFIX):
                continue
            staged = (f'WHERE "Id" NOT IN (SELECT "Id" FROM {_staged(plan.name)})'
                      if _has_table(con, plan.name) else "")
            ids = [r[0] for r in con.execute(
                f'SELECT DISTINCT "Id" FROM {_staged(plan.name + DELETED_SUFFIX)} {staged}').fetchall()]
            if ids:
                found[plan.name] = ids
    finally:
        con.close()
    return found


def referencing(reads: Reads, plans: Iterable[ObjectPlan],
                purged: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Current records in the store whose lookups point at purged records, per object.

    These records changed in the org (the lookup is now empty) without a new SystemModstamp, so
    the run reads them again by Id and compares every field.
    """
    every = [i for ids in purged.values() for i in ids]
    held = set(reads.objects())
    found: dict[str, list[str]] = {}
    for plan in plans:
        if plan.name not in held:
            continue
        fields = [f.name for f in plan.included_fields
                  if f.type == "reference" and set(f.reference_to) & purged.keys()]
        if not fields:
            continue
        test = " OR ".join(f"list_contains(?, {quote(f)})" for f in fields)
        table = reads.read(f'SELECT "Id" FROM hist.{quote(plan.name)} '
                           f"WHERE _valid_to IS NULL AND NOT _deleted AND ({test})", [every] * len(fields))
        ids = table.column(0).to_pylist()
        if ids:
            found[plan.name] = ids
    return found


def _staged(table: str) -> str:
    return f"{quote(STAGING_DATASET)}.{quote(table)}"


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
    row = con.execute(sql, [STAGING_DATASET, name]).fetchone()
    return bool(row and row[0])
