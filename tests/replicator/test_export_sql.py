"""SQL exports: PostgreSQL and MySQL scripts are executed by the real clients (psql, mysql) against real
servers and every value is compared with the store; Oracle and SQL Server scripts are checked
statically (sqlglot parses every statement in that dialect, golden files, one assertion per rule)."""

from __future__ import annotations

import io
import os
import re
import subprocess
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import sqlglot
from export_data import LONG_NAME, ExportStore, build, store_rows
from sqlglot import exp

from replicator.export import export
from replicator.sinks.sql.literals import render_literal
from replicator.sinks.sql.script import write_script
from replicator.sinks.sql.tables import column_types, short_name
from replicator.sources.snapshot import object_types
from replicator.store.types import ColumnType

GOLDEN = Path(__file__).parent / "golden"
OBJECTS = ("Thing__c", "ContentVersion")


@pytest.fixture(scope="module")
def es(tmp_path_factory: pytest.TempPathFactory) -> ExportStore:
    built = build(tmp_path_factory.mktemp("export-sql"))
    yield built
    built.store.close()


def scripts(es: ExportStore, dialect: str, out: Path) -> dict[str, Path]:
    result = export(es.store, out, run=es.run2, fmt="sql", dialect=dialect, blobs=es.blobs)
    assert result.rows == {"ContentVersion": 4, "Thing__c": 12}
    return {p.stem: p for p in result.files}


def client(command: list[str], **kwargs) -> None:
    """Run a database client on a script; its error output is the failure message."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, **kwargs)
    assert done.returncode == 0, done.stderr[-3000:]


def assert_same(expected: list[dict], got: list[dict]) -> None:
    assert len(got) == len(expected)
    for want, have in zip(expected, got, strict=True):
        assert have == want, {k: (want[k], have.get(k)) for k in want if have.get(k) != want[k]}


# -- PostgreSQL and MariaDB: executed ----------------------------------------------------------------


def test_postgresql_scripts_run_in_psql_and_round_trip(es, postgres_server, tmp_path) -> None:
    files = scripts(es, "postgresql", tmp_path)
    db = postgres_server.create_database("export_sql")
    env = {**os.environ, "PGPASSWORD": postgres_server.password}
    for obj in OBJECTS:
        for _ in range(2):  # re-running a script replaces the table
            client(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", postgres_server.host, "-p",
                    str(postgres_server.port), "-U", postgres_server.user, "-d", db, "-f", str(files[obj])],
                   env=env)
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(postgres_server.dsn(db), row_factory=dict_row) as con:
        for obj in OBJECTS:
            got = con.execute(f'SELECT * FROM "{obj}" ORDER BY "Id"').fetchall()
            assert_same(store_rows(es, obj, es.run2), got)
        types = {r["column_name"]: r["data_type"] for r in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'Thing__c'").fetchall()}
        assert types["At__c"] == "timestamp with time zone" and types["Flag__c"] == "boolean"
        assert types["Amount__c"] == "numeric" and types["Name"] == "character varying"


def _mysql_value(value, col: ColumnType):
    if value is None:
        return None
    if col.kind == "bool":
        return bool(value)
    if col.kind == "datetime":
        return value.replace(tzinfo=UTC)
    if col.kind == "time":
        return (datetime.min + value).time() if isinstance(value, timedelta) else value
    return value


def test_mysql_scripts_run_in_mariadb_client_and_round_trip(es, mariadb_server, tmp_path) -> None:
    files = scripts(es, "mysql", tmp_path)
    db = mariadb_server.create_database("export_sql")
    with mariadb_server.admin() as con, con.cursor() as cur:
        # The script must not depend on the session's sql_mode (NO_BACKSLASH_ESCAPES) or time zone.
        cur.execute("SET GLOBAL sql_mode = 'NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES'")
        cur.execute("SET GLOBAL time_zone = '+05:30'")
    try:
        for obj in OBJECTS:
            with open(files[obj], "rb") as script:
                client(["mysql", "--protocol=TCP", "-h", mariadb_server.host, "-P", str(mariadb_server.port),
                        "-u", mariadb_server.user, f"-p{mariadb_server.password}", db], stdin=script)
    finally:
        with mariadb_server.admin() as con, con.cursor() as cur:
            cur.execute("SET GLOBAL sql_mode = DEFAULT")
            cur.execute("SET GLOBAL time_zone = SYSTEM")
    import pymysql.cursors

    with mariadb_server.connect(db, cursorclass=pymysql.cursors.DictCursor) as con, con.cursor() as cur:
        for obj in OBJECTS:
            cols = {c.name: c for c in object_types(es.store, obj)}
            cur.execute(f"SELECT * FROM `{obj}` ORDER BY `Id`")
            got = [{k: _mysql_value(v, cols[k]) for k, v in row.items()} for row in cur.fetchall()]
            assert_same(store_rows(es, obj, es.run2), got)
        cur.execute("SELECT column_name, column_type FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = 'Thing__c'", (db,))
        types = {r["column_name"]: r["column_type"] for r in cur.fetchall()}
    assert types["Id"] == "varchar(18)" and types["At__c"] == "datetime(3)"
    assert types["Flag__c"] == "tinyint(1)"
    assert types["Amount__c"] == "decimal(18,2)" and types["Body__c"] == "mediumtext"


# -- Oracle and SQL Server: static checks -----------------------------------------------------------

PLSQL = re.compile(r"^DECLARE\n.*?^END;\n/\n", re.S | re.M)
SQLPLUS = ("SET DEFINE OFF", "SET SQLBLANKLINES ON")


def statements(text: str, dialect: str) -> list[exp.Expression]:
    """Every statement of a script parsed in sqlglot's dialect; none may fall back to a raw Command."""
    read = {"oracle": "oracle", "mssql": "tsql"}[dialect]
    body = PLSQL.sub("", text)
    body = "\n".join(line for line in body.splitlines() if line not in SQLPLUS and not line.startswith("--"))
    parsed = [s for s in sqlglot.parse(body, read=read) if s is not None]
    assert parsed and not [s for s in parsed if isinstance(s, exp.Command) and s.name.upper() != "SET"]
    return parsed


