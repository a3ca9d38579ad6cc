"""Our type model -> SQL per dialect: column types, identifiers and literals for mysql, oracle,
postgresql and mssql.

Why our own map instead of transpiling DuckDB DDL with sqlglot: DuckDB drops VARCHAR lengths and
sqlglot maps them to CLOB / VARCHAR(MAX) / TEXT, emits 23ai-only BOOLEAN for Oracle and loses
unicode on SQL Server (see shared/stack.md section 6). So types come from the Salesforce describe
(recorded per field in the store's main.field_types) and are built as sqlglot DataType ASTs; the
endpoint loader uses the same functions for CREATE/ALTER TABLE.

Choices (also in README "Exports"):
- identifiers are always quoted; names longer than the dialect's limit (Oracle 30 bytes, for
  databases before 12.2; MySQL 64; PostgreSQL 63; SQL Server 128) keep a prefix plus "_" and the
  first 8 hex digits of the name's sha1, so the same field always gets the same column name;
- datetimes keep milliseconds and UTC: TIMESTAMPTZ(3), DATETIMEOFFSET(3), TIMESTAMP(3) WITH TIME
  ZONE; MySQL has no zoned type, so DATETIME(3) holds UTC;
- Oracle: booleans are NUMBER(1) with a CHECK (no BOOLEAN before 23ai), times of day are text
  'HH:MM:SS.fff', VARCHAR2(n CHAR) only up to 1000 characters (4000 bytes at 4 bytes per
  character) else CLOB, and '' is NULL (Oracle cannot keep an empty string apart from NULL);
- MySQL: utf8mb4; VARCHAR while the table's 65,535-byte row limit allows (4 bytes per character),
  then TEXT / MEDIUMTEXT / LONGTEXT;
- U+0000 cannot be stored in PostgreSQL text, so it becomes U+FFFD there.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from replicator.store.types import ColumnType

__all__ = [
    "DIALECTS",
    "column_names",
    "column_type",
    "column_types",
    "create_table",
    "quote",
    "render_column",
    "render_literal",
    "short_name",
]

# Our dialect names -> sqlglot's.
DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "oracle": "oracle", "mssql": "tsql"}
NAME_LIMITS = {"postgresql": 63, "mysql": 64, "oracle": 30, "mssql": 128}
ORACLE_VARCHAR_CHARS = 1000  # VARCHAR2 holds 4000 bytes; AL32UTF8 needs up to 4 per character
ORACLE_RAW_BYTES = 2000  # longest RAW a HEXTORAW literal may produce in SQL
ORACLE_CHUNK_CHARS = 1000  # an Oracle string literal holds at most 4000 bytes
MSSQL_NVARCHAR = 4000
MYSQL_VARCHAR_CHARS = 16383
MYSQL_ROW_BYTES = 60000  # InnoDB's 65,535-byte row limit, less room for fixed-size columns
ORACLE_TS_MASK = "YYYY-MM-DD HH24:MI:SS.FF3 TZH:TZM"


def _dialect(dialect: str) -> str:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (choose from {', '.join(DIALECTS)})")
    return DIALECTS[dialect]


# -- identifiers -----------------------------------------------------------------------------------

def short_name(name: str, dialect: str) -> str:
    """`name` if it fits the dialect's identifier limit (bytes), else a prefix + "_" + 8 hex of sha1."""
    limit = NAME_LIMITS[dialect] if dialect in NAME_LIMITS else NAME_LIMITS[_dialect(dialect)]
    if len(name.encode()) <= limit:
        return name
    suffix = "_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    prefix = name.encode()[:limit - len(suffix)].decode(errors="ignore")
    return prefix + suffix


def column_names(names: Sequence[str], dialect: str) -> list[str]:
    """Shortened, deduplicated column names (case-insensitively: MySQL and SQL Server fold case).

    Stable as long as columns are only appended: a clash gets the next free counter suffix.
    """
    taken: set[str] = set()
    out = []
    for name in names:
        short = short_name(name, dialect)
        n = 1
        while short.casefold() in taken:
            n += 1
            short = short_name(f"{name}~{n}", dialect)
        taken.add(short.casefold())
        out.append(short)
    return out


