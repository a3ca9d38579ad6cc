"""Syntax tree of a SOQL statement, as the parser builds it (names still as the user wrote them)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Path:
    """A dotted name: `Name`, `Account.Owner.Name`, `a.Name` (alias prefix resolved later)."""

    parts: list[str]
    pos: int
    alias: str | None = None  # only meaningful in aggregate queries

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass
class Func:
    """A function over a field: aggregates in SELECT/ORDER BY, date functions in WHERE/GROUP BY."""

    name: str  # upper-cased
    arg: Path | None  # None for COUNT()
    pos: int
    alias: str | None = None


@dataclass
class Fields:
    """FIELDS(ALL | STANDARD | CUSTOM)."""

    kind: str
    pos: int


@dataclass
class TypeOf:
    relationship: Path
    whens: list[tuple[str, int, list[Path]]]  # (type name, position, fields)
    else_fields: list[Path]
    pos: int


@dataclass
class SubQuery:
    query: Query
    pos: int


@dataclass
class Literal:
    kind: str  # string | number | boolean | null | date | datetime | dateliteral
    value: object
    pos: int
    text: str
    pattern: str | None = None  # strings: LIKE pattern
    arg: int | None = None  # dateliteral: the n of LAST_N_DAYS:n


@dataclass
class Compare:
    left: Path | Func
    op: str  # = != < <= > >= LIKE
    value: Literal
    pos: int


@dataclass
class InList:
    left: Path | Func
    negated: bool
    values: list[Literal] | SubQuery
    pos: int


@dataclass
class Includes:
    left: Path
    excludes: bool
    values: list[Literal]
    pos: int


@dataclass
class BoolOp:
    op: str  # AND | OR
    items: list[Condition]


@dataclass
class Not:
    item: Condition


Condition = Compare | InList | Includes | BoolOp | Not


@dataclass
class OrderItem:
    expr: Path | Func
    descending: bool
    nulls_first: bool


@dataclass
class Query:
    select: list[Path | Func | Fields | TypeOf | SubQuery]
    sobject: str
    sobject_pos: int
    alias: str | None = None
    where: Condition | None = None
    group_by: list[Path | Func] = field(default_factory=list)
    group_pos: int = -1
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    offset_pos: int = -1
    select_pos: int = 0