def literals(parsed: list[exp.Expression], kind: type[exp.Expression]) -> list[exp.Expression]:
    return [node for s in parsed for node in s.find_all(kind)]


@pytest.mark.parametrize("dialect", ["oracle", "mssql"])
def test_static_scripts_parse_and_match_golden(es, tmp_path, dialect) -> None:
    files = scripts(es, dialect, tmp_path)
    for obj, path in files.items():
        text = path.read_text(encoding="utf-8")
        golden = GOLDEN / dialect / f"{obj}.sql"
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text, encoding="utf-8")
        assert text == golden.read_text(encoding="utf-8"), f"{path} differs from {golden}"
        parsed = statements(text, dialect)
        inserts = [s for s in parsed if isinstance(s, exp.Insert)]
        assert len([r for s in inserts for r in s.find_all(exp.Tuple)]) == {"Thing__c": 12,
                                                                               "ContentVersion": 4}[obj]
        # Unquoted identifiers would fold to upper case (Oracle) or hit reserved words: none is unquoted.
        tables = [s for s in parsed if isinstance(s, exp.Create | exp.Insert | exp.Drop)]
        assert tables and all(i.quoted for s in tables for i in s.find_all(exp.Identifier))


def test_oracle_rules(es, tmp_path) -> None:
    text = scripts(es, "oracle", tmp_path)["Thing__c"].read_text(encoding="utf-8")
    create = next(s for s in statements(text, "oracle") if isinstance(s, exp.Create))
    sql = create.sql("oracle")
    # no 23ai-only syntax: BOOLEAN, IF [NOT] EXISTS, multi-row VALUES
    code = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    assert "BOOLEAN" not in code and "IF NOT EXISTS" not in code and "IF EXISTS" not in code
    assert '"Flag__c" NUMBER(1) CHECK ("Flag__c" IN (0, 1))' in sql
    for column in ('"Name" VARCHAR2(80 CHAR)', '"Body__c" CLOB', '"Amount__c" NUMBER(18, 2)',
                   '"At__c" TIMESTAMP(3) WITH TIME ZONE', '"Id" VARCHAR2(18 CHAR) NOT NULL PRIMARY KEY'):
        assert column in sql
    # identifiers longer than 30 bytes: stable hash suffix
    short = short_name(LONG_NAME, "oracle")
    assert len(short) == 30 and f'"{short}"' in sql and short == short_name(LONG_NAME, "oracle")
    assert "TO_TIMESTAMP_TZ('1999-12-31 23:59:59.999 +00:00', 'YYYY-MM-DD HH24:MI:SS.FF3 TZH:TZM')" in text
    assert "DATE '2024-02-29'" in text and "1234567890123456.78" in text
    assert "Oracle stores '' as NULL" in text
    # text over 1000 characters goes in TO_CLOB pieces (a literal holds 4000 bytes)
    assert "TO_CLOB('" + "x" * 1000 + "')\n|| TO_CLOB('" in text
    assert text.count("INSERT INTO") == 12  # one row per INSERT
    cv = scripts(es, "oracle", tmp_path / "cv")["ContentVersion"].read_text(encoding="utf-8")
    assert "HEXTORAW('68656C6C6F2000FF20776F726C64')" in cv and "EMPTY_BLOB()" in cv
    block = PLSQL.search(cv).group(0)
    assert block.count("DBMS_LOB.WRITEAPPEND(b, 2000, HEXTORAW('") == 2
    assert "DBMS_LOB.WRITEAPPEND(b, 1120," in block