def quote(name: str, dialect: str) -> str:
    """A quoted identifier in the dialect's syntax (the name must already be shortened)."""
    return exp.to_identifier(name, quoted=True).sql(_dialect(dialect))


# -- column types ----------------------------------------------------------------------------------

def _text_type(col: ColumnType, dialect: str, inline: bool) -> str:
    n = col.length
    if dialect == "postgresql":
        return f"VARCHAR({n})" if 0 < n <= 10_485_760 else "TEXT"
    if dialect == "mssql":
        return f"NVARCHAR({n})" if 0 < n <= MSSQL_NVARCHAR else "NVARCHAR(MAX)"
    if dialect == "oracle":
        return f"VARCHAR2({n} CHAR)" if 0 < n <= ORACLE_VARCHAR_CHARS else "CLOB"
    if inline and 0 < n <= MYSQL_VARCHAR_CHARS:
        return f"VARCHAR({n})"
    if 0 < n <= 65535 // 4:
        return "TEXT"
    return "MEDIUMTEXT" if 0 < n <= (1 << 24) // 4 else "LONGTEXT"


_FIXED = {
    #        postgresql        mysql           oracle                            mssql
    "bool": ("BOOLEAN", "TINYINT(1)", "NUMBER(1)", "BIT"),
    "int": ("INTEGER", "INT", "NUMBER(10)", "INT"),
    "bigint": ("BIGINT", "BIGINT", "NUMBER(19)", "BIGINT"),
    "double": ("DOUBLE PRECISION", "DOUBLE", "BINARY_DOUBLE", "FLOAT"),
    "date": ("DATE", "DATE", "DATE", "DATE"),
    "datetime": ("TIMESTAMPTZ(3)", "DATETIME(3)", "TIMESTAMP(3) WITH TIME ZONE", "DATETIMEOFFSET(3)"),
    "time": ("TIME(3)", "TIME(3)", "VARCHAR2(12 CHAR)", "TIME(3)"),
    "blob": ("BYTEA", "LONGBLOB", "BLOB", "VARBINARY(MAX)"),
}
_ORDER = ("postgresql", "mysql", "oracle", "mssql")


def _type_text(col: ColumnType, dialect: str, inline: bool = True) -> str:
    if col.kind == "text":
        return _text_type(col, dialect, inline)
    if col.kind == "decimal":
        p = col.precision if 0 < col.precision <= 38 else 38
        s = min(max(col.scale, 0), p)
        return f"NUMBER({p}, {s})" if dialect == "oracle" else f"DECIMAL({p}, {s})"
    return _FIXED[col.kind][_ORDER.index(dialect)]


def column_type(col: ColumnType, dialect: str, *, inline: bool = True) -> exp.DataType:
    """The column's type in `dialect` as a sqlglot AST. `inline=False` (MySQL only) asks for a TEXT
    type instead of VARCHAR, for columns past the row-size budget (see column_types)."""
    return exp.DataType.build(_type_text(col, dialect, inline), dialect=_dialect(dialect))


def _mysql_bytes(col: ColumnType, sql_type: str) -> int:
    if sql_type.startswith("VARCHAR("):
        return col.length * 4 + 2
    return 12 if "TEXT" in sql_type or "BLOB" in sql_type else 17


def column_types(cols: Sequence[ColumnType], dialect: str) -> list[exp.DataType]:
    """Types for a whole table: like column_type, plus MySQL's row-size budget (columns in order get
    VARCHAR while it lasts, later long ones get TEXT), so appending columns never changes earlier ones."""
    if dialect != "mysql":
        return [column_type(c, dialect) for c in cols]
    out, used = [], 0
    for c in cols:
        inline = _type_text(c, dialect, True)
        size = _mysql_bytes(c, inline)
        if inline.startswith("VARCHAR(") and used + size > MYSQL_ROW_BYTES:
            inline = _type_text(c, dialect, False)
            size = _mysql_bytes(c, inline)
        used += size
        out.append(exp.DataType.build(inline, dialect="mysql"))
    return out


