"""One conformance suite over the SQL dialect registry: the same awkward values through every dialect.

NULL versus empty string, U+0000, CRLF and a lone CR, tabs, quotes and backslashes, identifiers too
long for the dialect, file bodies, datetimes with milliseconds and booleans. PostgreSQL and MySQL
(MariaDB) scripts are executed by their clients and the endpoint loaders load the same rows, both
against real servers, and every value is read back; Oracle and SQL Server scripts are parsed with
sqlglot's dialects and checked statically. A new dialect in the registry joins every test here.
"""

from __future__ import annotations

import io
import os
import re
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp
from test_export_sql import client

from replicator.config import ConfigError, EndpointSettings, Secret, load_config
from replicator.sinks.endpoints.loader import TableSource
from replicator.sinks.endpoints.registry import LOADERS, load
from replicator.sinks.sql.registry import DIALECTS
from replicator.sinks.sql.script import write_script
from replicator.sinks.sql.tables import column_names, short_name
from replicator.store.types import ColumnType

LONG_A = "Conformance_" + "Very_Long_Field_Name_" * 7 + "A__c"  # 164 bytes: over every limit
LONG_B = "Conformance_" + "Very_Long_Field_Name_" * 7 + "B__c"
TABLE = "Conformance_Object_With_A_Name_Longer_Than_Thirty_Bytes__c"
COLUMNS = [ColumnType("Id", "text", 18), ColumnType("Text", "text", 255), ColumnType(LONG_A, "text", 40),
           ColumnType(LONG_B, "text", 40), ColumnType("Body", "blob"), ColumnType("At", "datetime"),
           ColumnType("Flag", "bool")]
TEXTS = {  # case -> value of the Text column
    "null": None, "empty": "", "nul": "a\x00b", "crlf": "one\r\ntwo", "lone_cr": "one\rtwo",
    "tab": "a\tb", "quotes": "it's \"quoted\" \\ back\\slash \\' \\\\ ends\\", "unicode": "😀 ünï 中文",
    # Lines that script clients would read as their own commands if a value's line stood alone.
    "client_lines": "x\nGO\n/\n.\n@evil.sql\n#host id\n:r /etc/passwd\n!!id\n\\! id\ndelimiter //\nend",
    "sqlcmd_variable": "$(PATH) and $(SQLCMDUSER)",
}
AT = datetime(2024, 2, 29, 23, 59, 59, 123000, tzinfo=UTC)
BODIES = [b"\x00\x01\xfe\xff", b"", None]
LIMITS = {"postgresql": 63, "mysql": 64, "oracle": 30, "mssql": 128}
EXECUTED = ("postgresql", "mysql")


def rows() -> list[dict[str, Any]]:
    return [{"Id": f"a0C{n:015d}", "Text": text, LONG_A: "a" if n % 2 else "",
             LONG_B: None if n % 3 else "b", "Body": BODIES[n % 3], "At": None if n == 5 else AT,
             "Flag": [True, False, None][n % 3]}
            for n, text in enumerate(TEXTS.values())]


def batch() -> pa.RecordBatch:
    schema = pa.schema([("Id", pa.string()), ("Text", pa.string()), (LONG_A, pa.string()),
                        (LONG_B, pa.string()), ("Body", pa.binary()), ("At", pa.timestamp("us", tz="UTC")),
                        ("Flag", pa.bool_())])
    return pa.RecordBatch.from_pylist(rows(), schema=schema)


def script(dialect: str) -> str:
    out = io.StringIO()
    assert write_script(out, TABLE, 7, COLUMNS, [batch()], dialect) == len(TEXTS)
    return out.getvalue()


def expected(dialect: str) -> list[dict[str, Any]]:
    """What a server gives back: everything as written, except PostgreSQL's U+0000 (U+FFFD)."""
    out = rows()
    if dialect == "postgresql":
        for r in out:
            r["Text"] = r["Text"] and r["Text"].replace("\x00", "\ufffd")
    return out


