"""Name resolution for one FROM object: fields, relationship paths and the LEFT JOINs they need.

Every relationship path gets its own table alias; a polymorphic lookup (Task.What) joins each
possible target and its fields are COALESCEd across them. Parents in the recycle bin are joined
away (they read as null) unless the query includes deleted rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from sfemu.schema import Field, Schema, SObject
from sfemu.soql import ast
from sfemu.soql.errors import ErrorFactory
from sfemu.store import DELETED_AT, quote


def sql_str(text: str) -> str:
    """A SQL string literal for schema names (object names in CASE expressions), never user text."""
    return "'" + text.replace("'", "''") + "'"


def column_sql(alias: str, f: Field, obj: SObject) -> str:
    """SQL for a field's value on a table alias: stored column, inlined formula or compound STRUCT."""
    if f.formula_sql is not None:
        return "(" + f.formula_sql.replace("{t}", alias) + ")"
    if f.type in ("address", "location"):
        parts = sorted((obj.field(c) for c in f.components), key=lambda c: c.compound_key or "")
        cols = [f"{alias}.{quote(c.name)}" for c in parts]
        packed = ", ".join(f"{quote(c.compound_key or c.name)} := {col}" for c, col in zip(parts, cols,
                                                                                              strict=True))
        all_null = " AND ".join(f"{col} IS NULL" for col in cols)
        return f"CASE WHEN {all_null} THEN NULL ELSE struct_pack({packed}) END"
    return f"{alias}.{quote(f.name)}"


@dataclass
class Join:
    """The parent record(s) reached by one relationship path."""

    path: tuple[str, ...]  # canonical relationship names
    lookup: Field  # the reference field followed to get here
    targets: list[tuple[SObject, str]]  # (object, SQL alias); more than one when polymorphic

    @property
    def polymorphic(self) -> bool:
        return len(self.targets) > 1

    def id_sql(self, types: list[str] | None = None) -> str:
        ids = [f"{a}.{quote('Id')}" for o, a in self.targets if types is None or o.name in types]
        return ids[0] if len(ids) == 1 else f"COALESCE({', '.join(ids)})"

    def type_sql(self) -> str:
        whens = " ".join(f"WHEN {a}.{quote('Id')} IS NOT NULL THEN {sql_str(o.name)}"
                         for o, a in self.targets)
        return f"CASE {whens} END"


@dataclass
class Resolved:
    """A field reference resolved to SQL."""

    sql: str
    field: Field
    join: Join | None  # None for a field of the FROM object itself
    names: tuple[str, ...]  # canonical path, e.g. ("Account", "Owner", "Name")


@dataclass
class Scope:
    """One FROM object inside one SQL statement."""

    schema: Schema
    obj: SObject
    alias: str
    soql_alias: str | None
    err: ErrorFactory
    include_deleted: bool
    aliases: count
    joins: dict[tuple[str, ...], Join] = field(default_factory=dict)
    join_sql: list[str] = field(default_factory=list)

    def new_alias(self) -> str:
        return f"t{next(self.aliases)}"

    def live(self, alias: str) -> str:
        return f"{alias}.{quote(DELETED_AT)} IS NULL"

    def strip_prefix(self, path: ast.Path) -> tuple[list[str], int]:
        """Drop a leading object alias (or object name) from a path; returns parts and their start pos."""
        parts = path.parts
        if len(parts) > 1:
            head = parts[0].lower()
            if (self.soql_alias and head == self.soql_alias.lower()) or (
                    head == self.obj.name.lower() and self.obj.relationship(parts[0]) is None):
                return parts[1:], path.pos + len(parts[0]) + 1
        return parts, path.pos

    def join(self, relationships: list[str], pos: int) -> tuple[Join | None, int]:
        """Join along relationship names; returns the last join (None when empty) and the next pos."""
        obj, alias, key, names = self.obj, self.alias, (), ()
        current: Join | None = None
        for name in relationships:
            if current is not None and current.polymorphic:
                raise self.err.no_relationship(pos, name)
            lookup = obj.relationship(name)
            if lookup is None or not lookup.reference_to:
                raise self.err.no_relationship(pos, name)
            key = (*key, lookup.relationship_name.lower())
            names = (*names, lookup.relationship_name)
            current = self.joins.get(key)
            if current is None:
                current = self._add_join(names, lookup, alias)
                self.joins[key] = current
            obj, alias = current.targets[0]
            pos += len(name) + 1
        return current, pos

    def _add_join(self, names: tuple[str, ...], lookup: Field, from_alias: str) -> Join:
        targets = []
        for target_name in lookup.reference_to:
            target = self.schema.get(target_name)
            alias = self.new_alias()
            cond = f"{alias}.{quote('Id')} = {from_alias}.{quote(lookup.name)}"
            if not self.include_deleted:
                cond += f" AND {self.live(alias)}"
            self.join_sql.append(f"LEFT JOIN {quote(target.name)} AS {alias} ON {cond}")
            targets.append((target, alias))
        return Join(names, lookup, targets)

    def resolve(self, path: ast.Path) -> Resolved:
        """Resolve a (possibly dotted) field reference, adding the joins it needs."""
        parts, pos = self.strip_prefix(path)
        join, pos = self.join(parts[:-1], pos)
        name = parts[-1]
        if join is None:
            f = self.obj.field(name)
            if f is None:
                raise self.err.no_column(pos, name, self.obj.name)
            return Resolved(column_sql(self.alias, f, self.obj), f, None, (f.name,))
        if not join.polymorphic:
            target, alias = join.targets[0]
            f = target.field(name)
            if f is None:
                raise self.err.no_column(pos, name, target.name)
            return Resolved(column_sql(alias, f, target), f, join, (*join.path, f.name))
        return self.polymorphic_field(join, name, pos, [o.name for o, _ in join.targets])

    def polymorphic_field(self, join: Join, name: str, pos: int, types: list[str]) -> Resolved:
        """A field of a polymorphic parent: Id, Type, or a field every candidate type has (Name)."""
        lname = name.lower()
        if lname == "type":
            f = Field(name="Type", type="picklist")
            return Resolved(join.type_sql(), f, join, (*join.path, "Type"))
        exprs, first = [], None
        for obj, alias in join.targets:
            if obj.name not in types:
                continue
            f = obj.field(name) or (obj.name_field if lname == "name" else None)
            if f is None or f.type in ("address", "location"):
                raise self.err.no_column(pos, name, "Name" if len(types) > 1 else obj.name)
            first = first or f
            exprs.append(column_sql(alias, f, obj))
        sql = exprs[0] if len(exprs) == 1 else f"COALESCE({', '.join(exprs)})"
        canonical = "Id" if lname == "id" else ("Name" if lname == "name" else first.name)
        return Resolved(sql, first, join, (*join.path, canonical))
