"""GDPR forget and rectify: every version, every file body, every export the ledger lists.

Order, and why: (1) everything is checked before anything changes (object, Id, field, value), so
bad input leaves the store as it was; (2) the store is rewritten into a fresh DuckDB file without
the record (or with the new value) and swapped in atomically, with the request and the forgotten
subjects' keyed hashes written into that same file (store.rewrite): killed at any moment, the store
is wholly before or wholly after; (3) file bodies no remaining version names are deleted, and so
are the run folders killed backups left (raw staged rows); (4) the exports and change files are
rewritten (gdpr.copies); (5) the request's outcome is recorded. Steps 3-5 only touch copies of what
step 2 already erased, so running the request again after a crash between them is never needed for
the store, and the ledger shows the request as 'erased' rather than 'completed' until they are done.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from replicator.config import Config
from replicator.errors import InvalidInput
from replicator.gdpr.copies import Copies, rewrite_copies
from replicator.gdpr.subjects import blob_fields, find_record, object_name, subjects
from replicator.progress import Progress, Silent
from replicator.result import JobResult, jsonable
from replicator.store.database import now
from replicator.store.forgotten import Forgotten
from replicator.store.gdpr_requests import GdprRequest, GdprRequests, requester
from replicator.store.repository import Repository
from replicator.store.rewrite import Erasure, Rectification, rewrite_without
from replicator.store.schema import quote
from replicator.store.snapshot import SnapshotStore

__all__ = ["BadRectify", "ErasureResult", "ForgetRequest", "RectifyRequest", "run_forget", "run_rectify"]

PAUSE_ENV = "REPLICATOR_TEST_PAUSE_AT"
PENDING = "gdpr.pending.json"
# Parts of a person's name that Salesforce's compound Name field repeats (Contact, Lead).
NAME_PARTS = {"Salutation", "FirstName", "MiddleName", "LastName", "Suffix"}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class BadRectify(InvalidInput, ValueError):
    """A rectification naming a field that does not exist or cannot change, or a value of the wrong type."""


@dataclass(frozen=True)
class ForgetRequest:
    """Forget one record (and its files; with `with_related`, every record whose lookup names it)."""

    object: str
    record_id: str
    with_related: bool = False
    comment: str | None = None


@dataclass(frozen=True)
class RectifyRequest:
    """Set one field of one record to `value` in every version ('' empties it)."""

    object: str
    record_id: str
    field: str
    value: str
    comment: str | None = None


@dataclass
class ErasureResult(JobResult):
    """What a forget or rectify did: versions and records touched, bodies and copies handled."""

    request_id: int
    kind: str
    object: str
    record_ref: str
    status: str
    versions: int
    records: dict[str, int]
    blobs_removed: int = 0
    copies: Copies = field(default_factory=Copies)

    @property
    def exit_code(self) -> int:
        """2 when some copies are outside our reach (the statements to run are listed)."""
        return 2 if self.copies.outside else 0

    def to_json(self) -> dict[str, Any]:
        """The result's fields (the copies' lists included)."""
        return jsonable(self)

    def text(self) -> str:
        """One line, plus one line per copy out of reach with the statement to run there."""
        done = "forgot" if self.kind == "forget" else "rectified"
        lines = [f"request {self.request_id}: {done} {self.object} {self.record_ref}: "
                 f"{self.versions} versions of {sum(self.records.values())} records, "
                 f"{self.blobs_removed} file bodies removed, "
                 f"{len(self.copies.rewritten)} export files rewritten, {len(self.copies.removed)} removed"]
        lines += [f"outside our reach: export {o['export_id']} ({o['destination']}): run {o['statement']}"
                  for o in self.copies.outside]
        return "\n".join(lines)


def _pause(phase: str) -> None:
    """Test-only: with REPLICATOR_TEST_PAUSE_AT naming `phase`, say so on stderr and sleep (kill tests)."""
    if phase in os.environ.get(PAUSE_ENV, "").split(","):
        os.write(2, f"REPLICATOR_PAUSED_AT {phase}\n".encode())
        time.sleep(60)


def _body_shas(store: SnapshotStore, targets: Mapping[str, list[str]], bodies: Mapping[str, str]) -> set[str]:
    """The file bodies any version of the targets names."""
    shas: set[str] = set()
    for obj, ids in targets.items():
        if obj in bodies:
            shas.update(r[0] for r in store.db.execute(
                f'SELECT DISTINCT {quote(bodies[obj])} FROM hist.{quote(obj)} WHERE list_contains(?, "Id") '
                f"AND {quote(bodies[obj])} IS NOT NULL", [ids]).fetchall())
    return shas


def _unreferenced(store: SnapshotStore, shas: set[str], bodies: Mapping[str, str]) -> set[str]:
    """Of `shas`, those no remaining version of any file object names (content addressing shares bodies)."""
    left = set(shas)
    for obj, column in bodies.items():
        if left:
            col = quote(column)
            left -= {r[0] for r in store.db.execute(
                f"SELECT DISTINCT {col} FROM hist.{quote(obj)} WHERE list_contains(?, {col})",
                [sorted(left)]).fetchall()}
    return left


@dataclass
class _Pending:
    """What is left to do once the store is rewritten (bodies, run folders, copies), kept in
    <storage>/gdpr.pending.json from before the swap until done, so a request killed after the swap
    is completed by the next GDPR command (the erased Ids are nowhere else to be found)."""

    request_id: int
    erasure: Erasure
    shas: list[str]

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"request_id": self.request_id, "erasure": asdict(self.erasure),
                                   "shas": self.shas}), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> _Pending:
        data = json.loads(path.read_text(encoding="utf-8"))
        fixes = [Rectification(**{**r, "derived": tuple(r["derived"])}) for r in data["erasure"]["rectify"]]
        return cls(data["request_id"], Erasure(data["erasure"]["drop"], fixes), data["shas"])


def _pending_file(repository: Repository) -> Path:
    return repository.layout.root / PENDING


def _complete(repository: Repository, store: SnapshotStore, pending: _Pending) -> tuple[Copies, int]:
    """Steps 3-5 of a request whose store rewrite is done; returns the copies handled and bodies removed."""
    # run folders of killed backups hold raw staged rows; no run executes while we hold the lock
    leftovers = len(repository.leftover_run_folders())
    repository.remove_run_folders()
    listing = repository.blob_listing()
    gone = [sha for sha in _unreferenced(store, set(pending.shas), blob_fields(store)) if listing.delete(sha)]
    copies = rewrite_copies(store, pending.erasure, listing)
    GdprRequests(store.db).finish(pending.request_id, "incomplete" if copies.outside else "completed", {
        "blobs_removed": len(gone), "files_rewritten": len(copies.rewritten),
        "files_removed": len(copies.removed), "run_folders_removed": leftovers,
        "outside_reach": [{k: o[k] for k in ("export_id", "destination", "object")} for o in copies.outside],
        "exports_gone": copies.gone})
    _pending_file(repository).unlink()
    return copies, len(gone)


def resume(config: Config) -> None:
    """Finish a request killed after its store rewrite, or drop the plan of one killed before it."""
    repository = Repository.for_storage(config.storage)
    path = _pending_file(repository)
    path.with_name(path.name + ".tmp").unlink(missing_ok=True)  # a plan killed while being written
    if not path.exists():
        return
    with repository.open_write("gdpr resume") as store:
        pending = _Pending.load(_pending_file(repository))
        entry = GdprRequests(store.db).get(pending.request_id)
        if entry is None or entry["status"] != "erased":
            _pending_file(repository).unlink()  # killed before the swap: the store is as it was
            return
        _complete(repository, store, pending)


def _erase(config: Config, store: SnapshotStore, request: GdprRequest, erasure: Erasure,
           remember: Forgotten | None) -> tuple[int, Mapping[str, int], Copies, int]:
    """Rewrite the store, then bodies and copies; returns request id, versions dropped, copies, bodies."""
    repository = Repository.for_storage(config.storage)
    requests = GdprRequests(store.db)
    request_id = requests.next_id()
    pending = _Pending(request_id, erasure, sorted(_body_shas(store, erasure.drop, blob_fields(store))))
    versions = sum(store.db.execute(f'SELECT count(*) FROM hist.{quote(f.object)} WHERE "Id" = ?',
                                    [f.record_id]).fetchone()[0] for f in erasure.rectify)
    dropped: dict[str, int] = {}

    def finish(con: duckdb.DuckDBPyConnection, database: str, counts: Mapping[str, int]) -> None:
        dropped.update(counts)
        if remember is not None:
            for obj, ids in erasure.drop.items():
                remember.remember(con, database, obj, ids, request_id, request.requested_at)
        GdprRequests.write(con, database, request_id, request, versions + sum(counts.values()),
                           len(erasure.dropped_ids()) or 1)

    pending.save(_pending_file(repository))
    rewrite_without(store.db, erasure, finish, _pause)
    _pause("swapped")
    copies, gone = _complete(repository, store, pending)
    return request_id, dropped, copies, gone


def _record(store: SnapshotStore, obj: str, record_id: str) -> tuple[str, str]:
    """The stored spelling of the object and Id (bad input raises before anything is opened for writing)."""
    name = object_name(store, obj)
    return name, find_record(store, name, record_id)


def _checked(config: Config, check: Callable[[SnapshotStore], object]) -> None:
    """Run the input checks on the store opened read-only first: opening for writing alone touches
    the file (ledger upkeep, a checkpoint), and bad input must leave every byte as it was."""
    with Repository.for_storage(config.storage).open_read() as store:
        check(store)


def run_forget(config: Config, request: ForgetRequest, progress: Progress = Silent()) -> ErasureResult:
    """Forget a record everywhere the store reaches, and remember it only as a keyed hash."""
    progress.phase("gdpr forget")
    resume(config)
    _checked(config, lambda store: _record(store, request.object, request.record_id))
    with Repository.for_storage(config.storage).open_write("gdpr forget") as store:
        obj, rid = _record(store, request.object, request.record_id)
        targets = subjects(store, obj, rid, request.with_related)
        forgotten = Forgotten.of(store.db, Repository.for_storage(config.storage).blob_key)
        ref = "subject:" + forgotten.subject(rid)[:16]
        entry = GdprRequest("forget", obj, ref, None, request.comment, requester(), now())
        request_id, dropped, copies, gone = _erase(config, store, entry, Erasure(drop=targets), forgotten)
        return ErasureResult(request_id, "forget", obj, ref, "incomplete" if copies.outside else "completed",
                             sum(dropped.values()), {o: len(ids) for o, ids in targets.items()}, gone, copies)


def _field(store: SnapshotStore, obj: str, name: str) -> str:
    """The stored spelling of a field that a rectification may change."""
    fields = {f.lower(): f for f in store.reads.fields(obj)}
    found = fields.get(name.lower())
    if found is None:
        raise BadRectify(f"{obj} has no field {name!r} in the store")
    if found == "Id" or blob_fields(store).get(obj) == found:
        raise BadRectify(f"{obj}.{found} cannot be rectified (it is the record's Id or its file body)")
    return found


def _typed(store: SnapshotStore, obj: str, name: str, value: str) -> tuple[str | None, str]:
    """The value checked against the field's column type and describe (type, length); '' is empty."""
    sql_type = store.reads.column_types(obj)[name]
    if value == "":
        return None, sql_type
    described = store.reads.field_types(obj).get(name, {})
    what = described.get("type") or sql_type.lower()
    if store.db.execute(f"SELECT TRY_CAST(? AS {sql_type}) IS NULL", [value]).fetchone()[0]:
        raise BadRectify(f"{value!r} is not a valid {what} value for {obj}.{name}")
    if what == "email" and not _EMAIL.fullmatch(value):
        raise BadRectify(f"{value!r} is not an email address ({obj}.{name})")
    length = described.get("length") or 0
    if sql_type == "VARCHAR" and length and len(value) > length:
        raise BadRectify(f"{obj}.{name} holds at most {length} characters, the value has {len(value)}")
    return value, sql_type


