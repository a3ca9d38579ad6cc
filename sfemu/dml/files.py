"""What Salesforce computes when a file body is saved: sizes, checksums, versions and documents.

Clients send only the body (Attachment.Body, Document.Body, ContentVersion.VersionData) and a name;
the size and checksum fields are read-only and set by the platform, which is what backups compare to
decide whether a body must be fetched again. The rules followed (Object Reference):
- Attachment/Document `BodyLength`: "Size of the file (in bytes)"; neither object has a checksum.
- ContentVersion `ContentSize` ("size of the document in bytes"), `Checksum` ("MD5 checksum for the
  file"), `FileExtension`/`FileType` from `PathOnClient`; `VersionNumber` counts the versions of a
  document from "1" and `IsLatest` marks the newest one.
- A ContentVersion inserted without ContentDocumentId creates its ContentDocument, whose
  `LatestPublishedVersionId` points back at it; one inserted with a ContentDocumentId is a new version
  of that document: it becomes the latest, and the document follows it (size, type, title).

Everything runs set-wise on the save's staged temp table, inside the save's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from sfemu.dml import sql as q
from sfemu.store import Store, quote

if TYPE_CHECKING:
    import duckdb

    from sfemu.schema import SObject


class Save(Protocol):
    """What these rules read of a save (sfemu.dml.save.Save), named here so neither imports the other."""

    obj: SObject
    op: str
    cur: duckdb.DuckDBPyConnection
    store: Store
    staged: str
    stamp: datetime
    user_id: str

BODY_FIELDS = ("Body", "VersionData")
SIZE_FIELDS = ("BodyLength", "ContentSize")
DOCUMENT = "ContentDocument"
VERSION = "ContentVersion"
# Copied from the latest version onto its ContentDocument.
DOCUMENT_COPIES = ("Title", "ContentSize", "FileType", "FileExtension", "ContentModifiedDate")


def _field_name(save: Save, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if save.obj.field(n) is not None and save.obj.field(n).stored), None)


def stage(save: Save) -> None:
    """Fill the computed file fields of the staged records (before validation: a ContentVersion's
    Title comes from PathOnClient when none is given)."""
    body, size = _field_name(save, BODY_FIELDS), _field_name(save, SIZE_FIELDS)
    if body is None:
        return
    sets = []
    if size is not None:
        sets.append(f"{quote(size)} = octet_length({quote(body)})")
    if save.obj.field("Checksum") is not None:
        sets.append(f'"Checksum" = md5({quote(body)})')
    if sets:
        save.cur.execute(f"UPDATE {save.staged} SET {', '.join(sets)}")
    if save.obj.name == VERSION and save.op == "insert":
        _name_versions(save)


def _name_versions(save: Save) -> None:
    """Title, extension, type and content date of inserted ContentVersions, from PathOnClient."""
    cur, staged = save.cur, save.staged
    ext = "lower(nullif(regexp_extract(\"PathOnClient\", '\\.([^./\\\\]+)$', 1), ''))"
    cur.execute(
        f'UPDATE {staged} SET "FileExtension" = coalesce("FileExtension", {ext}), '
        f'"ContentModifiedDate" = coalesce("ContentModifiedDate", CAST(? AS TIMESTAMP)), '
        f"\"Title\" = coalesce(\"Title\", regexp_replace(\"PathOnClient\", '\\.[^./\\\\]*$', ''))",
        [save.stamp],
    )
    # the data generator's rule (FileType = the extension in capitals), so generated and API files agree
    cur.execute(f'UPDATE {staged} SET "FileType" = coalesce("FileType", upper("FileExtension"))')


def number_versions(save: Save) -> None:
    """Version numbers, IsLatest and (new) document ids of inserted ContentVersions (after validation,
    which would refuse the ids of documents not written yet)."""
    if save.obj.name != VERSION or save.op != "insert":
        return
    cur, store, staged = save.cur, save.store, save.staged
    fresh = [r[0] for r in cur.execute(
        f'SELECT _row FROM {staged} WHERE "ContentDocumentId" IS NULL ORDER BY _row').fetchall()]
    if fresh:
        ids = store.new_ids(store.schema.get(DOCUMENT), len(fresh))
        cur.register("_new_docs", pa.table({"_row": pa.array(fresh, pa.int64()), "doc": pa.array(ids)}))
        try:
            cur.execute(f'UPDATE {staged} AS s SET "ContentDocumentId" = n.doc FROM _new_docs n '
                        f"WHERE s._row = n._row")
        finally:
            cur.unregister("_new_docs")
    table = store.table(save.obj)
    cur.execute(
        f'UPDATE {staged} AS s SET "VersionNumber" = CAST(v.n AS VARCHAR), "IsLatest" = v.latest FROM ('
        f'SELECT x._row, coalesce((SELECT max(TRY_CAST(t."VersionNumber" AS INTEGER)) FROM {table} t '
        f'WHERE t."ContentDocumentId" = x."ContentDocumentId"), 0) '
        f'+ row_number() OVER (PARTITION BY x."ContentDocumentId" ORDER BY x._row) AS n, '
        f'row_number() OVER (PARTITION BY x."ContentDocumentId" ORDER BY x._row DESC) = 1 AS latest '
        f"FROM {staged} x) v WHERE s._row = v._row"
    )


def write(save: Save) -> None:
    """Create the new ContentDocuments, retire the versions the new ones replace, and let each
    document follow its latest version (after the versions are written)."""
    if save.obj.name != VERSION:
        return
    cur, store, staged = save.cur, save.store, save.staged
    doc = store.schema.get(DOCUMENT)
    docs = store.table(doc)
    stamp = [save.stamp]
    if save.op == "insert":
        values = {
            "Id": 's."ContentDocumentId"', "IsDeleted": "false", "IsArchived": "false",
            "PublishStatus": "'P'", "OwnerId": 's."OwnerId"',
            "CreatedById": 's."CreatedById"', "LastModifiedById": 's."CreatedById"',
            "CreatedDate": 's."CreatedDate"', "LastModifiedDate": 's."CreatedDate"',
            "SystemModstamp": 's."CreatedDate"', "LatestPublishedVersionId": 's."Id"',
        }
        values.update({c: f"s.{quote(c)}" for c in DOCUMENT_COPIES})
        cols = [f for f in doc.stored_fields if f.name in values]
        cur.execute(
            f"INSERT INTO {docs} ({', '.join(quote(f.name) for f in cols)}) "
            f"SELECT {', '.join(values[f.name] for f in cols)} FROM {staged} s "
            f'WHERE s."IsLatest" AND s."VersionNumber" = \'1\' '
            f'AND s."ContentDocumentId" NOT IN (SELECT "Id" FROM {docs})'
        )
        # Older versions stop being the latest: a change to the record, so its SystemModstamp moves.
        cur.execute(
            f'UPDATE {store.table(save.obj)} SET "IsLatest" = false, "SystemModstamp" = CAST(? AS TIMESTAMP) '
            f'WHERE "IsLatest" AND "ContentDocumentId" IN (SELECT "ContentDocumentId" FROM {staged}) '
            f'AND "Id" NOT IN (SELECT "Id" FROM {staged} WHERE "IsLatest")',
            stamp,
        )
    copies = ("LatestPublishedVersionId", *DOCUMENT_COPIES)
    source = {"LatestPublishedVersionId": 's."Id"', **{c: f"s.{quote(c)}" for c in DOCUMENT_COPIES}}
    sets = [f"{quote(c)} = {source[c]}" for c in copies]
    sets += [f'{quote(c)} = CAST(? AS TIMESTAMP)' for c in ("LastModifiedDate", "SystemModstamp")]
    changed = " OR ".join(f"d.{quote(c)} IS DISTINCT FROM {source[c]}" for c in copies)
    cur.execute(
        f"UPDATE {docs} AS d SET {', '.join(sets)}, \"LastModifiedById\" = {q.lit(save.user_id)} "
        f'FROM {staged} s WHERE s."IsLatest" AND d."Id" = s."ContentDocumentId" AND ({changed})',
        stamp * 2,
    )
