"""CSV exports: round trip of every value (NULL vs "" kept apart), attachments decrypted to files/,
the exports ledger, and the `replicator export` / `replicator exports` commands."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner
from export_data import BODIES, ExportStore, build, store_rows

from replicator.cli import cli
from replicator.export import export
from replicator.sources.snapshot import object_types


@pytest.fixture
def es(tmp_path: Path) -> ExportStore:
    built = build(tmp_path / "store")
    yield built
    built.store.close()


def read_csv(path: Path) -> list[dict]:
    """Every column as text; an unquoted empty field is NULL, a quoted one ("") an empty string."""
    with open(path, "rb") as fh:
        names = pacsv.read_csv(fh, read_options=pacsv.ReadOptions(skip_rows_after_names=10**9)).column_names
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True,
                                   quoted_strings_can_be_null=False)
    return pacsv.read_csv(path, convert_options=convert).to_pylist()


def as_text(value, kind: str):
    """What the CSV must say for a store value (README "Exports")."""
    if value is None:
        return None
    if kind == "bool":
        return "true" if value else "false"
    if kind == "datetime":
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if kind == "time":
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if kind == "double":
        return repr(value).replace("e-07", "e-7")
    return str(value)


def test_csv_round_trip_and_attachments(es: ExportStore, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    result = export(es.store, out, run=es.run1, fmt="csv", blobs=es.blobs, neutralise=False)
    assert result.rows == {"ContentVersion": 4, "Thing__c": 12}
    raw = (out / "Thing__c.csv").read_bytes()
    assert raw.startswith(b'"Id","IsDeleted","Name"') and b"\r\n" in raw  # no BOM, CRLF
    for obj in ("Thing__c", "ContentVersion"):
        kinds = {c.name: c.kind for c in object_types(es.store, obj)}
        expected = [{k: as_text(v, kinds[k]) for k, v in row.items()}
                    for row in store_rows(es, obj, es.run1, bodies=False)]
        assert read_csv(out / f"{obj}.csv") == expected
    things = read_csv(out / "Thing__c.csv")
    assert any(r["Name"] == "" for r in things) and any(r["Body__c"] is None for r in things)
    assert Decimal(things[0]["Amount__c"]) == Decimal("1234567890123456.78")
    assert datetime.fromisoformat(things[0]["At__c"]).microsecond == 123000
    files = sorted(p.name for p in (out / "files" / "ContentVersion").iterdir())
    assert files == ["068Dn0000000000AAA.pdf", "068Dn0000000001AAA.txt", "068Dn0000000002AAA.bin"]
    assert [(out / "files" / "ContentVersion" / f).read_bytes() for f in files] == BODIES[:3]
    ledger = es.store.exports.entries()
    assert [(e["kind"], e["format"], e["run_id"], e["status"], e["rows"], e["destination"])
            for e in ledger] == [("export", "csv", es.run1, "completed", 16, str(out.resolve()))]
    assert sorted(ledger[0]["objects"]) == ["ContentVersion", "Thing__c"]
    assert es.store.exports.entries("Thing__c") == ledger and es.store.exports.entries("Account") == []


def test_values_a_spreadsheet_would_run_get_an_apostrophe_by_default(es: ExportStore, tmp_path: Path) -> None:
    """OWASP CSV injection: text starting with = + - @ tab or CR is defused in files for people;
    numbers (-1, -0.01) stay numbers, and --keep-formulas (machines) writes values as they are."""
    export(es.store, tmp_path / "people", run=es.run1, fmt="csv")
    export(es.store, tmp_path / "machines", run=es.run1, fmt="csv", neutralise=False)
    people = read_csv(tmp_path / "people" / "Thing__c.csv")
    machines = read_csv(tmp_path / "machines" / "Thing__c.csv")
    risky = 0
    for person, machine in zip(people, machines, strict=True):
        for name, value in machine.items():
            text_field = name in ("Name", "Body__c")
            if text_field and value and value[0] in "=+-@\t\r":
                risky += 1
                assert person[name] == "'" + value
            else:
                assert person[name] == value
    assert risky > 0  # the test data holds such values
    assert any(r["Count__c"] == "-1" for r in people)


def test_export_refuses_a_folder_with_files_or_a_file(es: ExportStore, tmp_path: Path,
                                                      tmp_config) -> None:
    """Nothing is overwritten without --force, and nothing is written at all when refused."""
    from replicator.config import load_config
    from replicator.errors import InvalidInput
    from replicator.export import ExportRequest, run_export

    es.store.close()
    config = load_config(tmp_config(f'[storage]\npath = "{(tmp_path / "store")}"\n'))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "Thing__c.csv").write_text("mine")
    ledger_before = ((tmp_path / "store") / "snapshot.duckdb").read_bytes()
    for out, words in ((busy, "is not empty"), (busy / "Thing__c.csv", "is a file, not a folder"),
                       (busy / "Thing__c.csv" / "sub", "is a file, not a folder")):
        with pytest.raises(InvalidInput, match=words):
            run_export(config, ExportRequest(out=out))
    assert (busy / "Thing__c.csv").read_text() == "mine"
    assert ((tmp_path / "store") / "snapshot.duckdb").read_bytes() == ledger_before
    result = run_export(config, ExportRequest(out=busy, force=True))
    assert result.rows["Thing__c"] == 12 and (busy / "Thing__c.csv").read_text() != "mine"


def test_failed_export_stays_on_the_ledger(es: ExportStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not in the backup: Nope"):
        export(es.store, tmp_path / "x", fmt="csv", objects=["Nope"])
    (tmp_path / "blocked" / "Thing__c.sql").mkdir(parents=True)  # the script cannot be written
    with pytest.raises(OSError):
        export(es.store, tmp_path / "blocked", fmt="sql", dialect="postgresql")
    result = export(es.store, tmp_path / "ok", fmt="sql", dialect="mysql", objects=["thing__c"])
    assert result.rows == {"Thing__c": 12}
    ledger = [(e["status"], e["dialect"], e["message"] is not None) for e in es.store.exports.entries()]
    assert ledger == [("failed", "postgresql", True), ("completed", "mysql", False)]


def test_export_command_and_ledger_listing(tmp_path: Path, tmp_config, monkeypatch) -> None:
    es = build(tmp_path / "store")
    es.store.close()
    monkeypatch.setenv("REPLICATOR_TEST_BLOB_KEY", (b"k" * 32).hex())
    config = tmp_config('[storage]\npath = "store"\nblob_key_env = "REPLICATOR_TEST_BLOB_KEY"\n\n'
                        '[orgs.demo]\nlogin_url = "https://127.0.0.1:8443"\nauth = "password"\n'
                        'username = "a@b.c"\npassword_env = "REPLICATOR_TEST_PASSWORD"\n')
    runner = CliRunner()

    def invoke(*args: str):
        done = runner.invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return done.output

    out = tmp_path / "exp"
    done = json.loads(invoke("export", "--run", "last", "--format", "sql", "--dialect", "oracle",
                             "--objects", "ContentVersion", "--include-attachments", "--out", str(out),
                             "--json"))
    assert done["run_id"] == es.run2 and done["rows"] == {"ContentVersion": 4}
    assert "DBMS_LOB.WRITEAPPEND" in (out / "ContentVersion.sql").read_text(encoding="utf-8")
    bad = runner.invoke(cli, ["--config", str(config), "export", "--format", "sql", "--out", str(out)])
    assert bad.exit_code != 0 and "dialect" in bad.output
    listed = json.loads(invoke("exports", "--json"))
    assert [(e["kind"], e["dialect"], e["objects"]) for e in listed] == [
        ("export", "oracle", ["ContentVersion"])]
    assert "Kind" in invoke("exports")
