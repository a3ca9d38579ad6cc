"""The SQL dialects by name: the one list the CLI's choices, the endpoint loaders and the README's type
table are read from. Adding a dialect is one class here."""

from __future__ import annotations

from replicator.sinks.sql.dialect import SqlDialect
from replicator.sinks.sql.mssql import SqlServer
from replicator.sinks.sql.mysql import MySQL
from replicator.sinks.sql.oracle import Oracle
from replicator.sinks.sql.postgresql import PostgreSQL

__all__ = ["DIALECTS", "dialect"]

DIALECTS: dict[str, SqlDialect] = {d.name: d for d in (PostgreSQL(), MySQL(), Oracle(), SqlServer())}


def dialect(name: str | SqlDialect) -> SqlDialect:
    """The dialect called `name` (a dialect passes through); an unknown name is a ValueError naming the
    choices."""
    if isinstance(name, SqlDialect):
        return name
    if name not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {name!r} (choose from {', '.join(DIALECTS)})")
    return DIALECTS[name]
