"""Who a GDPR request is about: the record named, its files, and (on request) records pointing at it.

Why files always go with the record: an Attachment or a ContentVersion attached to a person holds
that person's data as much as the record does, and its body sits in the blob store. A record's files
are the rows of the file objects (those with a body field) whose lookup names the record, plus the
ContentVersions of documents a ContentDocumentLink links to it. `with_related` adds every record
of any object whose lookup names the subject (Tasks, Cases, ...), and their files.
"""

from __future__ import annotations

import re

from replicator.errors import InvalidInput, NotFound
from replicator.store.exports_ledger import ExportsLedger
from replicator.store.schema import quote
from replicator.store.snapshot import SnapshotStore

__all__ = ["BadRecordId", "RecordNotFound", "blob_fields", "find_record", "object_name", "subjects"]

_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
REFERENCE, BODY = "reference", "base64"


class BadRecordId(InvalidInput, ValueError):
    """A record id that is not a Salesforce Id (15 or 18 letters and digits)."""


class RecordNotFound(NotFound):
    """The store holds no version of the record."""


def object_name(store: SnapshotStore, name: str) -> str:
    """The store's spelling of an object (case-insensitive), UnknownObjects when it has no history."""
    return ExportsLedger.resolve(store.reads.objects(), [name])[0]


def find_record(store: SnapshotStore, obj: str, record_id: str) -> str:
    """The stored 18-character Id of a record named by its 15- or 18-character Id."""
    if not _ID.fullmatch(record_id):
        raise BadRecordId(f"{record_id!r} is not a Salesforce record Id (15 or 18 letters and digits)")
    found = store.db.execute(
        f'SELECT DISTINCT "Id" FROM hist.{quote(obj)} WHERE "Id" = ? OR (length(?) = 15 AND "Id"[1:15] = ?)',
        [record_id, record_id, record_id]).fetchall()
    if not found:
        raise RecordNotFound(f"{obj} {record_id} is not in the store (no version of it was backed up, "
                             "or it was already forgotten)")
    return found[0][0]


def _fields_of_type(store: SnapshotStore, obj: str, ftype: str) -> list[str]:
    present = set(store.reads.fields(obj))
    return [f for f, info in store.reads.field_types(obj).items() if info["type"] == ftype and f in present]


def blob_fields(store: SnapshotStore) -> dict[str, str]:
    """Object -> its body field (the store keeps the body's blob id), for objects that have one."""
    found = {}
    for obj in store.reads.objects():
        bodies = _fields_of_type(store, obj, BODY)
        if bodies:
            found[obj] = bodies[0]
    return found


def _referencing(store: SnapshotStore, objects: list[str], ids: list[str]) -> dict[str, set[str]]:
    """Records of `objects` whose lookup (in any version) names one of `ids`."""
    found: dict[str, set[str]] = {}
    for obj in objects:
        refs = [f for f in _fields_of_type(store, obj, REFERENCE) if f != "Id"]
        if not refs:
            continue
        where = " OR ".join(f"list_contains($1, {quote(f)})" for f in refs)
        rows = store.db.execute(f'SELECT DISTINCT "Id" FROM hist.{quote(obj)} WHERE {where}',
                                [ids]).fetchall()
        if rows:
            found.setdefault(obj, set()).update(r[0] for r in rows)
    return found


def _linked_documents(store: SnapshotStore, ids: list[str]) -> dict[str, set[str]]:
    """ContentDocumentLinks to `ids`, and the documents (and their ContentVersions) linked to nothing
    else: a document shared with another record stays, only its link to the subject goes. Links to
    users (the owner's library, Ids starting 005) do not count as sharing."""
    objects = set(store.reads.objects())
    if not {"ContentDocumentLink", "ContentVersion"} <= objects:
        return {}
    links = store.db.execute(
        'SELECT DISTINCT "Id", "ContentDocumentId" FROM hist."ContentDocumentLink" '
        'WHERE list_contains(?, "LinkedEntityId")', [ids]).fetchall()
    if not links:
        return {}
    linked = sorted({d for _, d in links if d})
    shared = {r[0] for r in store.db.execute(
        'SELECT DISTINCT "ContentDocumentId" FROM hist."ContentDocumentLink" '
        'WHERE list_contains(?, "ContentDocumentId") AND NOT list_contains(?, "LinkedEntityId") '
        """AND NOT starts_with("LinkedEntityId", '005')""", [linked, ids]).fetchall()}
    documents = [d for d in linked if d not in shared]
    versions = store.db.execute('SELECT DISTINCT "Id" FROM hist."ContentVersion" '
                                'WHERE list_contains(?, "ContentDocumentId")', [documents]).fetchall()
    found = {"ContentDocumentLink": {i for i, _ in links}, "ContentVersion": {r[0] for r in versions}}
    if "ContentDocument" in objects:
        found["ContentDocument"] = set(documents)
    return found


def _merge(into: dict[str, set[str]], more: dict[str, set[str]]) -> None:
    for obj, ids in more.items():
        into.setdefault(obj, set()).update(ids)


def subjects(store: SnapshotStore, obj: str, record_id: str, with_related: bool) -> dict[str, list[str]]:
    """Object -> Ids a forget of `record_id` removes: the record, its files, and with `with_related`
    every record whose lookup names it (and their files)."""
    found: dict[str, set[str]] = {obj: {record_id}}
    if with_related:
        _merge(found, _referencing(store, store.reads.objects(), [record_id]))
    owners = sorted({i for ids in found.values() for i in ids})
    _merge(found, _referencing(store, list(blob_fields(store)), owners))
    _merge(found, _linked_documents(store, owners))
    return {o: sorted(ids) for o, ids in sorted(found.items())}