def run_rectify(config: Config, request: RectifyRequest, progress: Progress = Silent()) -> ErasureResult:
    """Set one field of one record in every version (and in exports); nothing else changes."""
    progress.phase("gdpr rectify")

    def check(store: SnapshotStore) -> tuple[str, str, str, str | None, str]:
        obj, rid = _record(store, request.object, request.record_id)
        name = _field(store, obj, request.field)
        return obj, rid, name, *_typed(store, obj, name, request.value)

    resume(config)
    _checked(config, check)
    with Repository.for_storage(config.storage).open_write("gdpr rectify") as store:
        obj, rid, name, value, sql_type = check(store)
        entry = GdprRequest("rectify", obj, rid, name, request.comment, requester(), now())
        derived = ("Name",) if name in NAME_PARTS and "Name" in store.reads.fields(obj) else ()
        erasure = Erasure(rectify=[Rectification(obj, rid, name, value, sql_type, derived)])
        request_id, _, copies, _ = _erase(config, store, entry, erasure, None)
        versions = store.db.execute(f'SELECT count(*) FROM hist.{quote(obj)} WHERE "Id" = ?',
                                    [rid]).fetchone()[0]
        return ErasureResult(request_id, "rectify", obj, rid, "incomplete" if copies.outside else "completed",
                             versions, {obj: 1}, 0, copies)
