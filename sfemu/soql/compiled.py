"""What the compiler hands to the query engine: the SQL plus how to shape its rows into records."""

from __future__ import annotations

from dataclasses import dataclass, field

from sfemu.schema import Field, SObject


@dataclass
class Column:
    """One result column of a compiled query.

    kind: "field" | "ref" | "compound" | "blob" | "aggregate", plus "id" for the trailing `__id` column
    and "parent" for the leading `__parent` column of a child query.
    `types` is set for TYPEOF columns: the column belongs to the related record at path[:-1] only when
    that record is of one of these sObject types (omit the key otherwise).
    """

    name: str
    path: tuple[str, ...]
    kind: str
    field: Field | None
    header: str
    types: tuple[str, ...] | None = None


@dataclass
class ChildQuery:
    relationship: str
    query: CompiledQuery


@dataclass
class CompiledQuery:
    sobject: SObject
    sql: str
    params: list
    columns: list[Column]
    count_only: bool = False
    aggregate: bool = False
    children: list[ChildQuery] = field(default_factory=list)
