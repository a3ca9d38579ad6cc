"""The snapshot store: version rule, deletions, time travel, schema evolution, atomicity, retention."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from replicator.salesforce.catalog import FieldPlan, ObjectPlan, arrow_schema
from replicator.store.schema import widened
from replicator.store.snapshot import Section, SnapshotStore
from replicator.store.versions import months_before

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FIELDS = [("Id", "id"), ("IsDeleted", "boolean"), ("Name", "string"), ("NumberOfEmployees", "int"),
          ("AnnualRevenue", "currency"), ("SystemModstamp", "datetime")]


def plan(name: str = "Account", fields: list[tuple[str, str]] = FIELDS, **kw) -> ObjectPlan:
    cursor = kw.pop("cursor", "SystemModstamp")
    return ObjectPlan(name=name, included=True, cursor=cursor, fields=[
        FieldPlan(n, t, True, precision=18 if t == "currency" else 0, scale=2 if t == "currency" else 0)
        for n, t in fields], **kw)


def rid(n: int, prefix: str = "001") -> str:
    return f"{prefix}Dn0{n:09d}AAA"


def row(n: int, name: str, minute: int, deleted: bool = False, **extra) -> dict:
    return {"Id": rid(n), "IsDeleted": deleted, "Name": name, "NumberOfEmployees": n,
            "AnnualRevenue": None, "SystemModstamp": T0 + timedelta(minutes=minute), **extra}


class Stager:
    """Writes staging files the way the source does: one Arrow-typed table per object."""

    def __init__(self, root: Path) -> None:
        self.root, self.n = root, 0

    def __call__(self, tables: dict[str, tuple[ObjectPlan, list[dict]]] | None = None,
                 deleted: dict[str, list[str]] | None = None) -> Path:
        self.n += 1
        path = self.root / f"staging{self.n}.duckdb"
        with duckdb.connect(str(path)) as con:
            con.execute("CREATE SCHEMA sf")  # dlt writes into a dataset schema
            for name, (p, rows) in (tables or {}).items():
                data = pa.Table.from_pylist(rows, schema=arrow_schema(p))
                data = data.append_column("_dlt_id", pa.array(["x"] * len(rows), pa.string()))
                con.register("data", data)
                con.execute(f'CREATE TABLE sf."{name}" AS SELECT * FROM data')
                con.unregister("data")
            for name, ids in (deleted or {}).items():
                con.execute(f'CREATE TABLE sf."{name}__deleted" (Id VARCHAR, deleted_at TIMESTAMPTZ)')
                con.executemany(f'INSERT INTO sf."{name}__deleted" VALUES (?, ?)',
                                [[i, T0 + timedelta(days=1)] for i in ids])
        return path


@pytest.fixture
def store(tmp_path: Path):
    s = SnapshotStore(tmp_path / "snapshot.duckdb")
    yield s
    s.close()


@pytest.fixture
def stage(tmp_path: Path) -> Stager:
    return Stager(tmp_path)


def run(store: SnapshotStore, staging: Path, plans: list[ObjectPlan], sections: list[Section] | None = None):
    run_id = store.ledger.begin_run("daily", "demo", "backup", False)
    counts = store.versions.apply(run_id, staging, plans, sections or [Section(p.name, "ok") for p in plans])
    return run_id, counts


def names(store: SnapshotStore, as_of: int | datetime | None = None) -> dict[str, str]:
    rows = store.reads.sql('SELECT "Id", "Name" FROM "Account"', as_of).to_pylist()
    return {r["Id"]: r["Name"] for r in rows}


def versions(store: SnapshotStore, obj: str = "Account") -> list[tuple]:
    rows = store.reads.read(f'SELECT "Id", "Name", _run_id, _deleted, _valid_to IS NULL FROM hist."{obj}" '
                            'ORDER BY "Id", _valid_from').to_pylist()
    return [tuple(r.values()) for r in rows]


def test_versions_only_on_change_and_reread_ties_cost_nothing(store, stage):
    p = plan()
    r1, c1 = run(store, stage({"Account": (p, [row(1, "a", 1), row(2, "b", 1), row(3, "c", 1)])}), [p])
    assert (c1["Account"].inserted, c1["Account"].updated) == (3, 0)
    # The cursor boundary is re-read (same SystemModstamp) and one record changed.
    r2, c2 = run(store, stage({"Account": (p, [row(1, "a", 1), row(2, "b2", 5), row(3, "c", 1)])}), [p])
    assert (c2["Account"].inserted, c2["Account"].updated, c2["Account"].unchanged) == (0, 1, 2)
    assert store.reads.read('SELECT count(*) AS n FROM hist."Account"').column("n")[0].as_py() == 4
    assert names(store) == {rid(1): "a", rid(2): "b2", rid(3): "c"}
    assert store.reads.cursor("Account") == T0 + timedelta(minutes=5)
    assert sorted(store.reads.current_ids("Account").column("Id").to_pylist()) == [rid(1), rid(2), rid(3)]
    assert store.reads.current_counts() == {"Account": 3}
    sec = store.ledger.sections(r2)[0]
    assert (sec["updated"], sec["store_count"], sec["status"]) == (1, 3, "ok")
    run1, run2 = store.ledger.run(r1), store.ledger.run(r2)
    assert run2["status"] == "completed" and run1["run_ts"] < run2["run_ts"]


def test_duplicates_in_staging_collapse_to_latest_modstamp(store, stage):
    p = plan()
    run(store, stage({"Account": (p, [row(1, "late", 9), row(1, "early", 2), row(1, "mid", 5)])}), [p])
    assert versions(store) == [(rid(1), "late", 1, False, True)]


def test_deletion_tombstone_and_undelete(store, stage):
    p = plan()
    run(store, stage({"Account": (p, [row(1, "a", 1), row(2, "b", 1)])}), [p])
    _, c = run(store, stage({"Account": (p, [row(2, "b", 3, deleted=True)])}), [p])
    assert c["Account"].deleted == 1
    assert names(store) == {rid(1): "a"}
    _, c = run(store, stage({"Account": (p, [row(2, "b", 3, deleted=True)])}), [p])  # re-read: nothing new
    assert (c["Account"].deleted, c["Account"].unchanged) == (0, 1)
    _, c = run(store, stage({"Account": (p, [row(2, "back", 7)])}), [p])
    assert (c["Account"].inserted, c["Account"].deleted) == (1, 0)
    assert [v for v in versions(store) if v[0] == rid(2)] == [
        (rid(2), "b", 1, False, False), (rid(2), "b", 2, True, False), (rid(2), "back", 4, False, True)]
    assert store.reads.current_counts() == {"Account": 2}
    # A record created and deleted between two runs is kept as a tombstone (its data survives).
    _, c = run(store, stage({"Account": (p, [row(3, "gone", 8, deleted=True)])}), [p])
    assert c["Account"].deleted == 1 and rid(3) not in names(store)
    deleted = store.reads.read('SELECT "IsDeleted" FROM hist."Account" WHERE "Id" = ?', [rid(3)])
    assert deleted.to_pylist() == [{"IsDeleted": True}]


def test_deleted_ids_table_makes_tombstones_from_current_values(store, stage):
    p = plan()
    run(store, stage({"Account": (p, [row(1, "a", 1), row(2, "b", 1), row(3, "c", 1)])}), [p])
    # 1: only known deleted (e.g. a --full reconcile); 2: staged with an older change then deleted;
    # 3: staged changed AFTER the deletion time (undeleted since) stays live; 9: never seen.
    staging = stage({"Account": (p, [row(2, "b2", 60), row(3, "c2", 3 * 24 * 60)])},
                    deleted={"Account": [rid(1), rid(2), rid(3), rid(9)]})
    _, c = run(store, staging, [p])
    assert (c["Account"].deleted, c["Account"].updated) == (2, 1)
    assert names(store) == {rid(3): "c2"}
    tomb = store.reads.read('SELECT "Id", "Name", "NumberOfEmployees", "IsDeleted" FROM hist."Account" '
                            "WHERE _deleted ORDER BY 1").to_pylist()
    assert tomb == [{"Id": rid(1), "Name": "a", "NumberOfEmployees": 1, "IsDeleted": True},
                    {"Id": rid(2), "Name": "b2", "NumberOfEmployees": 2, "IsDeleted": True}]
    # Deleting again changes nothing.
    _, c = run(store, stage(deleted={"Account": [rid(1)]}), [p])
    assert c["Account"].deleted == 0 and len(versions(store)) == 6


def test_as_of_by_run_and_timestamp(store, stage):
    p = plan()
    r1, _ = run(store, stage({"Account": (p, [row(1, "a", 1), row(2, "b", 1)])}), [p])
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    changes = [row(1, "a2", 2), row(2, "b", 2, deleted=True), row(3, "c", 2)]
    r2, _ = run(store, stage({"Account": (p, changes)}), [p])
    assert names(store, r1) == names(store, between) == {rid(1): "a", rid(2): "b"}
    assert names(store, r2) == names(store) == {rid(1): "a2", rid(3): "c"}
    assert names(store, between.replace(tzinfo=None)) == {rid(1): "a", rid(2): "b"}  # naive = UTC
    # The macros take a run id, a timestamp or ISO text; main."Account" stays the current state.
    q = 'SELECT "Name" FROM "Account_as_of"({}) ORDER BY 1'
    assert store.reads.sql(q.format(r1)).column("Name").to_pylist() == ["a", "b"]
    for arg in (f"TIMESTAMPTZ '{between.isoformat()}'", f"'{between.isoformat()}'"):
        assert store.reads.sql(q.format(arg)).column("Name").to_pylist() == ["a", "b"]
    assert store.reads.sql(q.format("'2000-01-01'")).num_rows == 0
    # With as_of, object names (also main."Account") mean the as-of state; macros still reach any run.
    assert store.reads.sql('SELECT "Name" FROM main."Account" WHERE "Name" = \'b\'', r1).num_rows == 1
    joined = store.reads.sql(
        f'SELECT a."Name", c."Name" AS now FROM "Account" a JOIN "Account_as_of"({r2}) c USING ("Id")', r1)
    assert joined.to_pylist() == [{"Name": "a", "now": "a2"}]


def test_history_macro(store, stage):
    p = plan()
    run(store, stage({"Account": (p, [row(1, "a", 1)])}), [p])
    run(store, stage({"Account": (p, [row(1, "a2", 2)])}), [p])
    run(store, stage({"Account": (p, [row(1, "a2", 3, deleted=True)])}), [p])
    hist = store.reads.sql(f"SELECT * FROM \"Account_history\"('{rid(1)}')")
    assert hist.column("Name").to_pylist() == ["a", "a2", "a2"]
    assert hist.column("_run_id").to_pylist() == [1, 2, 3]
    assert hist.column("_deleted").to_pylist() == [False, False, True]
    assert hist.column("_valid_to").to_pylist()[:2] == hist.column("_valid_from").to_pylist()[1:]
    assert "_key" not in hist.column_names
    assert store.reads.sql(f"SELECT * FROM \"Account_history\"('{rid(1)[:15]}')").num_rows == 3  # 15-char Id
    assert store.reads.sql(f"SELECT * FROM \"Account_history\"('{rid(2)}')").num_rows == 0


def test_schema_evolution(store, stage):
    p1 = plan(fields=[*FIELDS, ("Score__c", "int"), ("Code__c", "int"), ("Old__c", "string")])
    run(store, stage({"Account": (p1, [row(1, "a", 1, Score__c=7, Code__c=1, Old__c="x")])}), [p1])
    # Score__c int -> long (widened), Code__c int -> string (VARCHAR), Old__c gone, New__c added.
    p2 = plan(fields=[*FIELDS, ("Score__c", "long"), ("Code__c", "string"), ("New__c", "date")])
    changed = row(1, "a", 2, Score__c=2**40, Code__c="A-1", New__c=T0.date())
    run(store, stage({"Account": (p2, [changed])}), [p2])
    types = {r["column_name"]: r["data_type"] for r in store.reads.read(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'hist' "
        "AND table_name = 'Account'").to_pylist()}
    assert (types["Score__c"], types["Code__c"], types["Old__c"], types["New__c"]) == (
        "BIGINT", "VARCHAR", "VARCHAR", "DATE")
    hist = store.reads.read('SELECT "Score__c", "Code__c", "Old__c", "New__c" FROM hist."Account" '
                            "ORDER BY _valid_from")
    assert hist.to_pylist() == [{"Score__c": 7, "Code__c": "1", "Old__c": "x", "New__c": None},
                                {"Score__c": 2**40, "Code__c": "A-1", "Old__c": None, "New__c": T0.date()}]
    assert "Old__c" in store.reads.sql('SELECT * FROM "Account"').column_names


@pytest.mark.parametrize(("old", "new", "result"), [
    ("INTEGER", "BIGINT", "BIGINT"), ("BIGINT", "INTEGER", "BIGINT"), ("INTEGER", "DOUBLE", "DOUBLE"),
    ("BIGINT", "DOUBLE", "VARCHAR"), ("DECIMAL(10,2)", "DECIMAL(12,4)", "DECIMAL(12,4)"),
    ("DECIMAL(18,2)", "DECIMAL(10,4)", "DECIMAL(20,4)"), ("INTEGER", "DECIMAL(18,2)", "DECIMAL(18,2)"),
    ("INTEGER", "DECIMAL(5,2)", "VARCHAR"), ("BOOLEAN", "VARCHAR", "VARCHAR"),
    ("DATE", "TIMESTAMP WITH TIME ZONE", "VARCHAR"),
    ("VARCHAR", "DOUBLE", "VARCHAR"),
])
def test_widening_rule(old, new, result):
    assert widened(old, new) == result


def test_failed_section_is_not_applied(store, stage):
    p, c = plan(), plan("Contact", cursor="SystemModstamp")
    staging = stage({"Account": (p, [row(1, "a", 1)]), "Contact": (c, [row(2, "partial", 1)])})
    sections = [Section("Account", "ok", items=1, api_calls=2, bulk_batches=1),
                Section("Contact", "failed", "QUERY_TIMEOUT after 3 splits", items=1)]
    r, counts = run(store, staging, [p, c], sections)
    assert set(counts) == {"Account"} and store.reads.objects() == ["Account"]
    assert store.reads.cursor("Contact") is None
    info = store.ledger.run(r)
    assert (info["status"], info["items"], info["api_calls"], info["bulk_batches"]) == ("partial", 2, 2, 1)
    assert [(a["object"], a["status"], a["message"]) for a in store.ledger.activity(run_id=r)] == [
        ("Contact", "failed", "QUERY_TIMEOUT after 3 splits")]
    assert store.ledger.activity("Account") == []


def test_finish_run_and_abandoned_runs(tmp_path):
    path = tmp_path / "s.duckdb"
    with SnapshotStore(path) as s:
        r1 = s.ledger.begin_run("daily", "demo", "backup", False)
        s.ledger.finish_run(r1, "failed", "authentication failed", {"api_calls": 1})
        r2 = s.ledger.begin_run("daily", "demo", "backup", True)
        with pytest.raises(ValueError, match="failed"):
            s.versions.apply(r1, tmp_path / "none.duckdb", [], [])
    with SnapshotStore(path) as s:  # r2's process "ended": the next writer marks it aborted
        assert [(r["run_id"], r["status"]) for r in s.ledger.runs()] == [(r1, "failed"), (r2, "aborted")]
        assert s.ledger.run(r1)["api_calls"] == 1
        assert s.ledger.activity()[0]["message"] == "authentication failed"
    with SnapshotStore(path, read_only=True) as s:
        assert s.ledger.run(r2)["status"] == "aborted"


def test_sql_is_read_only(store, stage):
    p = plan()
    run(store, stage({"Account": (p, [row(1, "a", 1)])}), [p])
    for bad in ('DROP TABLE hist."Account"', 'SELECT 1; DELETE FROM hist."Account"',
                'DELETE FROM hist."Account"'):
        with pytest.raises(ValueError, match="one SELECT"):
            store.reads.sql(bad)
    assert store.reads.sql("SELECT object, records, versions FROM objects").to_pylist() == [
        {"object": "Account", "records": 1, "versions": 1}]


def test_blob_field_and_object_without_cursor(store, stage):
    cv = ObjectPlan(name="ContentVersion", included=True, cursor=None, blob_field="VersionData", fields=[
        FieldPlan("Id", "id", True), FieldPlan("Title", "string", True),
        FieldPlan("VersionData", "base64", False, reason="file body: stored in the blob store")])
    schema = pa.schema([("Id", pa.string()), ("Title", pa.string()), ("VersionData", pa.string())])

    def staged(rows):
        path = stage.root / f"cv{len(rows)}{time.monotonic_ns()}.duckdb"
        with duckdb.connect(str(path)) as con:
            con.register("d", pa.Table.from_pylist(rows, schema=schema))
            con.execute('CREATE TABLE "ContentVersion" AS SELECT * FROM d')
        return path

    run(store, staged([{"Id": rid(1, "068"), "Title": "t", "VersionData": "ab" * 32}]), [cv])
    _, c = run(store, staged([{"Id": rid(1, "068"), "Title": "t", "VersionData": "ab" * 32},
                              {"Id": rid(2, "068"), "Title": "u", "VersionData": None}]), [cv])
    assert (c["ContentVersion"].inserted, c["ContentVersion"].unchanged) == (1, 1)  # compared field by field
    _, c = run(store, staged([{"Id": rid(1, "068"), "Title": "t2", "VersionData": "cd" * 32}]), [cv])
    assert c["ContentVersion"].updated == 1
    bodies = store.reads.sql('SELECT "VersionData" FROM "ContentVersion" ORDER BY "Id"')
    assert bodies.column(0).to_pylist() == ["cd" * 32, None]
    assert store.reads.cursor("ContentVersion") is None
    ids = pa.array([rid(1, "068"), rid(2, "068"), rid(3, "068")])
    prev = store.reads.current_versions("ContentVersion", ["VersionData", "ContentSize"], ids).sort_by("Id")
    assert prev.to_pylist() == [{"Id": rid(1, "068"), "VersionData": "cd" * 32},
                                {"Id": rid(2, "068"), "VersionData": None}]
    assert store.reads.current_versions("Document", ["Body"], ids).num_rows == 0


def test_prune_keeps_current_state_and_compacts(tmp_path, stage):
    path = tmp_path / "snapshot.duckdb"
    p = plan()
    with SnapshotStore(path) as s:
        for minute, name in enumerate(("a", "b", "c", "d"), start=1):
            run(s, stage({"Account": (p, [row(1, name, minute), row(2, f"x{minute}", minute)])}), [p])
        run(s, stage({"Account": (p, [row(3, "gone", 9, deleted=True), row(2, "x9", 9)])}), [p])
        before = s.reads.sql('SELECT * FROM "Account" ORDER BY "Id"')
        assert s.versions.prune(None) == 0 and s.versions.prune(12) == 0
        pruned = s.versions.prune(1, now=datetime.now(UTC) + timedelta(days=62))
        assert pruned == 8  # 7 retired versions + the tombstone of a record deleted before the cutoff
        assert s.reads.sql('SELECT * FROM "Account" ORDER BY "Id"') == before
        assert len(versions(s)) == 2 and s.reads.cursor("Account") == T0 + timedelta(minutes=9)
        # Compaction rewrote the file; macros, views and the ledger came along.
        one = s.reads.sql(f"SELECT count(*) AS n FROM \"Account_history\"('{rid(1)}')")
        assert one.column("n")[0].as_py() == 1
        assert len(s.ledger.runs()) == 5
        assert s.reads.sql('SELECT count(*) FROM "Account_as_of"(5)').column(0)[0].as_py() == 2
        run(s, stage({"Account": (p, [row(1, "e", 20)])}), [p])
        assert names(s)[rid(1)] == "e"
    assert not (tmp_path / "snapshot.duckdb.compact").exists()


def test_compact_removes_deleted_bytes(tmp_path, stage):
    path = tmp_path / "snapshot.duckdb"
    p = plan()
    with SnapshotStore(path) as s:
        run(s, stage({"Account": (p, [row(1, "SECRET-MARKER-1234", 1), row(2, "keep", 1)])}), [p])
        s.reads.read('DELETE FROM hist."Account" WHERE "Id" = ?', [rid(1)])
        s.reads.read("CHECKPOINT")
        s.versions.compact()
        assert names(s) == {rid(2): "keep"}
    assert b"SECRET-MARKER-1234" not in path.read_bytes()


def test_months_before():
    assert months_before(datetime(2024, 3, 31, 5, tzinfo=UTC), 1) == datetime(2024, 2, 29, 5, tzinfo=UTC)
    assert months_before(datetime(2024, 1, 15, tzinfo=UTC), 13) == datetime(2022, 12, 15, tzinfo=UTC)


# -- atomicity -----------------------------------------------------------------------------------------

KILLED_APPLY = textwrap.dedent("""
    import sys
    from pathlib import Path
    from replicator.salesforce.catalog import FieldPlan, ObjectPlan
    from replicator.store.snapshot import Section, SnapshotStore
    store_path, staging = Path(sys.argv[1]), Path(sys.argv[2])
    fields = [FieldPlan(n, t, True, precision=18 if t == "currency" else 0, scale=2 if t == "currency" else 0)
              for n, t in {fields!r}]
    plan = ObjectPlan(name="Account", included=True, cursor="SystemModstamp", fields=fields)
    store = SnapshotStore(store_path)
    run_id = store.ledger.begin_run("daily", "demo", "backup", False)
    print("applying", flush=True)
    store.versions.apply(run_id, staging, [plan], [Section("Account", "ok")])
    print("done", flush=True)