def create_table(table: str, cols: Sequence[ColumnType], dialect: str, *,
                 primary_key: str | None = "Id") -> exp.Create:
    """CREATE TABLE for `cols` (names shortened here; `table` too). Oracle booleans get a CHECK (0, 1);
    MySQL tables are InnoDB utf8mb4."""
    names = column_names([c.name for c in cols], dialect)
    defs = []
    for c, name, dtype in zip(cols, names, column_types(cols, dialect), strict=True):
        constraints = []
        if c.name == primary_key:
            constraints += [exp.ColumnConstraint(kind=exp.NotNullColumnConstraint()),
                            exp.ColumnConstraint(kind=exp.PrimaryKeyColumnConstraint())]
        if c.kind == "bool" and dialect == "oracle":
            check = exp.In(this=exp.column(name, quoted=True),
                           expressions=[exp.Literal.number(0), exp.Literal.number(1)])
            constraints.append(exp.ColumnConstraint(kind=exp.CheckColumnConstraint(this=check)))
        defs.append(exp.ColumnDef(this=exp.to_identifier(name, quoted=True), kind=dtype,
                                  constraints=constraints or None))
    properties = None
    if dialect == "mysql":
        properties = exp.Properties(expressions=[
            exp.EngineProperty(this=exp.var("InnoDB")),
            exp.CharacterSetProperty(this=exp.var("utf8mb4"), default=True)])
    target = exp.Table(this=exp.to_identifier(short_name(table, dialect), quoted=True))
    return exp.Create(this=exp.Schema(this=target, expressions=defs), kind="TABLE", properties=properties)


# -- literals --------------------------------------------------------------------------------------

def _str(arr: pa.Array) -> pa.Array:
    return pc.cast(arr, pa.string())


def _wrap(arr: pa.Array, before: str, after: str) -> pa.Array:
    return pc.binary_join_element_wise(before, arr, after, "")


def _replace(arr: pa.Array, pairs: Sequence[tuple[str, str]]) -> pa.Array:
    for old, new in pairs:
        arr = pc.replace_substring(arr, old, new)
    return arr


# Carriage returns are spelled as a function call (or an escape): clients such as psql and sqlcmd
# normalise CRLF line ends in script files, which would silently drop a CR inside a literal.
_STRING_ESCAPES = {
    "postgresql": (("'", "''"), ("\x00", "\ufffd"), ("\r", "' || chr(13) || '")),
    "mysql": (("\\", "\\\\"), ("'", "''"), ("\x00", "\\0"), ("\r", "\\r")),
    "mssql": (("'", "''"), ("\x00", "' + NCHAR(0) + N'"), ("\r", "' + NCHAR(13) + N'")),
    "oracle": (("'", "''"), ("\x00", "' || CHR(0) || '"), ("\r", "' || CHR(13) || '")),
}


def _oracle_long(text: str) -> str:
    """A long Oracle string literal: TO_CLOB pieces of at most ORACLE_CHUNK_CHARS, one per line."""
    pieces = [text[i:i + ORACLE_CHUNK_CHARS] for i in range(0, len(text), ORACLE_CHUNK_CHARS)]
    return "\n|| ".join("TO_CLOB(" + render_literal(p, ColumnType("x", "text", 1), "oracle") + ")"
                        for p in pieces)


def _text(arr: pa.Array, dialect: str) -> pa.Array:
    arr = _str(arr)
    out = _wrap(_replace(arr, _STRING_ESCAPES[dialect]), "N'" if dialect == "mssql" else "'", "'")
    if dialect == "mssql":  # + of short NVARCHARs truncates at 4000 characters unless one side is MAX
        spliced = pc.match_substring_regex(arr, "[\r\x00]")
        out = pc.if_else(spliced, _wrap(out, "CAST(N'' AS NVARCHAR(MAX)) + ", ""), out)
    if dialect == "oracle":
        long_ = pc.greater(pc.utf8_length(arr), ORACLE_CHUNK_CHARS)
        if pc.any(long_).as_py():
            texts, rendered = arr.to_pylist(), out.to_pylist()
            flags = long_.to_pylist()
            out = pa.array([_oracle_long(t) if f else r
                            for t, r, f in zip(texts, rendered, flags, strict=True)], pa.string())
    return out


