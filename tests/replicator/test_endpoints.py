"""Endpoint exports into a real PostgreSQL and a real MariaDB: every value round-trips, tables evolve,
re-exports are idempotent, and connection problems read clearly without leaking the password."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dbservers import MariaDbServer, PostgresServer
from test_snapshot_store import Stager

from replicator.config import ConfigError, EndpointSettings, Secret, load_config
from replicator.export import EndpointError, export_to_endpoint, load_endpoint
from replicator.salesforce.catalog import FieldPlan, ObjectPlan
from replicator.sinks.sql.tables import column_names, short_name
from replicator.sources.snapshot import read_as_of
from replicator.store.snapshot import Section, SnapshotStore

UTC = dt.UTC
T0 = dt.datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)
LONG_FIELD = "A_Field_Name_So_Long_That_It_Exceeds_Every_Identifier_Limit_Of_MySQL__c"
LONG_OBJECT = "An_Object_Name_Long_Enough_To_Need_A_Stable_Hash_Suffix_Everywhere__c"
ACCOUNT_FIELDS = [
    FieldPlan("Id", "id", True, length=18), FieldPlan("IsDeleted", "boolean", True),
    FieldPlan("Name", "string", True, length=255), FieldPlan("Description", "textarea", True, length=32000),
    FieldPlan("NumberOfEmployees", "int", True), FieldPlan("Big__c", "long", True),
    FieldPlan("AnnualRevenue", "currency", True, precision=18, scale=2),
    FieldPlan("Score__c", "double", True), FieldPlan("Founded__c", "date", True),
    FieldPlan("Opens__c", "time", True), FieldPlan("SystemModstamp", "datetime", True),
    FieldPlan(LONG_FIELD, "string", True, length=40),
]
NASTY = ["it's", 'say "hi"', "back\\slash \\N \\t", "two\nlines\r\nand\ttab", "emoji 😀🚀 ünïcødé",
         "", "NULL", "comma, separated", "  padded  ", '"', "\\", "ends with backslash\\"]
PASSWORD_ENV = "REPLICATOR_TEST_ENDPOINT_PASSWORD"


def _account(n: int, **extra: Any) -> dict[str, Any]:
    nasty = NASTY[n % len(NASTY)]
    return {
        "Id": f"001Dn0{n:09d}AAA", "IsDeleted": False, "Name": f"{nasty} #{n}",
        "Description": None if n % 7 == 0 else nasty * (n % 3 + 1),
        "NumberOfEmployees": [2147483647, -2147483648, 0, None][n % 4],
        "Big__c": [9007199254740993, -1, None][n % 3],
        "AnnualRevenue": [Decimal("0.01"), Decimal("-1234567890123456.78"), None, Decimal("42.00")][n % 4],
        "Score__c": [0.1, -2.5e10, 1e-300, None, 123456.789][n % 5],
        "Founded__c": [dt.date(1900, 2, 28), dt.date(2024, 2, 29), dt.date(9999, 12, 31), None][n % 4],
        "Opens__c": [dt.time(0, 0), dt.time(23, 59, 59, 999000), None][n % 3],
        "SystemModstamp": [T0, dt.datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),
                           dt.datetime(2038, 1, 19, 3, 14, 8, 500000, tzinfo=UTC)][n % 3],
        LONG_FIELD: nasty[:40] if n % 5 else None,
        **extra,
    }


def _plans(extra_field: bool = False) -> list[ObjectPlan]:
    fields = ACCOUNT_FIELDS + ([FieldPlan("Rating__c", "picklist", True, length=40)] if extra_field else [])
    return [
        ObjectPlan("Account", True, cursor="SystemModstamp", fields=fields),
        ObjectPlan(LONG_OBJECT, True, cursor="SystemModstamp", fields=[
            FieldPlan("Id", "id", True, length=18), FieldPlan("SystemModstamp", "datetime", True)]),
        ObjectPlan("Document", True, cursor="SystemModstamp", blob_field="Body", fields=[
            FieldPlan("Id", "id", True, length=18), FieldPlan("Body", "base64", True),
            FieldPlan("SystemModstamp", "datetime", True)]),
    ]


def _run(store: SnapshotStore, stager: Stager, plans: list[ObjectPlan], rows: dict[str, list[dict]],
         deleted: dict[str, list[str]] | None = None) -> int:
    tables = {p.name: (p, rows.get(p.name, [])) for p in plans}
    run_id = store.ledger.begin_run("daily", "demo", "backup", False)
    store.versions.apply(run_id, stager(tables, deleted), plans, [Section(p.name, "ok") for p in plans])
    return run_id


def first_run(root: Path) -> tuple[SnapshotStore, Stager, int]:
    """Run 1: accounts with every type and nasty strings, a long-named object, documents (blobs)."""
    root.mkdir(parents=True, exist_ok=True)
    store, stager = SnapshotStore(root / "snapshot.duckdb"), Stager(root)
    other = [{"Id": "a0X000000000001AAA", "SystemModstamp": T0}]
    docs = [{"Id": f"015000000000{n:03d}AAA", "Body": None if n == 2 else f"{n:064x}", "SystemModstamp": T0}
            for n in range(3)]
    run1 = _run(store, stager, _plans(), {"Account": [_account(n) for n in range(1500)],
                                         LONG_OBJECT: other, "Document": docs})
    return store, stager, run1


def second_run(store: SnapshotStore, stager: Stager) -> int:
    """Run 2: a new field (Rating__c), three changed accounts and one deleted."""
    later = T0 + dt.timedelta(days=1)
    changed = [_account(n, Rating__c=NASTY[n % len(NASTY)], SystemModstamp=later) for n in range(3)]
    changed[0]["Name"] = "renamed ' \" \\ 😀"
    return _run(store, stager, _plans(extra_field=True), {"Account": changed},
                deleted={"Account": [_account(10)["Id"]]})


def build_store(root: Path) -> tuple[SnapshotStore, int, int]:
    store, stager, run1 = first_run(root)
    return store, run1, second_run(store, stager)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    store, run1, run2 = build_store(tmp_path_factory.mktemp("endpoint-store"))
    store.runs_under_test = (run1, run2)
    yield store
    store.close()


_counter = itertools.count()


def _endpoint(server: PostgresServer | MariaDbServer, kind: str, password: str | None = None,
              database: str | None = None) -> EndpointSettings:
    database = database or server.create_database(f"export_{next(_counter)}")
    return EndpointSettings(
        name="warehouse", kind=kind, host=server.host, port=server.port, database=database, user=server.user,
        password=Secret(PASSWORD_ENV, password or server.password),
        schema="sf" if kind == "postgresql" else None, sslmode="disable")


@pytest.fixture(params=["postgresql", "mysql"])
def target(request) -> tuple[str, PostgresServer | MariaDbServer]:
    kind = request.param
    return kind, request.getfixturevalue("postgres_server" if kind == "postgresql" else "mariadb_server")


def _fetch(server: Any, ep: EndpointSettings, table: str, columns: list[str]) -> list[tuple]:
    """All rows of a target table (named columns, ordered by Id), as the driver returns them."""
    if ep.kind == "postgresql":
        import psycopg
        from psycopg import sql

        with psycopg.connect(server.dsn(ep.database)) as con:
            query = sql.SQL("SELECT {} FROM {}.{} ORDER BY 1").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(ep.schema),
                sql.Identifier(table))
            return con.execute(query).fetchall()
    with server.connect(ep.database) as con, con.cursor() as cur:
        cols = ", ".join(f"`{c}`" for c in columns)
        cur.execute(f"SELECT {cols} FROM `{table}` ORDER BY 1")
        return list(cur.fetchall())


def _target_columns(server: Any, ep: EndpointSettings, table: str) -> list[str]:
    if ep.kind == "postgresql":
        import psycopg

        with psycopg.connect(server.dsn(ep.database)) as con:
            return [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s ORDER BY ordinal_position", [ep.schema, table]).fetchall()]
    with server.connect(ep.database) as con, con.cursor() as cur:
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                    "AND table_name = %s ORDER BY ordinal_position", [ep.database, table])
        return [r[0] for r in cur.fetchall()]


def _normal(value: Any, store_value: Any, kind: str) -> Any:
    """A MySQL value in the store's Python type: TINYINT(1) -> bool, naive UTC DATETIME -> aware,
    TIME -> time (pymysql gives timedelta), blob bytes -> the sha text the store keeps."""
    if value is None or (kind == "postgresql" and not isinstance(value, bytes)):
        return value
    if isinstance(store_value, bool):
        return bool(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC)
    if isinstance(value, dt.timedelta):
        return (dt.datetime.min + value).time()
    if isinstance(value, bytes):
        return value.decode()
    return value


def assert_same_as_store(store: SnapshotStore, server: Any, ep: EndpointSettings, obj: str,
                         run_id: int) -> None:
    """Every value of the object as of the run equals the target table's (and extra columns are NULL)."""
    expected = read_as_of(store, obj, run_id).read_all()
    names = expected.column_names
    table = short_name(obj, ep.kind)
    columns = column_names(names, ep.kind)
    extra = [c for c in _target_columns(server, ep, table) if c not in columns]
    rows = _fetch(server, ep, table, columns + extra)
    assert len(rows) == expected.num_rows > 0
    for want, got in zip(expected.to_pylist(), rows, strict=True):
        assert all(v is None for v in got[len(columns):]), f"{obj} {want['Id']}: extra columns not NULL"
        values = {n: _normal(v, want[n], ep.kind) for n, v in zip(names, got, strict=False)}
        assert values == want


