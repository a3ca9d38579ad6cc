"""When an incremental read is not enough: the objects a run must re-read in full, and why.

A cursor (SystemModstamp) sees every change Salesforce stamps, but some changes leave no stamp: a
new field's default value filled into old records, a lookup cleared because its target was
purged, a record purged long before the run, an object with no SystemModstamp at all. A backup
that says `completed` must equal the org, so for these the run reads the object whole, compares
every field with the store (merge_object's compare_all), and turns ids the org no longer has into
deletions. This module decides which objects need that; the run sequences it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from replicator.salesforce.catalog import ObjectPlan

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