def _blob_hex(arr: pa.Array) -> list[str | None]:
    return [None if b is None else b.hex().upper() for b in arr.to_pylist()]


def _blob(arr: pa.Array, dialect: str) -> pa.Array:
    def one(h: str | None) -> str | None:
        if h is None:
            return None
        if dialect == "postgresql":
            return f"decode('{h}', 'hex')"
        if dialect == "mysql":
            return f"X'{h}'"
        if dialect == "mssql":
            return f"0x{h}"
        # Oracle: '' is NULL and a RAW literal holds 2000 bytes; longer bodies are appended afterwards
        # by sql.py with DBMS_LOB, starting from an empty BLOB.
        return f"HEXTORAW('{h}')" if 0 < len(h) <= 2 * ORACLE_RAW_BYTES else "EMPTY_BLOB()"

    return pa.array([one(h) for h in _blob_hex(arr)], pa.string())


def _datetime(arr: pa.Array, dialect: str) -> pa.Array:
    arr = pc.cast(arr, pa.timestamp("ms", tz="UTC"), safe=False)
    if dialect == "oracle":
        text = pc.strftime(arr, "%Y-%m-%d %H:%M:%S")
        return _wrap(text, "TO_TIMESTAMP_TZ('", f" +00:00', '{ORACLE_TS_MASK}')")
    if dialect == "mysql":
        return _wrap(pc.strftime(arr, "%Y-%m-%d %H:%M:%S"), "'", "'")
    if dialect == "mssql":
        return _wrap(pc.strftime(arr, "%Y-%m-%dT%H:%M:%S"), "'", "+00:00'")
    return _wrap(pc.strftime(arr, "%Y-%m-%d %H:%M:%S"), "TIMESTAMPTZ '", "+00:00'")


def _double(arr: pa.Array) -> pa.Array:
    finite = pc.is_finite(arr)  # Salesforce has no NaN/Infinity; none of the targets shares a spelling
    return _str(pc.if_else(finite, arr, pa.scalar(None, arr.type)))


def render_column(arr: pa.Array | pa.ChunkedArray, col: ColumnType, dialect: str) -> pa.Array:
    """SQL literal text for every value of a column (NULL for nulls), vectorised with Arrow compute.

    `arr` is typed as the store reads it (string, bool, int, decimal, double, date32, timestamp,
    time) or binary for blobs.
    """
    _dialect(dialect)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    kind = col.kind
    if kind == "text":
        out = _text(arr, dialect)
    elif kind == "bool":
        pair = ("TRUE", "FALSE") if dialect in ("postgresql", "mysql") else ("1", "0")
        out = pc.if_else(arr, pair[0], pair[1])
    elif kind in ("int", "bigint", "decimal"):
        out = _str(arr)
    elif kind == "double":
        out = _double(arr)
    elif kind == "date":
        out = _wrap(_str(arr), "'" if dialect == "mssql" else "DATE '", "'")
    elif kind == "datetime":
        out = _datetime(arr, dialect)
    elif kind == "time":
        text = _str(pc.cast(arr, pa.time32("ms"), safe=False))
        out = _wrap(text, "TIME '" if dialect == "postgresql" else "'", "'")
    else:
        out = _blob(arr, dialect)
    return pc.fill_null(out, "NULL")


_VALUE_TYPES = {"text": pa.string(), "bool": pa.bool_(), "int": pa.int32(), "bigint": pa.int64(),
                "double": pa.float64(), "date": pa.date32(), "datetime": pa.timestamp("ms", tz="UTC"),
                "time": pa.time32("ms"), "blob": pa.binary()}


def render_literal(value: object, col: ColumnType, dialect: str) -> str:
    """One value as a SQL literal (same rules as render_column; Python values)."""
    if value is None:
        return "NULL"
    if col.kind == "decimal":
        arr = pa.array([value], pa.decimal128(col.precision or 38, col.scale))
    else:
        if col.kind == "double" and isinstance(value, float) and not math.isfinite(value):
            return "NULL"
        arr = pa.array([value], _VALUE_TYPES[col.kind])
    return render_column(arr, col, dialect)[0].as_py()