# -- the registry's own rules ------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_identifiers_shortened_stably_and_deduplicated(dialect: str) -> None:
    long_a, long_b = "A" * 70 + "__c", "A" * 70 + "x__c"
    limit = LIMITS[dialect]
    assert DIALECTS[dialect].name_limit == limit
    names = column_names(["Id", long_a, long_b, long_a.lower()], dialect)
    assert all(len(n.encode()) <= limit for n in names)
    assert len({n.casefold() for n in names}) == 4
    assert names == column_names(["Id", long_a, long_b, long_a.lower()], dialect)
    assert short_name("Account", dialect) == "Account"


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_script_has_no_raw_cr_or_nul_and_names_fit(dialect: str) -> None:
    """psql and sqlcmd drop a CR before a line end and C strings end at NUL: neither may be raw."""
    text = script(dialect)
    assert "\r" not in text and "\x00" not in text
    names = column_names([c.name for c in COLUMNS], dialect)
    table = short_name(TABLE, dialect)
    assert all(len(n.encode()) <= LIMITS[dialect] for n in [*names, table])
    assert len({n.casefold() for n in names}) == len(COLUMNS)
    assert DIALECTS[dialect].quote(table) in text


# -- Oracle and SQL Server: static ---------------------------------------------------------------------

# How the clients split a script into commands, line by line: sqlcmd ends a batch at a line `GO` and
# runs lines starting with `:` or `!!` as commands, and substitutes `$(name)` anywhere, even inside
# literals; SQL*Plus ends a statement at a line `/` or `.`, runs `@file` and `#command` (SQLPREFIX).
CLIENT_LINES = {"mssql": re.compile(r"^\s*(GO\b|:|!!)", re.I), "oracle": re.compile(r"^\s*([/.]\s*$|@|#)")}


@pytest.mark.parametrize("dialect", list(CLIENT_LINES))
def test_no_line_of_a_value_stands_alone_for_sqlcmd_or_sqlplus(dialect: str) -> None:
    text = script(dialect)
    own = [line for line in text.splitlines() if CLIENT_LINES[dialect].match(line)]
    if dialect == "oracle":  # the script's own PL/SQL blocks end with `/` after `END;`
        lines = text.splitlines()
        assert all(lines[i - 1] == "END;" for i, line in enumerate(lines) if line.strip() == "/")
        own = [line for line in own if line.strip() != "/"]
    assert own == []
    if dialect == "mssql":
        assert "$(" not in text
    values = dict(zip(TEXTS, _values(text, dialect), strict=True))
    code = values["client_lines"][1].sql(DIALECTS[dialect].sqlglot)
    assert "\n" not in code and code.upper().count("CHAR(10)" if dialect == "mssql" else "CHR(10)") == 10


def _values(text: str, dialect: str) -> list[list[exp.Expression]]:
    """The VALUES rows of every INSERT, parsed in sqlglot's dialect (SQL*Plus and PL/SQL lines left out)."""
    d = DIALECTS[dialect]
    body = "\n".join(line for line in text.splitlines()
                     if line not in d.session and not line.startswith("--"))
    parsed = [s for s in sqlglot.parse(body, read=d.sqlglot) if s is not None]
    assert not [s for s in parsed if isinstance(s, exp.Command) and s.name.upper() != "SET"]
    return [list(t.expressions) for s in parsed if isinstance(s, exp.Insert) for t in s.find_all(exp.Tuple)]


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d not in EXECUTED])
def test_static_values(dialect: str) -> None:
    values = _values(script(dialect), dialect)
    assert len(values) == len(TEXTS)
    by_case = dict(zip(TEXTS, values, strict=True))
    text = 1  # column positions as in COLUMNS
    assert isinstance(by_case["null"][text], exp.Null)
    empty = by_case["empty"][text]
    assert isinstance(empty, exp.National | exp.Literal) and empty.name == ""
    # a CR or NUL is spliced in as a function call (CHR / NCHAR), never a raw character
    for case, code in (("crlf", "13"), ("lone_cr", "13"), ("nul", "0")):
        sql = by_case[case][text].sql(DIALECTS[dialect].sqlglot)
        assert re.search(rf"N?CHA?R\({code}\)", sql.upper()), sql
    assert "\t" in by_case["tab"][text].sql(DIALECTS[dialect].sqlglot)
    quoted = by_case["quotes"][text]
    assert quoted.name == TEXTS["quotes"]  # only quotes are doubled, backslashes are plain text
    rendered = [v.sql(DIALECTS[dialect].sqlglot) for v in by_case["null"]]
    assert ".123" in rendered[5] and "+00:00" in rendered[5]
    assert rendered[6] == "1" and by_case["empty"][6].sql() == "0"
    assert "0001FEFF" in rendered[4].upper()


