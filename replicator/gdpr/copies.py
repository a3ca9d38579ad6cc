"""The copies that left the store: every export and change file the exports ledger lists.

Why rewrite rather than delete: an export is the user's file; a forget must take the subject out of
it and leave every other row as it was. CSV files (exports and change files) are rewritten record
by record from their own text: only the records that mention the subject's Id are parsed, every
other byte is copied unchanged, and the new file replaces the old by an atomic rename. SQL scripts
are written again from the store (same run, same dialect, file bodies inlined when the export
inlined them), since their rows are dialect literals (in Oracle spread over lines). A rectified
cell is spelled as the export spelled it (formulas kept or defused, as the ledger records). File
bodies copied out (files/<Object>/<Id>.<ext>) are deleted. Exports recorded before the ledger kept
their options are taken to have used the defaults (no bodies inlined, formulas defused).
Endpoint databases are outside our reach: the result names each one with the statement to run.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from replicator.sinks.csv import csv_batch
from replicator.sinks.sql.literals import render_literal
from replicator.sinks.sql.registry import DIALECTS, dialect
from replicator.sinks.sql.script import write_script
from replicator.sources.snapshot import attach_blobs, object_types, read_as_of
from replicator.store.blobs import BlobStore
from replicator.store.rewrite import Erasure, Rectification
from replicator.store.schema import quote
from replicator.store.snapshot import SnapshotStore

__all__ = ["Copies", "rewrite_copies"]

_SCAN = 1 << 20


@dataclass
class Copies:
    """What a request did to the copies: files rewritten or removed, and what is out of reach."""

    rewritten: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    outside: list[dict[str, Any]] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)  # exports whose folder no longer exists


def _mentions(path: Path, needles: list[str]) -> bool:
    """True when the file's bytes contain any needle (read in 1 MiB pieces, memory flat)."""
    wanted = [n.encode() for n in needles]
    overlap = max(len(n) for n in wanted) - 1
    tail = b""
    with open(path, "rb") as fh:
        while piece := fh.read(_SCAN):
            window = tail + piece
            if any(n in window for n in wanted):
                return True
            tail = window[-overlap:] if overlap else b""
    return False


def _records(fh: io.TextIOBase) -> Iterator[str]:
    """The CSV's records as their exact text (a quoted value may span lines: RFC 4180)."""
    pending = ""
    for line in fh:
        pending += line
        if pending.count('"') % 2 == 0:
            yield pending
            pending = ""
    if pending:
        yield pending


def _cells(record: str) -> list[str]:
    """A record's raw cells (quotes kept), split at the commas outside quotes."""
    cells, start, quoted = [], 0, False
    body = record.rstrip("\r\n")
    for i, ch in enumerate(body):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            cells.append(body[start:i])
            start = i + 1
    cells.append(body[start:])
    return cells


def _value(cell: str) -> str:
    return cell[1:-1].replace('""', '"') if cell.startswith('"') else cell