""").format(fields=FIELDS)


def big_staging(path: Path, first: int, count: int, minute: int) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute(f"""CREATE TABLE "Account" AS
            SELECT '001Dn0' || lpad(i::VARCHAR, 9, '0') || 'AAA' AS "Id", false AS "IsDeleted",
            'name ' || i || ' ' || md5(i::VARCHAR) AS "Name", i::INTEGER AS "NumberOfEmployees",
            (i / 100)::DECIMAL(18,2) AS "AnnualRevenue",
            TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_minutes({minute}) AS "SystemModstamp"
            FROM range({first}, {first + count}) t(i)""")
    return path


def fingerprint(store: SnapshotStore) -> tuple:
    """The store's content, independent of run ids and timestamps."""
    return store.reads.read('SELECT count(*) AS versions, '
                            'count(*) FILTER (WHERE _valid_to IS NULL) AS current, '
                            'sum(hash("Id", "Name", _deleted)) FILTER (WHERE _valid_to IS NULL) AS h, '
                            'count(DISTINCT _valid_from) AS runs FROM hist."Account"').to_pylist()[0]


def test_killed_apply_leaves_previous_run_and_next_run_completes(tmp_path):
    base = big_staging(tmp_path / "base.duckdb", 0, 2000, 1)
    # The killed run updates every base record and adds 60k new ones.
    big = big_staging(tmp_path / "big.duckdb", 0, 62_000, 2)
    reference = tmp_path / "reference.duckdb"
    with SnapshotStore(reference) as ref:
        run(ref, base, [plan()])
        before = fingerprint(ref)
        start = time.perf_counter()
        run(ref, big, [plan()])
        duration = time.perf_counter() - start
        after = fingerprint(ref)
    outcomes = []
    for i, fraction in enumerate((0.1, 0.5, 1.0)):
        path = tmp_path / f"store{i}.duckdb"
        with SnapshotStore(path) as s:
            run(s, base, [plan()])
        proc = subprocess.Popen([sys.executable, "-c", KILLED_APPLY, str(path), str(big)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "applying"
        time.sleep(duration * fraction)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with SnapshotStore(path) as s:
            status = s.ledger.run(2)["status"]
            outcomes.append(status)
            assert status in ("aborted", "completed")
            assert fingerprint(s) == (before if status == "aborted" else after)
            assert s.reads.cursor("Account") == T0 + timedelta(minutes=1 if status == "aborted" else 2)
            # The next run stages the same range again and ends in exactly the reference state.
            r3, _ = run(s, big, [plan()])
            assert s.ledger.run(r3)["status"] == "completed"
            assert fingerprint(s)["current"] == after["current"]
            assert fingerprint(s)["h"] == after["h"]
            assert fingerprint(s)["versions"] == after["versions"]
    assert "aborted" in outcomes, outcomes