def test_round_trip_of_every_type_and_nasty_string(store, target):
    kind, server = target
    run1, _ = store.runs_under_test
    ep = _endpoint(server, kind)
    report = load_endpoint(store, ep, run1, ["Account", LONG_OBJECT, "Document"])
    assert [(t.object, t.rows, t.created) for t in report.tables] == [
        ("Account", 1500, True), (LONG_OBJECT, 1, True), ("Document", 3, True)]
    assert report.tables[1].table == short_name(LONG_OBJECT, kind) != LONG_OBJECT
    for obj in ("Account", LONG_OBJECT, "Document"):
        assert_same_as_store(store, server, ep, obj, run1)
    names = _target_columns(server, ep, "Account")
    assert LONG_FIELD not in names and column_names([LONG_FIELD], kind)[0] in names
    # NULL and '' stay apart, and the word NULL is text.
    rows = {r[0]: r[1] for r in _fetch(server, ep, "Account", ["Id", "Description"])}
    assert rows["001Dn0000000005AAA"] == "" and rows["001Dn0000000000AAA"] is None
    assert dict(_fetch(server, ep, "Account", ["Id", "Name"]))["001Dn0000000006AAA"] == "NULL #6"


def test_new_field_becomes_a_column_and_reexport_is_idempotent(tmp_path, target):
    kind, server = target
    ep = _endpoint(server, kind)
    store, stager, run1 = first_run(tmp_path)
    load_endpoint(store, ep, run1, ["Account"])
    before = _target_columns(server, ep, "Account")
    assert "Rating__c" not in before
    run2 = second_run(store, stager)
    report = load_endpoint(store, ep, run2, ["Account"])
    assert report.tables[0].added_columns == ["Rating__c"] and not report.tables[0].created
    assert _target_columns(server, ep, "Account") == [*before, "Rating__c"]
    assert report.tables[0].rows == 1499  # one record deleted in run 2
    assert_same_as_store(store, server, ep, "Account", run2)
    snapshot = _fetch(server, ep, "Account", _target_columns(server, ep, "Account"))
    again = load_endpoint(store, ep, run2, ["Account"])
    assert again.tables[0].added_columns == [] and again.rows == 1499
    assert _fetch(server, ep, "Account", _target_columns(server, ep, "Account")) == snapshot
    # Going back to run 1 keeps the new column (NULL everywhere) and restores run 1's rows.
    load_endpoint(store, ep, run1, ["Account"])
    assert_same_as_store(store, server, ep, "Account", run1)
    store.close()


