"""A small snapshot store covering every exported type and the nasty values, for the export tests.

Two backup runs of `Thing__c` (every kind: text with quotes, backslashes, newlines, tabs, emoji and
SQL-looking text; empty strings and NULLs; int, long, currency decimals, doubles, booleans, dates,
datetimes with milliseconds, times) and `ContentVersion` (file bodies in an encrypted BlobStore,
one longer than Oracle's 2000-byte RAW literal). Run 2 changes one Thing, deletes one, adds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa

from replicator.salesforce.catalog import FieldPlan, ObjectPlan, arrow_schema
from replicator.store.blobs import BlobStore
from replicator.store.snapshot import Section, SnapshotStore

T0 = datetime(2024, 3, 1, 8, 0, 0, 123000, tzinfo=UTC)
LONG_NAME = "An_uncommonly_long_custom_field_name__c"  # 39 chars: Oracle (30) shortens it
NASTY = [
    "it's a \"quote\"", "back\\slash \\' \\\\ end\\", "new\nline\r\nand\ttab", "emoji 😀👍🏽 ünïcødé 中文",
    "", "-- not a comment; /* nor this */ & &amp; :bind ?", "N'x' X'00' E'\\n' $$dollar$$",
    "trailing space ", "%_% LIKE wildcards", "x" * 400,
]
THING_FIELDS = [
    FieldPlan("Id", "id", True, length=18), FieldPlan("IsDeleted", "boolean", True),
    FieldPlan("Name", "string", True, length=80), FieldPlan("Body__c", "textarea", True, length=32768),
    FieldPlan("Count__c", "int", True, precision=9), FieldPlan("Big__c", "long", True, precision=18),
    FieldPlan("Amount__c", "currency", True, precision=18, scale=2),
    FieldPlan("Ratio__c", "double", True, precision=16, scale=4),
    FieldPlan("Day__c", "date", True), FieldPlan("At__c", "datetime", True),
    FieldPlan("Clock__c", "time", True),
    FieldPlan("Flag__c", "boolean", True), FieldPlan(LONG_NAME, "string", True, length=40),
    FieldPlan("SystemModstamp", "datetime", True),
]
CV_FIELDS = [
    FieldPlan("Id", "id", True, length=18), FieldPlan("IsDeleted", "boolean", True),
    FieldPlan("Title", "string", True, length=255), FieldPlan("FileExtension", "string", True, length=40),
    FieldPlan("VersionData", "base64", True), FieldPlan("SystemModstamp", "datetime", True),
]
BODIES = [b"hello \x00\xff world", b"", bytes(range(256)) * 20, None]


def thing_plan() -> ObjectPlan:
    return ObjectPlan(name="Thing__c", included=True, cursor="SystemModstamp", fields=THING_FIELDS)


def cv_plan() -> ObjectPlan:
    return ObjectPlan(name="ContentVersion", included=True, cursor="SystemModstamp", fields=CV_FIELDS,
                      blob_field="VersionData")


def tid(n: int) -> str:
    return f"a01Dn0{n:09d}AAA"


def thing(n: int, minute: int = 0, **over) -> dict:
    nasty = NASTY[n % len(NASTY)]
    row = {
        "Id": tid(n), "IsDeleted": False, "Name": nasty[:80], "Body__c": nasty * 3 if n % 4 else None,
        "Count__c": [0, -1, 2147483647, None][n % 4], "Big__c": [9007199254740993, -5, None, 0][n % 4],
        "Amount__c": [Decimal("1234567890123456.78"), Decimal("-0.01"), Decimal("0.00"), None][n % 4],
        "Ratio__c": [0.1, -1.5e-7, 12345.6789, None][n % 4],
        "Day__c": [date(2024, 2, 29), date(1970, 1, 1), date(4000, 12, 31), None][n % 4],
        "At__c": [T0, datetime(1999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), None,
                  datetime(2038, 1, 19, 3, 14, 8, 1000, tzinfo=UTC)][n % 4],
        "Clock__c": [time(0, 0, 0), time(23, 59, 59, 999000), None, time(12, 30, 0, 5000)][n % 4],
        "Flag__c": [True, False, None][n % 3], LONG_NAME: "long" if n % 2 else "",
        "SystemModstamp": T0 + timedelta(minutes=minute, milliseconds=n),
    }
    row.update(over)
    return row


@dataclass
class ExportStore:
    store: SnapshotStore
    blobs: BlobStore
    run1: int
    run2: int


def _stage(path: Path, tables: dict[str, tuple[ObjectPlan, list[dict]]]) -> Path:
    with duckdb.connect(str(path)) as con:
        for name, (plan, rows) in tables.items():
            con.register("data", pa.Table.from_pylist(rows, schema=arrow_schema(plan)))
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM data')
            con.unregister("data")
    return path


def _run(store: SnapshotStore, staging: Path, plans: list[ObjectPlan]) -> int:
    run_id = store.ledger.begin_run("daily", "demo", "backup", False)
    store.versions.apply(run_id, staging, plans, [Section(p.name, "ok") for p in plans])
    return run_id


def build(root: Path) -> ExportStore:
    """Two runs into a fresh store under `root` (see the module docstring)."""
    blobs = BlobStore(root / "blobs", b"k" * 32)
    store = SnapshotStore(root / "snapshot.duckdb")
    versions = [{"Id": f"068Dn0{n:09d}AAA", "IsDeleted": False, "Title": f"file {n}",
                 "FileExtension": ["pdf", "txt", "bin", None][n], "SystemModstamp": T0,
                 "VersionData": None if body is None else blobs.put(body)} for n, body in enumerate(BODIES)]
    things = [thing(n) for n in range(12)]
    r1 = _run(store, _stage(root / "s1.duckdb", {"Thing__c": (thing_plan(), things),
                                                 "ContentVersion": (cv_plan(), versions)}),
              [thing_plan(), cv_plan()])
    later = [thing(1, 5, Name="changed ✓", Amount__c=Decimal("2.50")),
             thing(2, 5, IsDeleted=True), thing(12, 5)]
    r2 = _run(store, _stage(root / "s2.duckdb", {"Thing__c": (thing_plan(), later)}), [thing_plan()])
    return ExportStore(store, blobs, r1, r2)


def store_rows(es: ExportStore, obj: str, run_id: int, *, bodies: bool = True) -> list[dict]:
    """The records as of a run straight from the store, file bodies as bytes when `bodies`."""
    rows = es.store.reads.sql(f'SELECT * FROM "{obj}" ORDER BY "Id"', run_id).to_pylist()
    if bodies:
        for r in rows:
            if r.get("VersionData") is not None:
                r["VersionData"] = es.blobs.get(r["VersionData"])
    return rows
