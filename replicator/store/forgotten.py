"""Forgotten subjects, remembered only as keyed hashes, and the one rule that keeps them out.

Why keyed hashes: after a GDPR forget the store must still recognise the record when a later backup,
restore or seed meets it again, yet must not keep anything that names the person. An HMAC-SHA256 of
the record Id under a key derived from the store's master key (the blob key: environment variable,
key file or <storage>/blob.key, see Repository.blob_key) does both: the same Id always gives the
same hash, and without the key nobody can test a list of Ids against the table.

The hash is computed in DuckDB too (HMAC = sha256(opad || sha256(ipad || Id))), so a run's staging
file is purged with one set-based DELETE per table, never a loop over records. Restore, replicate
and seed call `drop(sobject, batch)` on the Arrow batches they are about to write.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import duckdb
import pyarrow as pa

from replicator.store import encryption
from replicator.store.database import Database
from replicator.store.schema import quote

__all__ = ["Forgotten", "forgotten_counts", "lift", "subject_key"]

TABLE = "gdpr_forgotten"
FORGOTTEN_DDL = (f"CREATE TABLE IF NOT EXISTS {{db}}.main.{TABLE} (object VARCHAR NOT NULL, "
                 "subject VARCHAR NOT NULL, request_id INTEGER, forgotten_at TIMESTAMPTZ NOT NULL)")
_INFO = b"replicator gdpr subject v1"
_BLOCK = 64


def subject_key(master: bytes) -> bytes:
    """The HMAC key of forgotten subjects, derived from the store's master key (never stored)."""
    return hmac.new(master, _INFO, hashlib.sha256).digest()


def forgotten_counts(db: Database) -> dict[str, int]:
    """Forgotten records per object (a backup's integrity check allows the org that many more)."""
    if not db.has_table(TABLE):
        return {}
    return dict(db.execute(f"SELECT object, count(*) FROM main.{TABLE} GROUP BY object").fetchall())


def lift(db: Database, request_id: int) -> int:
    """Forget no longer the subjects of a forget request (inside the caller's transaction): later
    backups may bring them back. Returns how many subjects were lifted (no key needed)."""
    if not db.has_table(TABLE):
        return 0
    return db.execute(f"DELETE FROM main.{TABLE} WHERE request_id = ?", [request_id]).fetchone()[0]


class Forgotten:
    """The forgotten subjects of one open store, with the key that hashes record Ids.

    The key is read on first use only, so a store that never forgot anyone never needs (or creates)
    the key file when a backup asks.
    """

    def __init__(self, db: Database, key: bytes | Callable[[], bytes]) -> None:
        self.db = db
        self._key_source = key
        self._hashes: set[str] | None = None

    @classmethod
    def of(cls, db: Database, master: Callable[[], bytes]) -> Forgotten:
        """The forgotten subjects of a store, keyed from its master key (e.g. Repository.blob_key),
        which is read only when a hash is first needed."""
        return cls(db, lambda: subject_key(master()))

    def __repr__(self) -> str:  # never show the key
        return f"Forgotten({self.db.path})"

    @cached_property
    def _key(self) -> bytes:
        source = self._key_source
        return source() if callable(source) else source

    def subject(self, record_id: str) -> str:
        """The keyed hash that stands for a record Id (hex)."""
        return hmac.new(self._key, record_id.encode(), hashlib.sha256).hexdigest()

    def sql(self, id_sql: str) -> tuple[str, list[bytes]]:
        """SQL computing `subject` of the Id expression `id_sql`, and the parameters it binds."""
        padded = self._key.ljust(_BLOCK, b"\0")
        inner, outer = bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded)
        return f"sha256(?::BLOB || unhex(sha256(?::BLOB || encode({id_sql}))))", [outer, inner]

    def hashes(self) -> set[str]:
        """Every forgotten subject (read once per instance: a handful per store, not per record)."""
        if self._hashes is None:
            self._hashes = set() if not self.db.has_table(TABLE) else {
                r[0] for r in self.db.execute(f"SELECT subject FROM main.{TABLE}").fetchall()}
        return self._hashes

    def is_forgotten(self, record_id: str) -> bool:
        """True when the record was forgotten (and the request not lifted)."""
        return self.subject(record_id) in self.hashes()

    def drop(self, sobject: str, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch without the rows of forgotten records: what restore, replicate and seed write.

        `sobject` is only for the caller's symmetry with the loaders (Ids are unique across objects).
        """
        known = self.hashes()
        if not known or batch.num_rows == 0 or "Id" not in batch.schema.names:
            return batch
        ids = batch.column(batch.schema.get_field_index("Id")).to_pylist()
        keep = [rid is None or self.subject(rid) not in known for rid in ids]
        return batch if all(keep) else batch.filter(pa.array(keep))

    def purge_staging(self, staging: Path) -> dict[str, int]:
        """Delete forgotten records from every table of a run's staging file; rows removed per table.

        Called before a backup fetches file bodies and applies, so the next backup never brings a
        forgotten record (or its file) back into history.
        """
        if not self.hashes() or not staging.exists():
            return {}
        removed: dict[str, int] = {}
        with encryption.connect(staging, self.db.key, read_only=False) as con:  # the store's key
            con.register("_forgotten", pa.table({"subject": pa.array(sorted(self.hashes()))}))
            tables = con.execute(
                "SELECT schema_name, table_name FROM duckdb_columns() WHERE column_name = 'Id' "
                "AND database_name = current_database() AND NOT starts_with(table_name, '_dlt')").fetchall()
            for schema, table in tables:
                hashed, params = self.sql('"Id"')
                n = con.execute(f"DELETE FROM {quote(schema)}.{quote(table)} "
                                f"WHERE {hashed} IN (SELECT subject FROM _forgotten)", params).fetchone()[0]
                if n:
                    removed[table] = removed.get(table, 0) + n
        return removed

    def remember(self, con: duckdb.DuckDBPyConnection, database: str, obj: str, ids: list[str],
                 request_id: int, at: object) -> None:
        """Record the subjects of `ids` in `database` (the rewritten store, before it replaces the old)."""
        con.execute(FORGOTTEN_DDL.format(db=quote(database)))
        con.executemany(f"INSERT INTO {quote(database)}.main.{TABLE} VALUES (?, ?, ?, ?)",
                        [(obj, self.subject(i), request_id, at) for i in ids])
        self._hashes = None

