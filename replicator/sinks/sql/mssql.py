"""SQL Server: NVARCHAR text with N'' literals (unicode kept), DATETIMEOFFSET(3) in UTC.

No server runs in the tests: scripts are parsed with sqlglot's tsql dialect and compared with golden files.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from replicator.sinks.sql.dialect import SqlDialect

__all__ = ["SqlServer"]


class SqlServer(SqlDialect):
    """SQL Server 2016 and later (DROP TABLE IF EXISTS)."""

    name = "mssql"
    title = "SQL Server"
    sqlglot = "tsql"
    name_limit = 128
    text_sizes = ((4000, "NVARCHAR({n})"), (0, "NVARCHAR(MAX)"))
    decimal = "NUMERIC({p}, {s})"
    types: ClassVar[dict[str, str]] = {
        "bool": "BIT",
        "int": "INTEGER",
        "bigint": "BIGINT",
        "double": "FLOAT",
        "date": "DATE",
        "datetime": "DATETIMEOFFSET(3)",
        "time": "TIME(3)",
        "blob": "VARBINARY(MAX)",
    }
    type_notes: ClassVar[dict[str, str]] = {"blob": ", `0x..`"}

    session = ("SET NOCOUNT ON;", "SET XACT_ABORT ON;")
    begin = "BEGIN TRANSACTION;"
    note = "Datetimes are DATETIMEOFFSET(3) in UTC; text is NVARCHAR with N'' literals."
    rows_per_insert = 1000  # SQL Server's limit for a VALUES list

    # Line breaks are spliced in too, so no line of a value can stand alone in the script (sqlcmd reads a
    # line `GO` as a batch end and `:r`, `!!` as commands); `$(` is split so sqlcmd never substitutes.
    string_escapes = (("'", "''"), ("\x00", "' + NCHAR(0) + N'"), ("\r", "' + NCHAR(13) + N'"),
                      ("\n", "' + NCHAR(10) + N'"), ("$(", "$' + N'("))
    string_open = "N'"
    date_open = "'"
    datetime_format = "%Y-%m-%dT%H:%M:%S"
    datetime_close = "+00:00'"

    def text_literals(self, arr: pa.Array) -> pa.Array:
        """N'' literals; spliced ones start from NVARCHAR(MAX), since + of short NVARCHARs truncates at
        4000 characters unless one side is MAX."""
        out = super().text_literals(arr)
        spliced = pc.match_substring_regex(pc.cast(arr, pa.string()), r"[\r\n\x00]|\$\(")
        return pc.if_else(spliced, pc.binary_join_element_wise("CAST(N'' AS NVARCHAR(MAX)) + ", out, ""), out)

    def blob_literal(self, hex_upper: str) -> str:
        """A binary constant."""
        return f"0x{hex_upper}"
