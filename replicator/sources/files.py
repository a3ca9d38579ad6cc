"""File bodies of a run's changed records -> the blob store, downloading only new or changed bodies.

Runs after the record extract and before the snapshot apply. For every file object in the plan
(catalog.BLOB_OBJECTS: ContentVersion.VersionData, Attachment.Body, Document.Body) it reads the
staging table's live rows, decides per record whether the body must be downloaded, streams it into
the BlobStore, and writes the sha256 into the staging table's blob column, so the version the store
writes says which bytes the record had.

Staging blob column convention (after fetch_files): the blob column ("VersionData" / "Body") of
every staging row holds the lowercase sha256 hex of the body in the blob store, or NULL when the
row is deleted, the record has no body (its size is exactly 0), or the download failed (listed in
FileStats.failed). Whatever the extract put there (REST gives the blob URL) is replaced. A NULL
size is "unknown", not "empty": the body is fetched (and any length accepted).

When a body is fetched ("new or changed only"; Salesforce API calls are the scarce resource):
* ContentVersion bodies are immutable per version Id: fetched only when the snapshot's current
  version of that Id has no sha yet.
* Attachment and Document bodies can be replaced in place, and a replacement of the same length
  changes neither BodyLength nor (Attachment has none) a Checksum: fetched when the record is new,
  has no sha yet, or its SystemModstamp, size or Checksum differ from the current version's. A
  moved SystemModstamp means the record changed, and its body may have.
* A reused sha whose blob is missing from the store (lost disk, erased by mistake) is fetched again.

Records with the same bytes share one blob (content addressing); duplicates are still downloaded
once per record, since matching on the md5 Checksum alone would let a crafted collision swap files.

A body that cannot be had (HTTP error, size or md5 mismatch, API cap) is never silence: it lands in
FileStats.failed, and FileStats.problem() is the one-line reason the run gives that object's section.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from replicator.config import Secret
from replicator.salesforce.catalog import BLOB_OBJECTS, ObjectPlan
from replicator.salesforce.client import AuthenticationError, BudgetExceeded, OrgClient, OrgError
from replicator.sources.salesforce import connect_staging
from replicator.store.blobs import BlobStore
from replicator.store.schema import quote

log = logging.getLogger("replicator.files")

SIZE_FIELDS = ("ContentSize", "BodyLength")
CHECKSUM = "Checksum"
MODSTAMP = "SystemModstamp"  # moves whenever the record (and so possibly its body) changes
IMMUTABLE = frozenset({"ContentVersion"})  # a new body is a new version, with a new Id
BATCH = 2000

# (object, columns, ids) -> the snapshot store's current, non-deleted versions of those ids:
# column "Id" plus whichever of `columns` the store has. An object the store has never seen -> no rows.
Previous = Callable[[str, list[str], pa.Array], pa.Table]


@dataclass
class FileFailure:
    id: str
    message: str


@dataclass
class FileStats:
    """What the files step did for one object."""

    object: str
    field: str
    records: int = 0  # live staging rows (distinct Ids)
    fetched: int = 0  # bodies downloaded
    new_blobs: int = 0  # downloads that created a blob (the rest matched a stored one)
    bytes_fetched: int = 0
    unchanged: int = 0  # sha carried over from the current version, no download
    no_body: int = 0
    api_calls: int = 0
    failed: list[FileFailure] = field(default_factory=list)
    stopped: str | None = None  # set when the API cap stopped downloads: the rest are in `failed`

    def problem(self) -> str | None:
        """One line for the object's section when bodies are missing (None when none are): how many,
        and the first record with its reason, so a user can look it up in the org."""
        if not self.failed:
            return None
        first = self.failed[0]
        return (f"{len(self.failed)} of {self.records} file bodies could not be fetched "
                f"(first: {first.id}: {first.message})")


def fetch_files(client: OrgClient, blobs: BlobStore, staging: Path, plans: list[ObjectPlan],
                previous: Previous | None = None, key: Secret | None = None) -> dict[str, FileStats]:
    """Download new or changed file bodies of the staged records; returns stats per object.

    A file that fails is recorded in its object's FileStats.failed (the caller decides what that
    does to the object, see FileStats.problem); the other files of the object are still fetched.
    Retries of transient faults happen inside OrgClient.request. AuthenticationError propagates
    (the job is disabled); reaching the API cap stops downloads, keeps carried-over shas, and marks
    the remaining downloads failed. `key`: the staging file's (the store's) encryption key.
    """
    out: dict[str, FileStats] = {}
    stopped: str | None = None
    con = connect_staging(staging, key)
    try:
        for plan in plans:
            body = BLOB_OBJECTS.get(plan.name)
            schema = _staging_schema(con, plan.name) if plan.included and body else None
            if schema is None or body is None:
                continue
            stats = FileStats(plan.name, body, stopped=stopped)
            _Fetcher(client, blobs, con, schema, stats, previous).run()
            stopped = stats.stopped
            out[plan.name] = stats
    finally:
        con.close()
    return out


def _staging_schema(con: duckdb.DuckDBPyConnection, obj: str) -> str | None:
    """The schema holding an object's staging table (dlt uses its dataset schema), or None."""
    rows = con.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = ? "
        "AND table_schema NOT LIKE '%\\_staging' ESCAPE '\\' ORDER BY table_schema <> 'main', table_schema",
        [obj]).fetchall()
    return rows[0][0] if rows else None