def test_mssql_rules(es, tmp_path) -> None:
    text = scripts(es, "mssql", tmp_path)["Thing__c"].read_text(encoding="utf-8")
    parsed = statements(text, "mssql")
    sql = next(s for s in parsed if isinstance(s, exp.Create)).sql("tsql")
    assert "[Name] NVARCHAR(80)" in sql and "[Body__c] NVARCHAR(MAX)" in sql and "[Flag__c] BIT" in sql
    assert "[At__c] DATETIMEOFFSET(3)" in sql and "[Amount__c] NUMERIC(18, 2)" in sql
    assert "[Id] NVARCHAR(18) NOT NULL PRIMARY KEY" in sql
    # every text literal is N'' (unicode kept), none a plain '' string
    nationals = literals(parsed, exp.National)
    assert any("😀" in n.name for n in nationals)
    insert_strings = [lit for s in parsed if isinstance(s, exp.Insert)
                      for lit in s.find_all(exp.Literal) if lit.is_string]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d(T[\d:.]+\+00:00)?|[\d:.]+", lit.name) for lit in insert_strings)
    assert "'1999-12-31T23:59:59.999+00:00'" in text
    cv = scripts(es, "mssql", tmp_path / "cv")["ContentVersion"].read_text(encoding="utf-8")
    assert "0x68656C6C6F2000FF20776F726C64" in cv and "[VersionData] VARBINARY(MAX)" in cv


def test_mssql_caps_values_lists_at_1000_rows() -> None:
    cols = [ColumnType("Id", "text", 18), ColumnType("N", "int")]
    batch = pa.record_batch({"Id": [f"a{i:017d}" for i in range(2500)], "N": list(range(2500))})
    out = io.StringIO()
    assert write_script(out, "T", 1, cols, [batch], "mssql") == 2500
    parsed = [s for s in sqlglot.parse(out.getvalue(), read="tsql") if isinstance(s, exp.Insert)]
    assert [len(s.expression.expressions) for s in parsed] == [1000, 1000, 500]


def test_literals_per_dialect() -> None:
    text = ColumnType("T", "text", 100)
    nasty = "a'b\\c\nd😀"
    assert render_literal(nasty, text, "postgresql") == "'a''b\\c\nd😀'"
    assert render_literal(nasty, text, "mysql") == "'a''b\\\\c\nd😀'"
    assert render_literal(nasty, text, "mssql") == (
        "CAST(N'' AS NVARCHAR(MAX)) + N'a''b\\c' + NCHAR(10) + N'd😀'")
    assert render_literal(nasty, text, "oracle") == "'a''b\\c' || CHR(10) || 'd😀'"
    assert render_literal("$(X)", text, "mssql") == "CAST(N'' AS NVARCHAR(MAX)) + N'$' + N'(X)'"
    assert render_literal("", text, "oracle") == "''" and render_literal(None, text, "mysql") == "NULL"
    assert render_literal("a\x00b", text, "postgresql") == "'a\ufffdb'"
    blob = ColumnType("B", "blob")
    assert [render_literal(b"\x01\xab", blob, d) for d in ("postgresql", "mysql", "mssql", "oracle")] == [
        "decode('01AB', 'hex')", "X'01AB'", "0x01AB", "HEXTORAW('01AB')"]
    flag = ColumnType("F", "bool")
    assert [render_literal(True, flag, d) for d in ("postgresql", "mysql", "mssql", "oracle")] == [
        "TRUE", "TRUE", "1", "1"]
    clock = ColumnType("C", "time")
    assert render_literal(time(1, 2, 3, 4000), clock, "postgresql") == "TIME '01:02:03.004'"
    # MySQL keeps VARCHAR while the 65,535-byte row budget lasts, then TEXT for the rest
    wide = [ColumnType("Id", "text", 18)] + [ColumnType(f"F{i}", "text", 255) for i in range(80)]
    kinds = [t.sql("mysql") for t in column_types(wide, "mysql")]
    assert kinds[:50] == ["VARCHAR(18)"] + ["VARCHAR(255)"] * 49 and kinds[-1] == "TEXT"
