"""The store's own invariants, as queries that name what breaks them (read by the `check` job).

Why these: as-of reads are only right when each record's versions tile time without overlap and
exactly one version (live or tombstone) is current; a version whose run never committed (missing,
still running, aborted) would be visible though its run is not; and a body column that names a blob
the blob store lacks is a backed-up file that cannot be restored. Each query returns at most a few
offending rows, so a broken store of millions of versions still answers quickly and readably.
"""

from __future__ import annotations

from collections.abc import Iterator

from replicator.store.schema import quote
from replicator.store.snapshot import SnapshotStore

__all__ = ["BODY_TYPE", "COMMITTED", "body_columns", "body_shas", "history_problems", "open_ledger_rows",
           "version_count"]

BODY_TYPE = "base64"  # the describe type of the field whose value the store keeps as a blob's id
COMMITTED = ("completed", "partial", "failed", "disabled")  # final statuses (apply or finish_run)
EXAMPLES = 5


def version_count(store: SnapshotStore, obj: str) -> int:
    """How many versions an object's history table holds."""
    return store.reads.read(f"SELECT count(*) AS n FROM hist.{quote(obj)}").column("n")[0].as_py()


def history_problems(store: SnapshotStore, obj: str) -> Iterator[str]:
    """Overlapping versions, Ids without exactly one current version, versions of uncommitted runs."""
    hist = f"hist.{quote(obj)}"
    overlaps = store.reads.read(
        f'SELECT "Id", _valid_from, _valid_to, next_from FROM (SELECT "Id", _valid_from, _valid_to, '
        f'lead(_valid_from) OVER (PARTITION BY "Id" ORDER BY _valid_from, _valid_to NULLS LAST) AS next_from '
        f"FROM {hist}) WHERE next_from IS NOT NULL AND (_valid_to IS NULL OR _valid_to > next_from) "
        f"OR _valid_to <= _valid_from "
        f'ORDER BY "Id" LIMIT {EXAMPLES}').to_pylist()
    for r in overlaps:
        span = f"{obj} {r['Id']}: version [{r['_valid_from']}, {r['_valid_to'] or 'current'})"
        ends = r["_valid_to"]
        overlapping = r["next_from"] is not None and (ends is None or ends > r["next_from"])
        yield (f"{span} overlaps the next version, from {r['next_from']}" if overlapping
               else f"{span} ends before it starts")
    currents = store.reads.read(
        f'SELECT "Id", count(*) FILTER (WHERE _valid_to IS NULL) AS n FROM {hist} GROUP BY "Id" '
        f'HAVING count(*) FILTER (WHERE _valid_to IS NULL) <> 1 ORDER BY "Id" LIMIT {EXAMPLES}').to_pylist()
    for r in currents:
        yield f"{obj} {r['Id']}: {r['n']} current versions (exactly one expected)"
    orphans = store.reads.read(
        f"SELECT h._run_id, any_value(r.status) AS status, count(*) AS n FROM {hist} h "
        f"LEFT JOIN main.runs r ON r.run_id = h._run_id "
        f"WHERE r.run_id IS NULL OR NOT list_contains(?, r.status) GROUP BY h._run_id ORDER BY h._run_id "
        f"LIMIT {EXAMPLES}", [list(COMMITTED)]).to_pylist()
    for r in orphans:
        state = "is not in the run ledger" if r["status"] is None else f"is {r['status']}, not committed"
        yield f"{obj}: {r['n']} versions written by run {r['_run_id']}, which {state}"


def body_columns(store: SnapshotStore, obj: str) -> list[str]:
    """The object's file body columns (e.g. VersionData): each version's value names a blob."""
    return [f for f, t in store.reads.field_types(obj).items()
            if t["type"] == BODY_TYPE and f in store.reads.column_types(obj)]


def body_shas(store: SnapshotStore, obj: str) -> list[str]:
    """Every blob any version of the object references: its id (a sha256 in stores from before ids)."""
    columns = body_columns(store, obj)
    if not columns:
        return []
    union = " UNION ".join(f"SELECT {quote(c)} AS sha FROM hist.{quote(obj)} WHERE {quote(c)} IS NOT NULL"
                           for c in columns)
    return store.reads.read(f"SELECT DISTINCT sha FROM ({union}) ORDER BY sha").column("sha").to_pylist()


def open_ledger_rows(store: SnapshotStore) -> Iterator[str]:
    """Runs and exports whose row was never closed (their process ended without finishing them)."""
    for run in store.ledger.runs():
        if run["status"] == "running":
            yield (f"run {run['run_id']} (job {run['job']}, pid {run['pid']}, started {run['started_at']}) "
                   f"is still 'running' though no writer holds the store; the next backup marks it aborted")
    for export in store.exports.entries():
        if export["status"] == "running":
            yield (f"export {export['export_id']} ({export['kind']} to {export['destination']}, started "
                   f"{export['exported_at']}) never finished")