def test_wrong_password_is_a_clear_error_without_the_password(store, target):
    kind, server = target
    run1, _ = store.runs_under_test
    wrong = "Wr0ng-Secret-4242"
    ep = _endpoint(server, kind, password=wrong, database="replicator")
    with pytest.raises(EndpointError) as info:
        load_endpoint(store, ep, run1, ["Account"])
    text = str(info.value)
    assert wrong not in text and server.password not in text
    assert "cannot connect" in text and "'warehouse'" in text and f"{server.host}:{server.port}" in text
    assert ("password authentication failed" if kind == "postgresql" else "Access denied") in text


def test_unreachable_server_is_a_clear_error(store, postgres_server):
    from dbservers import free_port

    ep = EndpointSettings(name="gone", kind="postgresql", host="127.0.0.1", port=free_port(),
                          database="x", user="u", password=Secret("X", "pw"), schema="public",
                          sslmode="disable")
    with pytest.raises(EndpointError, match=r"endpoint 'gone' \(postgresql://u@127.0.0.1:\d+/x/public\): "
                                            r"cannot connect"):
        load_endpoint(store, ep, store.runs_under_test[0], ["Account"])


def test_export_from_config_records_the_ledger(tmp_path, tmp_config, postgres_server, mariadb_server):
    store, run1, run2 = build_store(tmp_path / "store")
    store.close()
    pg_db = postgres_server.create_database("from_config")
    my_db = mariadb_server.create_database("from_config")
    path = tmp_config(f"""
        [storage]
        path = "store"
        [endpoints.pg]
        kind = "postgresql"
        host = "127.0.0.1"
        port = {postgres_server.port}
        database = "{pg_db}"
        user = "{postgres_server.user}"
        password_env = "PG_PW"
        sslmode = "disable"
        [endpoints.maria]
        kind = "mysql"
        host = "127.0.0.1"
        port = {mariadb_server.port}
        database = "{my_db}"
        user = "{mariadb_server.user}"
        password_env = "MY_PW"
        """)
    cfg = load_config(path, environ={"PG_PW": postgres_server.password, "MY_PW": mariadb_server.password})
    pg = export_to_endpoint(cfg, "pg", "last", ["Account"])
    assert (pg.run_id, pg.rows, pg.target) == (
        run2, 1499, f"postgresql://replicator@127.0.0.1:{postgres_server.port}/{pg_db}/public")
    maria = export_to_endpoint(cfg, "maria", str(run1))
    assert maria.run_id == run1 and {t.object for t in maria.tables} == {"Account", LONG_OBJECT, "Document"}
    with pytest.raises(ConfigError, match="no such endpoint"):
        export_to_endpoint(cfg, "nope")
    with SnapshotStore(tmp_path / "store" / "snapshot.duckdb", read_only=True) as reopened:
        ledger = reopened.exports.entries()
        assert [(e["kind"], e["run_id"], e["status"], e["rows"]) for e in ledger] == [
            ("endpoint", run2, "completed", 1499), ("endpoint", run1, "completed", 1504)]
        assert ledger[0]["objects"] == ["Account"] and ledger[0]["destination"].startswith("pg postgresql://")
        assert postgres_server.password not in str(ledger)
        pg_ep = EndpointSettings(name="pg", kind="postgresql", host="127.0.0.1", port=postgres_server.port,
                                 database=pg_db, user="replicator", password=Secret("X", ""), schema="public")
        assert_same_as_store(reopened, postgres_server, pg_ep, "Account", run2)


def test_cli_export_endpoint(tmp_path, tmp_config, postgres_server):
    from click.testing import CliRunner

    from replicator.cli import cli

    store, _, run2 = build_store(tmp_path / "store")
    store.close()
    database = postgres_server.create_database("from_cli")
    path = tmp_config(f"""
        [storage]
        path = "store"
        [endpoints.pg]
        kind = "postgresql"
        host = "127.0.0.1"
        port = {postgres_server.port}
        database = "{database}"
        user = "{postgres_server.user}"
        password_env = "PG_PW"
        schema = "crm"
        sslmode = "disable"
        """)
    args = ["--config", str(path), "export", "--endpoint", "pg"]
    result = CliRunner().invoke(cli, [*args, "--objects", "Account"], env={"PG_PW": postgres_server.password},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"1499 rows of 1 objects as of run {run2}" in result.output
    bad = CliRunner().invoke(cli, args, env={"PG_PW": "Wr0ng-Pw-77"})
    assert bad.exit_code == 1 and "password authentication failed" in bad.output
    assert "Wr0ng-Pw-77" not in bad.output
