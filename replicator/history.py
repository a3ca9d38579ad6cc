"""What changed: one record's history, run-to-run diffs and per-object change analysis.

Everything reads the snapshot store's history tables with set-based SQL; only one record's versions
(a handful of rows) are turned into Python objects. These feed `replicator history`, run reports
and smart alerts (e.g. "Contact lost 12% of its records in run 42").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from replicator.store.schema import META_COLUMNS, as_of_select, excluded_meta, literal, quote
from replicator.store.snapshot import SnapshotStore


@dataclass
class Version:
    """One version of a record. `changed`: fields that differ from the previous version (for the
    first version: the fields that have a value)."""

    run_id: int
    valid_from: datetime
    valid_to: datetime | None
    deleted: bool
    values: dict[str, Any]
    changed: list[str] = field(default_factory=list)


@dataclass
class Diff:
    """Records of one object that appeared, disappeared (deleted) or changed between two runs.

    `added` and `changed` hold the state at run_b, `removed` the state at run_a; `changed` has an
    extra column `_changed_fields` (list of field names)."""

    added: pa.Table
    removed: pa.Table
    changed: pa.Table


@dataclass
class Alert:
    object: str
    kind: str  # "deletions" | "changes"
    rate: float
    threshold: float
    message: str


def record_history(store: SnapshotStore, obj: str, record_id: str) -> list[Version]:
    """Every version of one record, oldest first, tombstones included, with the fields each changed."""
    rows = store.reads.read(f"SELECT * FROM main.{quote(obj + '_history')}(?)", [record_id]).to_pylist()
    versions: list[Version] = []
    previous: dict[str, Any] | None = None
    for row in rows:
        values = {k: v for k, v in row.items() if k not in META_COLUMNS}
        if previous is None:
            changed = [k for k, v in values.items() if v is not None]
        else:
            changed = [k for k, v in values.items() if previous.get(k) != v]
        versions.append(Version(run_id=row["_run_id"], valid_from=row["_valid_from"],
                                valid_to=row["_valid_to"], deleted=row["_deleted"], values=values,
                                changed=changed))
        previous = values
    return versions


def diff(store: SnapshotStore, obj: str, run_a: int | datetime, run_b: int | datetime) -> Diff:
    """Set-based difference between the states of `obj` as of run_a and as of run_b.

    "Changed" means a different version (Salesforce changed the record between the two runs), so a
    record touched without a visible field change is listed with only system fields changed.
    """
    params = [store.reads.as_of_ts(run_a), store.reads.as_of_ts(run_b)]
    a, b = as_of_select(obj, "$1", meta=True), as_of_select(obj, "$2", meta=True)
    meta = excluded_meta()
    added = store.reads.read(f'SELECT b.* EXCLUDE ({meta}) FROM ({b}) b ANTI JOIN ({a}) a ON a."Id" = b."Id" '
                             'ORDER BY b."Id"', params)
    removed = store.reads.read(f'SELECT a.* EXCLUDE ({meta}) FROM ({a}) a ANTI JOIN ({b}) b '
                               'ON a."Id" = b."Id" ORDER BY a."Id"', params)
    flags = ", ".join(f"CASE WHEN a.{quote(f)} IS DISTINCT FROM b.{quote(f)} THEN {literal(f)} END"
                      for f in store.reads.fields(obj))
    changed = store.reads.read(
        f"SELECT b.* EXCLUDE ({meta}), list_filter([{flags}], x -> x IS NOT NULL) AS _changed_fields "
        f'FROM ({a}) a JOIN ({b}) b ON a."Id" = b."Id" WHERE a._valid_from <> b._valid_from ORDER BY b."Id"',
        params)
    return Diff(added=added, removed=removed, changed=changed)


def object_analysis(store: SnapshotStore, run: int) -> pa.Table:
    """Per object: records before and after `run`, what the run inserted/updated/deleted, and rates.

    Computed from the history tables (the truth), not from the ledger: a version written by the run
    is an insert (no live predecessor), an update (live predecessor) or a deletion (tombstone).
    Rates are relative to the records before the run (1 when the object was empty).
    """
    ts = store.reads.as_of_ts(run)
    parts = []
    for obj in store.reads.objects():
        hist = f"hist.{quote(obj)}"
        parts.append(f"""
            SELECT {literal(obj)} AS object,
              (SELECT count(*) FROM {hist} WHERE NOT _deleted AND _valid_from < $1
                 AND (_valid_to IS NULL OR _valid_to >= $1)) AS records_before,
              (SELECT count(*) FROM {hist} WHERE NOT _deleted AND _valid_from <= $1
                 AND (_valid_to IS NULL OR _valid_to > $1)) AS records_after,
              count(*) FILTER (WHERE NOT v._deleted AND coalesce(p._deleted, true)) AS inserted,
              count(*) FILTER (WHERE NOT v._deleted AND NOT coalesce(p._deleted, true)) AS updated,
              count(*) FILTER (WHERE v._deleted AND NOT coalesce(p._deleted, false)) AS deleted
            FROM (SELECT "Id", _key, _deleted FROM {hist} WHERE _valid_from = $1) v
            LEFT JOIN (SELECT "Id", _key, _deleted FROM {hist} WHERE _valid_to = $1) p
              ON p._key = v._key AND p."Id" = v."Id"
            """)
    if not parts:
        return pa.table({"object": pa.array([], pa.string())})
    return store.reads.read(
        "SELECT *, (inserted + updated + deleted) / greatest(records_before, 1) AS change_rate, "
        "deleted / greatest(records_before, 1) AS deletion_rate FROM ("
        + " UNION ALL ".join(parts) + ") ORDER BY object", [ts])


def alerts(analysis: pa.Table, *, max_deletion_rate: float = 0.05, max_change_rate: float = 0.5,
           min_records: int = 100) -> list[Alert]:
    """Smart-alert candidates from object_analysis: unusual deletions or churn on objects big enough
    for a rate to mean something."""
    found = []
    for row in analysis.to_pylist():
        obj, before = row["object"], row["records_before"]
        if before < min_records:
            continue
        if row["deletion_rate"] > max_deletion_rate:
            rate = row["deletion_rate"]
            found.append(Alert(obj, "deletions", rate, max_deletion_rate,
                               f"{obj}: {row['deleted']} of {before} records deleted ({rate:.1%})"))
        if row["change_rate"] > max_change_rate:
            changed, rate = row["inserted"] + row["updated"] + row["deleted"], row["change_rate"]
            found.append(Alert(obj, "changes", rate, max_change_rate,
                               f"{obj}: {changed} records changed out of {before} ({rate:.1%})"))
    return found
