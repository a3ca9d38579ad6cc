"""PostgreSQL: the dialect whose scripts (and endpoint loads) the tests execute against a real server.

U+0000 cannot be stored in PostgreSQL text, so it becomes U+FFFD; carriage returns are `chr(13)` calls
because psql normalises CRLF line ends in script files.
"""

from __future__ import annotations

from typing import ClassVar

from replicator.sinks.sql.dialect import SqlDialect

__all__ = ["PostgreSQL"]


class PostgreSQL(SqlDialect):
    """PostgreSQL 12 and later (TIMESTAMPTZ(3), BYTEA, standard-conforming strings)."""

    name = "postgresql"
    title = "PostgreSQL"
    sqlglot = "postgres"
    name_limit = 63
    text_sizes = ((10_485_760, "VARCHAR({n})"), (0, "TEXT"))
    types: ClassVar[dict[str, str]] = {
        "bool": "BOOLEAN",
        "int": "INT",
        "bigint": "BIGINT",
        "double": "DOUBLE PRECISION",
        "date": "DATE",
        "datetime": "TIMESTAMPTZ(3)",
        "time": "TIME(3)",
        "blob": "BYTEA",
    }
    type_notes: ClassVar[dict[str, str]] = {"blob": ", `decode('..', 'hex')`"}

    session = ("SET client_encoding = 'UTF8';", "SET standard_conforming_strings = on;",
               "SET TIME ZONE 'UTC';")
    begin = "BEGIN;"
    note = "Datetimes are TIMESTAMPTZ(3) in UTC."

    string_escapes = (("'", "''"), ("\x00", "\ufffd"), ("\r", "' || chr(13) || '"))
    booleans = ("TRUE", "FALSE")
    time_open = "TIME '"
    datetime_open = "TIMESTAMPTZ '"
    datetime_close = "+00:00'"

    def blob_literal(self, hex_upper: str) -> str:
        """decode() of a hex string: needs no escaping and no bytea_output setting."""
        return f"decode('{hex_upper}', 'hex')"