# -- PostgreSQL and MariaDB: executed ------------------------------------------------------------------


def _read_back(dialect: str, server: Any, database: str, schema: str | None) -> list[dict[str, Any]]:
    """The conformance table's rows, columns under their field names, values in the store's Python types."""
    names = column_names([c.name for c in COLUMNS], dialect)
    table = short_name(TABLE, dialect)
    if dialect == "postgresql":
        import psycopg
        from psycopg import sql

        target = sql.Identifier(schema, table) if schema else sql.Identifier(table)
        with psycopg.connect(server.dsn(database)) as con:
            query = sql.SQL("SELECT {} FROM {} ORDER BY 1").format(
                sql.SQL(", ").join(sql.Identifier(n) for n in names), target)
            got = con.execute(query).fetchall()
    else:
        with server.connect(database) as con, con.cursor() as cur:
            cur.execute(f"SELECT {', '.join(f'`{n}`' for n in names)} FROM `{table}` ORDER BY 1")
            got = [(*r[:5], r[5] and r[5].replace(tzinfo=UTC), None if r[6] is None else bool(r[6]))
                   for r in cur.fetchall()]
    return [{c.name: (bytes(v) if isinstance(v, memoryview) else v) for c, v in zip(COLUMNS, r, strict=True)}
            for r in got]


@pytest.fixture(params=EXECUTED)
def server(request) -> tuple[str, Any]:
    dialect = request.param
    fixture = "postgres_server" if dialect == "postgresql" else "mariadb_server"
    return dialect, request.getfixturevalue(fixture)


def test_executed_script_round_trips(server, tmp_path) -> None:
    dialect, srv = server
    path = tmp_path / "conformance.sql"
    path.write_text(script(dialect), encoding="utf-8", newline="\n")
    database = srv.create_database("conformance_script")
    if dialect == "postgresql":
        env = {**os.environ, "PGPASSWORD": srv.password}
        client(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", srv.host, "-p", str(srv.port),
                "-U", srv.user, "-d", database, "-f", str(path)], env=env)
    else:
        with open(path, "rb") as fh:
            client(["mysql", "--protocol=TCP", "-h", srv.host, "-P", str(srv.port), "-u", srv.user,
                    f"-p{srv.password}", database], stdin=fh)
    assert _read_back(dialect, srv, database, None) == expected(dialect)


def test_endpoint_load_round_trips(server) -> None:
    """The loader of the dialect's kind takes Arrow batches and types alone (no store) and loads the same."""
    dialect, srv = server
    assert dialect in LOADERS
    database = srv.create_database("conformance_load")
    schema = "conf" if dialect == "postgresql" else None
    ep = EndpointSettings(name="conformance", kind=dialect, host=srv.host, port=srv.port, database=database,
                          user=srv.user, password=Secret("CONFORMANCE_PW", srv.password), schema=schema,
                          sslmode="disable")
    report = load(ep, 7, [TableSource(TABLE, COLUMNS, lambda: [batch()])])
    assert [(t.table, t.rows, t.created) for t in report.tables] == [
        (short_name(TABLE, dialect), len(TEXTS), True)]
    assert _read_back(dialect, srv, database, schema) == expected(dialect)



@pytest.mark.parametrize("kind", list(DIALECTS))
def test_config_accepts_exactly_the_endpoint_kinds_with_a_loader(kind: str, tmp_config) -> None:
    """Each loader's kind is a registered dialect (its DDL, names and types are the SQL scripts'), and
    an endpoint of a dialect without a loader is refused when the config is read."""
    path = tmp_config(f"""
        [storage]
        path = "store"
        [endpoints.db]
        kind = "{kind}"
        database = "d"
        user = "u"
        password_env = "DB_PW"
        """)
    if kind in LOADERS:
        assert LOADERS[kind].dialect is DIALECTS[kind]
        assert load_config(path, environ={"DB_PW": "x"}).endpoint("db").kind == kind
    else:
        with pytest.raises(ConfigError, match="kind"):
            load_config(path, environ={"DB_PW": "x"})
