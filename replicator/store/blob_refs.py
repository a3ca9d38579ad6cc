"""Body columns hold blob ids, not sha256s: the one-time rewrite of a store written before them.

Why: a body column holding the plain sha256 of a file lets anyone who can read an unencrypted
snapshot.duckdb (or an export made without the bodies) confirm that a file they know is backed up,
by hashing it. The blob store names each blob by a keyed hash of its sha256 (store.blobs), and that
keyed name, the blob id, is what body columns hold now. A store from before is rewritten once, by
the next backup (with the blob renames): every body value mapped to its id, into a fresh file (an
UPDATE would leave the sha256s in freed blocks: store.rewrite), with the marker row written into
that same file, so a run killed at any moment leaves the store wholly before or wholly after.
"""

from __future__ import annotations

import re

import pyarrow as pa

from replicator.store import integrity
from replicator.store.blobs import BlobStore
from replicator.store.rewrite import rewrite_mapped
from replicator.store.snapshot import SnapshotStore

__all__ = ["MARKER", "migrate_body_refs"]

MARKER = ("body_refs", "blob_id")  # main.store_info row: the body columns hold blob ids
SHA256 = re.compile(r"[0-9a-f]{64}")


def _migrated(store: SnapshotStore) -> bool:
    return bool(store.db.execute("SELECT count(*) FROM main.store_info WHERE key = ? AND value = ?",
                                 list(MARKER)).fetchone()[0])


def migrate_body_refs(store: SnapshotStore, blobs: BlobStore) -> int:
    """Rewrite the body columns of a store from before blob ids to hold ids; returns how many distinct
    bodies were renamed in the columns (0 once done, and for a store whose columns hold none)."""
    if _migrated(store):
        return 0
    columns = {obj: cols for obj in store.reads.objects() if (cols := integrity.body_columns(store, obj))}
    shas = sorted(sha for obj in columns for sha in integrity.body_shas(store, obj)
                  if SHA256.fullmatch(sha) and not blobs.is_id(sha))
    mapping = {sha: blobs.blob_id(sha) for sha in shas}
    mapping = {old: new for old, new in mapping.items() if old != new}  # a keyless store's ids are sha256s
    if not mapping:
        store.db.execute("INSERT INTO main.store_info VALUES (?, ?)", list(MARKER))
        return 0
    table = pa.table({"old": list(mapping), "new": list(mapping.values())})
    rewrite_mapped(store.db, columns, table,
                   lambda con, database: con.execute(f"INSERT INTO {database}.main.store_info VALUES (?, ?)",
                                                     list(MARKER)))
    return len(mapping)