def _swap(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _word_replaced(text: str, old: str, new: str) -> str:
    """The first whole-word `old` in `text` replaced by `new` (as store.rewrite does in SQL)."""
    found = re.search(r"(^|\s)" + re.escape(old) + r"(\s|$)", text)
    if found is None:
        return text
    return (text[:found.start()] + found.group(1) + new + found.group(2) + text[found.end():]).strip()


def _fix(row: list[str], names: list[str], cells: dict[str, str],
         derived: dict[str, tuple[str, ...]]) -> None:
    """Put the new cells into a record's row, and the new value into the columns derived from them."""
    for column, text in cells.items():
        if column not in names:
            continue
        at = names.index(column)
        old, row[at] = _value(row[at]), text
        for name in derived.get(column, ()):
            if old and name in names:
                i = names.index(name)
                row[i] = _quoted(_word_replaced(_value(row[i]), old, _value(text)))


def rewrite_csv(path: Path, drop: set[str], cells: dict[str, dict[str, str]],
                derived: dict[str, tuple[str, ...]] | None = None) -> bool:
    """Rewrite one CSV without the records of `drop` Ids and with `cells[Id][column]` replaced;
    False (and the file untouched) when no record changed. `derived[column]`: columns in which the
    record's old value of `column` is replaced by the new one (the compound Name)."""
    needles = [*drop, *cells]
    if not needles or not _mentions(path, needles):
        return False
    tmp = path.with_name(path.name + ".gdpr")
    changed = False
    with open(path, encoding="utf-8", newline="") as src, open(tmp, "w", encoding="utf-8", newline="") as out:
        records = _records(src)
        header = next(records, "")
        out.write(header)
        names = [_value(c) for c in _cells(header)]
        at = names.index("Id") if "Id" in names else None
        for record in records:
            if at is not None and any(n in record for n in needles):
                row = _cells(record)
                rid = _value(row[at]) if at < len(row) else None
                if rid in drop:
                    changed = True
                    continue
                if rid in cells:
                    _fix(row, names, cells[rid], derived or {})
                    record = ",".join(row) + record[len(record.rstrip("\r\n")):]
                    changed = True
            out.write(record)
    if changed:
        _swap(tmp, path)
    else:
        tmp.unlink()
    return changed


def csv_cell(store: SnapshotStore, obj: str, column: str, value: Any, *, neutralise: bool = True) -> str:
    """A value spelled exactly as the CSV writer spells it in that column (quoting, dates, and formulas
    defused or kept as `neutralise` says)."""
    col = next(c for c in object_types(store, obj) if c.name == column)
    sql_type = store.reads.column_types(obj)[column]
    typed = store.db.execute(f"SELECT CAST(? AS {sql_type}) AS {quote(column)}", [value]).to_arrow_table()
    batch = csv_batch(typed.to_batches()[0], [col], neutralise=neutralise)
    buffer = io.BytesIO()
    pacsv.write_csv(pa.Table.from_batches([batch]), buffer,
                    pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return buffer.getvalue().decode().rstrip("\r\n")


def _rewrite_sql(store: SnapshotStore, path: Path, obj: str, run_id: int, dialect: str,
                 blobs: BlobStore | None) -> None:
    """Write the object's script again from the store as of the same run (file bodies inlined from
    `blobs` when given, else as the store's reference)."""
    cols, batches = attach_blobs(read_as_of(store, obj, run_id), object_types(store, obj), blobs)
    tmp = path.with_name(path.name + ".gdpr")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        write_script(fh, obj, run_id, cols, batches, dialect)
    _swap(tmp, path)


def _statement(store: SnapshotStore, obj: str, erasure: Erasure, kind: str | None) -> str:
    """What to run in an endpoint database we cannot reach, in its own dialect (its tables are named
    by the object, shortened to the dialect's limit, as the endpoint loader names them)."""
    d = dialect(kind if kind in DIALECTS else "postgresql")
    table = d.quote(d.short_name(obj))
    types = {c.name: c for c in object_types(store, obj)}
    if erasure.drop.get(obj):
        ids = ", ".join(render_literal(i, types["Id"], d) for i in erasure.drop[obj])
        return f"DELETE FROM {table} WHERE {d.quote('Id')} IN ({ids});"
    return " ".join(f"UPDATE {table} SET {d.quote(f.field)} = "
                    f"{render_literal(_python_value(store, f), types[f.field], d)} "
                    f"WHERE {d.quote('Id')} = {render_literal(f.record_id, types['Id'], d)};"
                    for f in erasure.rectify if f.object == obj)


def _python_value(store: SnapshotStore, fix: Rectification) -> Any:
    """The rectified value as the Python value of its column type (for a dialect literal)."""
    return store.db.execute(f"SELECT CAST(? AS {fix.sql_type})", [fix.value]).fetchone()[0]


def _files_of(entry: dict[str, Any], obj: str) -> list[str]:
    if entry["kind"] == "diff":
        return [f"{obj}_{part}.csv" for part in ("added", "changed", "removed")]
    return [f"{obj}.{'sql' if entry['format'] == 'sql' else 'csv'}"]


Cells = dict[str, dict[str, dict[str, str]]]  # object -> Id -> column -> the cell's CSV text


def _rectified_cells(store: SnapshotStore, erasure: Erasure, neutralise: bool) -> Cells:
    """The rectified values as a CSV written with `neutralise` spells them."""
    cells: Cells = {}
    for fix in erasure.rectify:
        cells.setdefault(fix.object, {}).setdefault(fix.record_id, {})[fix.field] = csv_cell(
            store, fix.object, fix.field, fix.value, neutralise=neutralise)
    return cells


def rewrite_copies(store: SnapshotStore, erasure: Erasure, blobs: BlobStore | None) -> Copies:
    """Take the erasure into every copy the ledger lists (run after the store itself was rewritten),
    each written with the options its export was made with; `blobs` reads the bodies an export
    inlined (None when the store has none)."""
    done = Copies()
    spelled = {neutralise: _rectified_cells(store, erasure, neutralise) for neutralise in (True, False)}
    derived = {f.field: f.derived for f in erasure.rectify}
    affected = set(erasure.drop) | {f.object for f in erasure.rectify}
    for entry in store.exports.entries():
        cells = spelled[not entry.get("keep_formulas")]
        objects = [o for o in entry["objects"] or [] if o in affected]
        if not objects:
            continue
        if entry["kind"] == "endpoint":
            done.outside += [{"export_id": entry["export_id"], "destination": entry["destination"],
                              "object": o, "statement": _statement(store, o, erasure, entry["dialect"])}
                             for o in objects]
            continue
        folder = Path(entry["destination"])
        if not folder.is_dir():
            done.gone.append(entry["export_id"])
            continue
        for obj in objects:
            drop = set(erasure.drop.get(obj, []))
            for name in _files_of(entry, obj):
                path = folder / name
                if not path.is_file():
                    continue
                if name.endswith(".sql"):
                    if _mentions(path, [*drop, *cells.get(obj, {})]):
                        _rewrite_sql(store, path, obj, entry["run_id"], entry["dialect"],
                                     blobs if entry.get("include_attachments") else None)
                        done.rewritten.append(str(path))
                elif rewrite_csv(path, drop, cells.get(obj, {}), derived):
                    done.rewritten.append(str(path))
            for rid in drop:
                for body in (folder / "files" / obj).glob(f"{rid}.*"):
                    body.unlink()
                    done.removed.append(str(body))
    return done
