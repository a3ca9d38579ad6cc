"""The recycle bin: soft delete with master-detail cascade, undelete, hard delete, purge.

One implementation serves the DML engine (API deletes), the data generator (a bin that is not
empty) and churn (simulated deletes, undeletes and the bin's purge). Children deleted by a cascade
get their parent's deletion time in `_DeletedAt`, which is how undelete finds what to restore with it.
All functions work on the store's thread-local cursor, so they join an open DML transaction.

Every path writes the org's delete log, because Salesforce's getDeleted and `/sobjects/X/deleted`
read a delete log ("Deleted records are written to a delete log which this resource accesses",
REST API guide, sObject Get Deleted), not the recycle bin: a record hard deleted, purged from the
bin or removed with its parent stays listed for the log's 15 days. The documentation does not say
what an undelete does to the log; the emulator removes the entry, because the guide's replication
steps apply getUpdated and then getDeleted to the same window: a record deleted and undeleted in it
must come out live (its SystemModstamp moves, so getUpdated lists it), not deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from sfemu.schema import SObject
from sfemu.store import DELETED_AT, RECYCLE_BIN_DAYS, Store, quote

_AUDIT = ("LastModifiedDate", "SystemModstamp")


def _cascade_children(store: Store, obj: SObject, parents: pa.Table, where: str, select: str) -> list:
    """(child object, rows) for master-detail children of `parents` (Id plus the columns `select` uses)."""
    out = []
    cur = store.cursor()
    for rel in store.schema.children(obj.name):
        if not rel.cascade_delete or rel.child.name == obj.name or not parents.num_rows:
            continue
        cur.register("_par", parents)
        try:
            kids = cur.execute(
                f"SELECT {select} FROM {store.table(rel.child)} c JOIN _par p "
                f'ON c.{store.column(rel.field)} = p."Id" WHERE {where}'
            ).to_arrow_table()
        finally:
            cur.unregister("_par")
        out.append((rel.child, kids))
    return out


def unrestricted(store: Store, obj: SObject, alias: str = "") -> str:
    """SQL: true for records of `obj` (columns qualified by `alias` if given) that no live child of
    a restricted relationship points at. Salesforce refuses to delete those (an Account with Cases):
    the DML engine reports DELETE_FAILED before it gets here, and simulated activity skips them."""
    qualifier = f"{alias}." if alias else ""
    return " AND ".join(
        f'{qualifier}"Id" NOT IN (SELECT {store.column(rel.field)} FROM {store.table(rel.child)} '
        f"WHERE {quote(DELETED_AT)} IS NULL AND {store.column(rel.field)} IS NOT NULL)"
        for rel in store.schema.children(obj.name) if rel.restricted_delete and rel.field.stored
    ) or "true"


def soft_delete(store: Store, obj: SObject, rows: pa.Table, *, clamp: bool = False) -> dict[str, int]:
    """Move live records (Id, ts) to the recycle bin, cascading to children whose relationship
    cascades (master-detail, and lookups such as Contact.AccountId); restricted ones stay live.

    `clamp` keeps the audit order (deleted after last modified) for back-dated deletions.
    Returns rows deleted per object.
    """
    cur = store.cursor()
    ts = 'd."ts"'
    if clamp and obj.field("SystemModstamp"):
        ts = 'greatest(d."ts", t."SystemModstamp" + INTERVAL 1 MILLISECOND)'
    sets = ['"IsDeleted" = true', f"{quote(DELETED_AT)} = {ts}"]
    sets += [f"{quote(c)} = {ts}" for c in _AUDIT if obj.field(c)]
    out = {obj.name: 0}
    with store.write_lock:
        cur.register("_del", rows)
        try:
            done = cur.execute(
                f"UPDATE {store.table(obj)} AS t SET {', '.join(sets)} FROM _del d "
                f'WHERE t."Id" = d."Id" AND t.{quote(DELETED_AT)} IS NULL '
                f'AND {unrestricted(store, obj, "t")} '
                f'RETURNING t."Id", t.{quote(DELETED_AT)} AS ts'
            ).to_arrow_table()
        finally:
            cur.unregister("_del")
        out[obj.name] = done.num_rows
        cur.register("_logged", done)
        try:
            store.log_deletions(obj, "_logged")
        finally:
            cur.unregister("_logged")
        for child, kids in _cascade_children(
            store, obj, done, f"c.{quote(DELETED_AT)} IS NULL", 'c."Id", p."ts"'
        ):
            for k, v in soft_delete(store, child, kids).items():
                out[k] = out.get(k, 0) + v
    return out


def undelete(store: Store, obj: SObject, rows: pa.Table) -> dict[str, int]:
    """Bring (Id, ts) records back from the recycle bin with the children their deletion cascaded to."""
    cur = store.cursor()
    sets = ['"IsDeleted" = false', f"{quote(DELETED_AT)} = NULL"]
    sets += [f'{quote(c)} = d."ts"' for c in _AUDIT if obj.field(c)]
    out = {obj.name: 0}
    with store.write_lock:
        cur.register("_und", rows)
        try:
            restored = cur.execute(
                f'SELECT t."Id", t.{quote(DELETED_AT)} AS deleted_at, d."ts" FROM {store.table(obj)} t '
                f'JOIN _und d ON t."Id" = d."Id" WHERE t.{quote(DELETED_AT)} IS NOT NULL'
            ).to_arrow_table()
            cur.execute(
                f"UPDATE {store.table(obj)} AS t SET {', '.join(sets)} FROM _und d "
                f'WHERE t."Id" = d."Id" AND t.{quote(DELETED_AT)} IS NOT NULL'
            )
            store.unlog_deletions(obj, "_und")
        finally:
            cur.unregister("_und")
        out[obj.name] = restored.num_rows
        for child, kids in _cascade_children(
            store, obj, restored, f"c.{quote(DELETED_AT)} = p.deleted_at", 'c."Id", p."ts"'
        ):
            if kids.num_rows:
                for k, v in undelete(store, child, kids).items():
                    out[k] = out.get(k, 0) + v
    return out


def hard_delete(store: Store, obj: SObject, rows: pa.Table) -> dict[str, int]:
    """Remove records (Id, ts) for good, live or in the bin, with their master-detail children.

    Records still live get a delete-log entry at `ts` (those in the bin have one already); lookups
    on other records that pointed at them are cleared (see `clear_lookups`).
    """
    cur = store.cursor()
    out = {obj.name: 0}
    with store.write_lock:
        for child, kids in _cascade_children(store, obj, rows, "true", 'c."Id", p."ts"'):
            if kids.num_rows:
                for k, v in hard_delete(store, child, kids).items():
                    out[k] = out.get(k, 0) + v
        cur.register("_hard", rows.select(["Id", "ts"]))
        try:
            store.log_deletions(obj, f'(SELECT h.* FROM _hard h JOIN {store.table(obj)} t ON t."Id" = h."Id" '
                                     f"AND t.{quote(DELETED_AT)} IS NULL)")
            clear_lookups(store, obj, 'SELECT "Id" FROM _hard', [])
            out[obj.name] = cur.execute(
                f'DELETE FROM {store.table(obj)} WHERE "Id" IN (SELECT "Id" FROM _hard)'
            ).fetchone()[0]
        finally:
            cur.unregister("_hard")
        if out[obj.name]:
            store.mark_physical_delete(obj, store.clock.now())
    return out


def clear_lookups(store: Store, parent: SObject, ids_sql: str, params: list) -> None:
    """Null the lookups of other records that point at records of `parent` about to be removed for good.

    Salesforce clears a lookup whose target is purged (master-detail children go with their master;
    restricted lookups block the delete before it gets here). The documentation does not say that
    the referencing record's audit fields move, and a backup must not rely on it: LastModifiedDate
    and SystemModstamp stay as they were, so only a comparison of values finds the change.
    """
    cur = store.cursor()
    for rel in store.schema.children(parent.name):
        if rel.cascade_delete or not rel.field.nillable or not rel.field.stored:
            continue
        cur.execute(f"UPDATE {store.table(rel.child)} SET {store.column(rel.field)} = NULL "
                    f"WHERE {store.column(rel.field)} IN ({ids_sql})", params)


def purge(store: Store, now: datetime, cutoff: datetime | None = None) -> int:
    """Empty the recycle bin of records deleted before `cutoff` (default: over 15 days before `now`),
    clearing lookups that pointed at them. Returns the number of records removed."""
    horizon = now.replace(tzinfo=None) - timedelta(days=RECYCLE_BIN_DAYS)
    cutoff = horizon if cutoff is None else cutoff.replace(tzinfo=None)
    with store.write_lock:
        for parent in store.schema:
            if parent.key_prefix:
                clear_lookups(store, parent, f'SELECT "Id" FROM {store.table(parent)} '
                                             f"WHERE {quote(DELETED_AT)} < ?", [cutoff])
        return store.purge_recycle_bin(now, cutoff=cutoff)
