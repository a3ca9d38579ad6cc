"""Tables in a dialect: shortened column names, column types and CREATE TABLE, shared by the SQL
scripts and the endpoint loaders, so a field gets the same column name and type in both."""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from replicator.sinks.sql.dialect import SqlDialect
from replicator.sinks.sql.registry import dialect
from replicator.store.types import ColumnType

__all__ = ["column_names", "column_type", "column_types", "create_table", "quote", "short_name"]


def short_name(name: str, dialect_name: str | SqlDialect) -> str:
    """`name` if it fits the dialect's identifier limit (bytes), else a prefix + "_" + 8 hex of sha1."""
    return dialect(dialect_name).short_name(name)


def quote(name: str, dialect_name: str | SqlDialect) -> str:
    """A quoted identifier in the dialect's syntax (the name must already be shortened)."""
    return dialect(dialect_name).quote(name)


def column_names(names: Sequence[str], dialect_name: str | SqlDialect) -> list[str]:
    """Shortened, deduplicated column names (case-insensitively: MySQL and SQL Server fold case).

    Stable as long as columns are only appended: a clash gets the next free counter suffix.
    """
    d = dialect(dialect_name)
    taken: set[str] = set()
    out = []
    for name in names:
        short = d.short_name(name)
        n = 1
        while short.casefold() in taken:
            n += 1
            short = d.short_name(f"{name}~{n}")
        taken.add(short.casefold())
        out.append(short)
    return out


def column_type(col: ColumnType, dialect_name: str | SqlDialect) -> exp.DataType:
    """One column's type in the dialect as a sqlglot AST (without any table's row-size budget)."""
    d = dialect(dialect_name)
    return exp.DataType.build(d.type_text(col), dialect=d.sqlglot)


def column_types(cols: Sequence[ColumnType], dialect_name: str | SqlDialect) -> list[exp.DataType]:
    """Types for a whole table (MySQL: VARCHAR while the row-size budget lasts, then TEXT), so
    appending columns never changes earlier ones."""
    return dialect(dialect_name).column_types(cols)


def create_table(table: str, cols: Sequence[ColumnType], dialect_name: str | SqlDialect, *,
                 primary_key: str | None = "Id") -> exp.Create:
    """CREATE TABLE for `cols` (names shortened here; `table` too), with the dialect's constraints
    (Oracle booleans: CHECK (0, 1)) and table properties (MySQL: InnoDB utf8mb4)."""
    d = dialect(dialect_name)
    names = column_names([c.name for c in cols], d)
    defs = []
    for c, name, dtype in zip(cols, names, d.column_types(cols), strict=True):
        constraints = []
        if c.name == primary_key:
            constraints += [exp.ColumnConstraint(kind=exp.NotNullColumnConstraint()),
                            exp.ColumnConstraint(kind=exp.PrimaryKeyColumnConstraint())]
        constraints += d.constraints(c, name)
        defs.append(exp.ColumnDef(this=exp.to_identifier(name, quoted=True), kind=dtype,
                                  constraints=constraints or None))
    target = exp.Table(this=exp.to_identifier(d.short_name(table), quoted=True))
    return exp.Create(this=exp.Schema(this=target, expressions=defs), kind="TABLE",
                      properties=d.table_properties())