class _Fetcher:
    """One object's pass: decide per record, download, write shas back to staging."""

    def __init__(self, client: OrgClient, blobs: BlobStore, con: duckdb.DuckDBPyConnection, schema: str,
                 stats: FileStats, previous: Previous | None) -> None:
        self.client, self.blobs, self.con = client, blobs, con
        self.stats, self.previous = stats, previous
        self.table = f"{quote(schema)}.{quote(stats.object)}"
        columns = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [schema, stats.object]).fetchall()}
        self.size = next((f for f in SIZE_FIELDS if f in columns), None)
        self.checksum = CHECKSUM if CHECKSUM in columns else None
        self.modstamp = MODSTAMP if MODSTAMP in columns and stats.object not in IMMUTABLE else None
        self.deleted = "IsDeleted" in columns
        if stats.field not in columns:
            con.execute(f"ALTER TABLE {self.table} ADD COLUMN {quote(stats.field)} VARCHAR")

    def run(self) -> None:
        col = quote(self.stats.field)
        self.con.execute(f"UPDATE {self.table} SET {col} = NULL")
        live = "WHERE NOT coalesce(\"IsDeleted\", false)" if self.deleted else ""
        extra = [c for c in (self.size, self.checksum, self.modstamp) if c]
        select = ", ".join(['"Id"', *(f"any_value({quote(c)}) AS {quote(c)}" for c in extra)])
        rows = self.con.execute(
            f'SELECT {select} FROM {self.table} {live} GROUP BY "Id" ORDER BY "Id"').to_arrow_table()
        self.stats.records = rows.num_rows
        calls_before = self.client.ledger.calls
        try:
            for start in range(0, rows.num_rows, BATCH):
                self.batch(rows.slice(start, BATCH))
        finally:
            self.stats.api_calls = self.client.ledger.calls - calls_before

    def batch(self, rows: pa.Table) -> None:
        """Decide in DuckDB against the current versions, then fetch what needs fetching."""
        body = self.stats.field
        prev = self._previous(rows.column("Id"))
        prev = prev.rename_columns(["_sha" if c == body else c for c in prev.column_names])
        with _registered(self.con, "_files_rows", rows), _registered(self.con, "_files_prev", prev):
            decisions = self.con.execute(self._decide_sql(prev.column_names)).fetchall()
        shas: list[tuple[str, str]] = []
        for rid, expect_size, expect_md5, carried, empty in decisions:
            if empty:
                self.stats.no_body += 1
            elif carried is not None and self.blobs.has(carried):
                self.stats.unchanged += 1
                shas.append((rid, carried))
            elif self.stats.stopped:
                self.stats.failed.append(FileFailure(rid, self.stats.stopped))
            elif sha := self.fetch(rid, expect_size, expect_md5):
                shas.append((rid, sha))
        if shas:
            update = pa.table({"Id": [r for r, _ in shas], "sha": [s for _, s in shas]})
            with _registered(self.con, "_files_shas", update):
                self.con.execute(f'UPDATE {self.table} AS t SET {quote(body)} = u.sha FROM _files_shas u '
                                 f'WHERE t."Id" = u."Id"')

    def _decide_sql(self, prev_columns: list[str]) -> str:
        """Per live row: Id, expected size and md5, the sha to carry over (NULL: fetch), has-no-body."""
        size, checksum = self.size, self.checksum
        same = ["p._sha IS NOT NULL"]
        if self.stats.object not in IMMUTABLE:
            compared = [c for c in (size, checksum, self.modstamp) if c and c in prev_columns]
            same += [f"p.{quote(c)} IS NOT DISTINCT FROM s.{quote(c)}" for c in compared]
        no_body = f"coalesce(s.{quote(size)} = 0, false)" if size else "false"
        size_sql = f"s.{quote(size)}" if size else "NULL"
        checksum_sql = f"s.{quote(checksum)}" if checksum else "NULL"
        return (f'SELECT s."Id", {size_sql}, {checksum_sql}, '
                f"CASE WHEN {' AND '.join(same)} THEN p._sha END, {no_body} "
                f'FROM _files_rows s LEFT JOIN _files_prev p USING ("Id") ORDER BY s."Id"')

    def _previous(self, ids: pa.ChunkedArray) -> pa.Table:
        wanted = [c for c in (self.stats.field, self.size, self.checksum, self.modstamp) if c]
        table = self.previous(self.stats.object, wanted, ids.combine_chunks()) if self.previous else None
        if table is None or self.stats.field not in table.column_names:
            return pa.table({"Id": pa.array([], pa.string()), self.stats.field: pa.array([], pa.string())})
        return table.select(["Id", *[c for c in wanted if c in table.column_names]])

    def fetch(self, rid: str, expect_size: int | None, expect_md5: str | None) -> str | None:
        """Download one body into the blob store; None (and a failure entry) when it cannot be had."""
        obj, body = self.stats.object, self.stats.field
        try:
            resp = self.client.request("GET", f"sobjects/{obj}/{rid}/{body}")
        except AuthenticationError:
            raise
        except BudgetExceeded as exc:
            self.stats.stopped = f"API cap reached: {exc}"
            self.stats.failed.append(FileFailure(rid, self.stats.stopped))
            return None
        except OrgError as exc:
            self.stats.failed.append(FileFailure(rid, f"download failed: {exc} ({exc.code or exc.status})"))
            return None
        data = resp.content
        problem = None
        if expect_size is not None and len(data) != expect_size:
            problem = f"got {len(data)} bytes, the record says {expect_size}"
        elif expect_md5 and hashlib.md5(data).hexdigest() != expect_md5.lower():
            problem = "md5 of the downloaded bytes does not match the record's Checksum"
        if problem:
            self.stats.failed.append(FileFailure(rid, problem))
            return None
        stored = self.blobs.write(data)
        self.stats.fetched += 1
        self.stats.new_blobs += stored.new
        self.stats.bytes_fetched += stored.size
        return stored.blob_id  # its keyed name, not the sha256 (store.blobs): the store reveals no content


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """An Arrow table visible to SQL under `name` for the duration of a block."""
    con.register(name, table)
    try:
        yield
    finally:
        con.unregister(name)
