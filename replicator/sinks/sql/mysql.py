"""MySQL and MariaDB: utf8mb4 InnoDB tables, DATETIME(3) holding UTC (MySQL has no zoned type).

Text columns get VARCHAR while the table's 65,535-byte row limit allows (4 bytes per character), then
TEXT / MEDIUMTEXT / LONGTEXT. Literals escape backslashes and NUL, so the script turns
NO_BACKSLASH_ESCAPES off for its session, as mysqldump does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from sqlglot import exp

from replicator.sinks.sql.dialect import SqlDialect
from replicator.store.types import ColumnType

__all__ = ["MySQL"]

ROW_BYTES = 60000  # InnoDB's 65,535-byte row limit, less room for fixed-size columns


def _row_bytes(col: ColumnType, sql_type: str) -> int:
    """What a column costs of the row limit: VARCHAR its bytes, TEXT/BLOB a pointer, others at most 17."""
    if sql_type.startswith("VARCHAR("):
        return col.length * 4 + 2
    return 12 if "TEXT" in sql_type or "BLOB" in sql_type else 17


class MySQL(SqlDialect):
    """MySQL 5.7+ / MariaDB 10.3+ (the tests run MariaDB 10.11)."""

    name = "mysql"
    title = "MySQL / MariaDB"
    sqlglot = "mysql"
    name_limit = 64
    text_sizes = ((16383, "VARCHAR({n})"), (16383, "TEXT"), (4_194_304, "MEDIUMTEXT"), (0, "LONGTEXT"))
    types: ClassVar[dict[str, str]] = {
        "bool": "TINYINT(1)",
        "int": "INT",
        "bigint": "BIGINT",
        "double": "DOUBLE",
        "date": "DATE",
        "datetime": "DATETIME(3)",
        "time": "TIME(3)",
        "blob": "LONGBLOB",
    }
    type_notes: ClassVar[dict[str, str]] = {
        "text": " (utf8mb4; VARCHAR only while the 65,535-byte row budget lasts)",
        "datetime": " holding UTC (MySQL has no zoned type)",
        "blob": ", `X'..'`",
    }

    session = ("SET NAMES utf8mb4;",
               # mysqldump-style: backslash escapes must be on for the '\\' and '\0' in the literals.
               "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '');",
               "SET time_zone = '+00:00';")
    begin = "START TRANSACTION;"
    note = "Datetimes are DATETIME(3) holding UTC (MySQL has no type with a time zone); text is utf8mb4."

    string_escapes = (("\\", "\\\\"), ("'", "''"), ("\x00", "\\0"), ("\r", "\\r"))
    booleans = ("TRUE", "FALSE")

    def column_types(self, cols: Sequence[ColumnType]) -> list[exp.DataType]:
        """Columns in order get VARCHAR while the row budget lasts, later long ones TEXT, so appending
        columns never changes earlier ones."""
        out, used = [], 0
        for c in cols:
            sql_type = self.type_text(c)
            size = _row_bytes(c, sql_type)
            if sql_type.startswith("VARCHAR(") and used + size > ROW_BYTES:
                sql_type = self.type_text(c, inline=False)
                size = _row_bytes(c, sql_type)
            used += size
            out.append(exp.DataType.build(sql_type, dialect=self.sqlglot))
        return out

    def table_properties(self) -> exp.Properties:
        """InnoDB (transactions for the data) with utf8mb4 (every Unicode character)."""
        return exp.Properties(expressions=[
            exp.EngineProperty(this=exp.var("InnoDB")),
            exp.CharacterSetProperty(this=exp.var("utf8mb4"), default=True)])

    def blob_literal(self, hex_upper: str) -> str:
        """A hex literal: exact bytes whatever the connection's character set."""
        return f"X'{hex_upper}'"
