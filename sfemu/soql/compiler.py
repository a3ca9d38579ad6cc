"""SOQL -> DuckDB SQL over the store's tables (one table per sObject, see store.py).

The SQL selects exactly the columns described by `CompiledQuery.columns`, takes every literal as a
bound parameter and quotes every identifier. Deleted rows (`_DeletedAt` set) are invisible unless the
caller asks for queryAll semantics.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count

from sfemu.schema import NUMBER_TYPES, Field, Schema, SObject
from sfemu.soql import ast
from sfemu.soql.bulk import check_bulk
from sfemu.soql.compiled import ChildQuery, Column, CompiledQuery
from sfemu.soql.errors import ErrorFactory, SoqlError
from sfemu.soql.filters import DATE_FUNCTIONS, IDS, Filters
from sfemu.soql.parser import parse
from sfemu.soql.scope import Scope
from sfemu.store import quote

MAX_OFFSET = 2000
ExtraWhere = Callable[[str], tuple[str, list]]
FIELDS_LIMIT = 200


def compile_query(text: str, schema: Schema, *, include_deleted: bool = False, bulk: bool = False,
                  now: datetime, tz: str = "America/Los_Angeles",
                  extra_where: ExtraWhere | None = None) -> CompiledQuery:
    """Compile one SOQL statement; every problem with the text is a SoqlError.

    `extra_where(alias)` adds a condition (SQL with `?` placeholders, its parameters) on the main
    object's rows: SOSL uses it for its search terms, which SOQL itself cannot express.
    """
    err = ErrorFactory(text)
    try:
        query = parse(text, err)
        compiler = _Compiler(schema, err, include_deleted, now, tz, extra_where)
        compiled = compiler.main(query)
        if bulk:
            check_bulk(query, compiled)
        return compiled
    except RecursionError:
        raise SoqlError("MALFORMED_QUERY", "The query is nested too deeply.") from None


@dataclass
class _Select:
    """Result columns being built for one statement."""

    exprs: list[str] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    seen: set[tuple[str, ...]] = field(default_factory=set)

    def add(self, sql: str, column: Column) -> None:
        self.exprs.append(f"{sql} AS {quote(column.name)}")
        self.columns.append(column)

    def next_name(self) -> str:
        return f"c{len(self.columns)}"


class _Compiler:
    def __init__(self, schema: Schema, err: ErrorFactory, include_deleted: bool, now: datetime,
                 tz: str, extra_where: ExtraWhere | None = None) -> None:
        self.schema = schema
        self.extra_where = extra_where
        self.err = err
        self.include_deleted = include_deleted
        self.now = now
        self.tz = tz
        self.aliases = count()

    # --- entry points --------------------------------------------------------------------

    def scope(self, obj: SObject, soql_alias: str | None) -> Scope:
        return Scope(self.schema, obj, f"t{next(self.aliases)}", soql_alias, self.err,
                     self.include_deleted, self.aliases)

    def filters(self, scope: Scope) -> Filters:
        return Filters(scope, self.err, self.now, self.tz, self.semi_join)

    def main(self, q: ast.Query) -> CompiledQuery:
        obj = self.schema.get(q.sobject)
        if obj is None or not obj.queryable:
            raise self.err.no_type(q.sobject_pos, q.sobject)
        scope = self.scope(obj, q.alias)
        if obj.query_requires_filter and not _has_id_filter(scope, q.where):
            raise SoqlError("MALFORMED_QUERY", obj.query_requires_filter)
        self.check_offset(q)
        aggregate = any(isinstance(i, ast.Func) and i.name not in DATE_FUNCTIONS for i in q.select) or bool(
            q.group_by)
        if aggregate:
            return self.aggregate(q, scope)
        sel = _Select()
        children = self.select(q, scope, sel)
        sel.add(f"{scope.alias}.{quote('Id')}", Column("__id", (), "id", obj.field("Id"), "Id"))
        where_params: list = []
        where = self.where(q, scope, where_params)
        if self.extra_where is not None:
            extra, extra_params = self.extra_where(scope.alias)
            where += f"{' AND' if where else ' WHERE'} ({extra})"
            where_params.extend(extra_params)
        order = self.order(q, scope, aggregate=False)
        if not order and (scope.join_sql or q.limit is not None or q.offset is not None):
            order = [f"{scope.alias}.{quote('Id')}"]
        tail, tail_params = _limit_offset(q)
        sql = (f"SELECT {', '.join(sel.exprs)} FROM {quote(obj.name)} AS {scope.alias}"
               f"{_joins(scope)}{where}{_order_sql(order)}{tail}")
        return CompiledQuery(obj, sql, where_params + tail_params, sel.columns, children=children)

    def check_offset(self, q: ast.Query) -> None:
        if q.offset is not None and q.offset > MAX_OFFSET:
            raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE",
                            f"Maximum SOQL offset allowed is {MAX_OFFSET}")

    # --- SELECT --------------------------------------------------------------------------

    def select(self, q: ast.Query, scope: Scope, sel: _Select) -> list[ChildQuery]:
        children: list[ChildQuery] = []
        for item in q.select:
            if isinstance(item, ast.SubQuery):
                children.append(self.child(item, scope))
            elif isinstance(item, ast.TypeOf):
                self.typeof(item, scope, sel)
            elif isinstance(item, ast.Fields):
                if item.kind != "STANDARD" and (q.limit is None or q.limit > FIELDS_LIMIT):
                    raise self.err.at("MALFORMED_QUERY", item.pos,
                                      f"The SOQL FIELDS function must have a LIMIT of at most {FIELDS_LIMIT}")
                for f in scope.obj.fields.values():
                    if item.kind == "ALL" or (item.kind == "CUSTOM") == f.custom:
                        self.field(scope, ast.Path([f.name], item.pos), sel, dedupe=True)
            elif isinstance(item, ast.Func):
                raise self.err.at("MALFORMED_QUERY", item.pos,
                                  f"{item.name} can only be used with GROUP BY or in an aggregate query")
            else:
                if item.alias:
                    raise self.err.unexpected(item.pos + len(item.text) + 1, item.alias)
                self.field(scope, item, sel)
        return children

    def field(self, scope: Scope, path: ast.Path, sel: _Select, dedupe: bool = False) -> None:
        r = scope.resolve(path)
        key = tuple(n.lower() for n in r.names)
        if key in sel.seen:
            if dedupe:
                return
            raise self.err.at("MALFORMED_QUERY", path.pos, f"duplicate field selected: {path.text}")
        sel.seen.add(key)
        if r.join is not None:
            self.refs(r.join.path, scope, sel)
        kind = {"address": "compound", "location": "compound", "base64": "blob"}.get(r.field.type, "field")
        sql = r.sql
        if kind == "blob":
            alias = r.join.targets[0][1] if r.join else scope.alias
            sql = f"CASE WHEN {r.sql} IS NOT NULL THEN {alias}.{quote('Id')} END"
        sel.add(sql, Column(sel.next_name(), r.names, kind, r.field, ".".join(r.names)))

    def refs(self, path: tuple[str, ...], scope: Scope, sel: _Select,
             types: tuple[str, ...] | None = None) -> None:
        """Emit a "ref" column (the related record's id) for each relationship prefix not yet emitted."""
        for n in range(1, len(path) + 1):
            key = ("#ref", *(p.lower() for p in path[:n]))
            if key in sel.seen:
                continue
            sel.seen.add(key)
            join = scope.joins[tuple(p.lower() for p in path[:n])]
            sel.add(join.id_sql(), Column(sel.next_name(), path[:n], "ref", join.lookup, ".".join(path[:n])))

    def typeof(self, item: ast.TypeOf, scope: Scope, sel: _Select) -> None:
        join, _ = scope.join(item.relationship.parts, item.relationship.pos)
        if join is None or len(item.relationship.parts) != 1:
            raise self.err.unexpected(item.relationship.pos, item.relationship.text)
        self.refs(join.path, scope, sel)
        all_types = [o.name for o, _ in join.targets]
        branches: list[tuple[list[str], list[ast.Path]]] = []
        for type_name, pos, paths in item.whens:
            target = next((t for t in all_types if t.lower() == type_name.lower()), None)
            if target is None:
                raise self.err.at("INVALID_FIELD", pos, f"Invalid TYPEOF type: {type_name}")
            branches.append(([target], paths))
        listed = {t for types, _ in branches for t in types}
        rest = [t for t in all_types if t not in listed]
        if rest:
            branches.append((rest, item.else_fields))
        wanted: dict[str, tuple[ast.Path, list[str]]] = {}  # field name -> (first mention, its types)
        for types, paths in branches:
            for p in paths:
                if len(p.parts) != 1:
                    raise self.err.unexpected(p.pos, p.text)
                scope.polymorphic_field(join, p.parts[0], p.pos, types)  # validates the field per type
                _, seen = wanted.setdefault(p.parts[0].lower(), (p, []))
                seen.extend(types)
        for p, types in wanted.values():
            r = scope.polymorphic_field(join, p.parts[0], p.pos, types)
            column = Column(sel.next_name(), r.names, "field", r.field, ".".join(r.names), tuple(types))
            sel.add(r.sql, column)

    def child(self, item: ast.SubQuery, parent: Scope) -> ChildQuery:
        q = item.query
        rel = self.schema.child_relationship(parent.obj.name, q.sobject)
        if rel is None:
            raise self.err.no_relationship(q.sobject_pos, q.sobject, "FROM part of query call")
        if any(isinstance(i, ast.Func) for i in q.select) or q.group_by:
            raise self.err.at("MALFORMED_QUERY", item.pos,
                              "Aggregate functions are not supported in subqueries")
        if q.offset is not None:
            raise self.err.unexpected(q.offset_pos, "OFFSET")
        scope = self.scope(rel.child, q.alias)
        fk = f"{scope.alias}.{quote(rel.field.name)}"
        sel = _Select()
        sel.add(fk, Column("__parent", (), "parent", rel.field, ""))
        self.select(q, scope, sel)
        sel.add(f"{scope.alias}.{quote('Id')}", Column("__id", (), "id", rel.child.field("Id"), "Id"))
        params: list = []
        head = ""
        if q.limit is not None:
            head = f"WITH {quote('__limit')} AS (SELECT CAST(? AS BIGINT) AS n) "
            params.append(q.limit)
        where = self.where(q, scope, params)
        where += f"{' AND' if where else ' WHERE'} {fk} IN (SELECT unnest(CAST(? AS VARCHAR[])))"
        order = [*self.order(q, scope, aggregate=False), f"{scope.alias}.{quote('Id')}"]
        qualify = ""
        if q.limit is not None:
            qualify = (f" QUALIFY row_number() OVER (PARTITION BY {fk} ORDER BY {', '.join(order)})"
                       f" <= (SELECT n FROM {quote('__limit')})")
        sql = (f"{head}SELECT {', '.join(sel.exprs)} FROM {quote(rel.child.name)} AS {scope.alias}"
               f"{_joins(scope)}{where}{qualify}{_order_sql([fk, *order])}")
        compiled = CompiledQuery(rel.child, sql, params, sel.columns)
        return ChildQuery(rel.relationship_name, compiled)

    # --- WHERE / ORDER BY ----------------------------------------------------------------

    def where(self, q: ast.Query, scope: Scope, params: list) -> str:
        conds = [] if self.include_deleted else [scope.live(scope.alias)]
        if q.where is not None:
            conds.append(self.filters(scope).condition(q.where, params))
        return f" WHERE {' AND '.join(conds)}" if conds else ""

    def semi_join(self, q: ast.Query, params: list) -> str:
        """`Id IN (SELECT X FROM Y ...)`: the inner SELECT as SQL, its parameters appended to params."""
        obj = self.schema.get(q.sobject)
        if obj is None or not obj.queryable:
            raise self.err.no_type(q.sobject_pos, q.sobject)
        if len(q.select) != 1 or not isinstance(q.select[0], ast.Path) or q.group_by or q.offset is not None:
            raise self.err.at("MALFORMED_QUERY", q.select_pos,
                              "Invalid semi join: the subquery must select exactly one Id or reference field")
        scope = self.scope(obj, q.alias)
        r = scope.resolve(q.select[0])
        if r.field.type not in IDS:
            raise self.err.at("INVALID_FIELD", q.select[0].pos,
                              f"Invalid semi join: field '{r.field.name}' must be an Id or a reference field")
        where = self.where(q, scope, params)
        where += f"{' AND' if where else ' WHERE'} {r.sql} IS NOT NULL"
        order = self.order(q, scope, aggregate=False)
        tail, tail_params = _limit_offset(q)
        params.extend(tail_params)
        return f"SELECT {r.sql} FROM {quote(obj.name)} AS {scope.alias}{_joins(scope)}{where}" \
               f"{_order_sql(order)}{tail}"

    def order(self, q: ast.Query, scope: Scope, aggregate: bool,
              exprs: dict[str, str] | None = None) -> list[str]:
        out = []
        for item in q.order_by:
            if isinstance(item.expr, ast.Func):
                if not aggregate and item.expr.name not in DATE_FUNCTIONS:
                    raise self.err.at("MALFORMED_QUERY", item.expr.pos,
                                      f"{item.expr.name} can only be used in an aggregate query")
                sql, _ = self.func_sql(item.expr, scope)
            else:
                r = scope.resolve(item.expr)
                if not r.field.sortable:
                    raise self.err.at("INVALID_FIELD", item.expr.pos,
                                      f"field '{r.field.name}' can not be sorted in a query call")
                sql = r.sql
                if aggregate and exprs is not None and sql not in exprs:
                    raise self.err.at("MALFORMED_QUERY", item.expr.pos,
                                      f"Ordered field must be grouped or aggregated: {r.field.name}")
                if r.field.type in ("string", "textarea", "picklist", "email", "phone", "url", "combobox"):
                    sql = f"lower({sql})"
            direction = "DESC" if item.descending else "ASC"
            out.append(f"{sql} {direction} NULLS {'FIRST' if item.nulls_first else 'LAST'}")
        return out

    # --- aggregates ----------------------------------------------------------------------

    def func_sql(self, func: ast.Func, scope: Scope) -> tuple[str, Field | None]:
        """SQL of an aggregate or date function and the field it is applied to."""
        if func.arg is None:
            return "count(*)", None
        r = scope.resolve(func.arg)
        f = r.field
        if func.name in DATE_FUNCTIONS:
            if f.type not in ("date", "datetime"):
                raise self.err.at("MALFORMED_QUERY", func.arg.pos,
                                  f"{func.name} cannot be applied to field {f.name}")
            return DATE_FUNCTIONS[func.name].format(r.sql), f
        ok = f.aggregatable and (func.name not in ("SUM", "AVG") or f.type in NUMBER_TYPES)
        if not ok:
            raise self.err.at("MALFORMED_QUERY", func.arg.pos,
                              f"field {f.name} does not support aggregate operator {func.name}")
        sql = {"COUNT": "count({})", "COUNT_DISTINCT": "count(DISTINCT {})", "MIN": "min({})",
               "MAX": "max({})", "SUM": "sum({})", "AVG": "avg({})"}[func.name].format(r.sql)
        return sql, f

    def aggregate(self, q: ast.Query, scope: Scope) -> CompiledQuery:
        obj = scope.obj
        count_only = any(isinstance(i, ast.Func) and i.arg is None for i in q.select)
        if count_only and (len(q.select) > 1 or q.group_by):
            raise self.err.at("MALFORMED_QUERY", q.select_pos,
                              "COUNT() must be the only element in the SELECT list")
        params: list = []
        where = self.where(q, scope, params)
        tail, tail_params = _limit_offset(q)
        if count_only:
            body = f"SELECT 1 FROM {quote(obj.name)} AS {scope.alias}{_joins(scope)}{where}{tail}"
            sql = f"SELECT count(*) AS {quote('count')} FROM ({body})"
            column = Column("count", ("count",), "aggregate", None, "count")
            return CompiledQuery(obj, sql, params + tail_params, [column], count_only=True)
        groups: dict[str, str] = {}
        for g in q.group_by:
            if isinstance(g, ast.Func):
                if g.name not in DATE_FUNCTIONS:
                    raise self.err.at("MALFORMED_QUERY", g.pos, f"Cannot group by aggregate {g.name}")
                sql, _ = self.func_sql(g, scope)
            else:
                r = scope.resolve(g)
                if not r.field.groupable:
                    raise self.err.at("MALFORMED_QUERY", g.pos,
                                      f"field '{r.field.name}' can not be grouped in a query call")
                sql = r.sql
            groups[sql] = sql
        sel = _Select()
        expr_no = count()
        exprs: dict[str, str] = dict(groups)
        for item in q.select:
            if isinstance(item, ast.Func) and item.name not in DATE_FUNCTIONS:
                sql, f = self.func_sql(item, scope)
                exprs[sql] = sql
                kind = "aggregate"
            elif isinstance(item, ast.Path | ast.Func):
                if isinstance(item, ast.Func):
                    sql, f = self.func_sql(item, scope)
                else:
                    r = scope.resolve(item)
                    sql, f = r.sql, r.field
                if sql not in groups:
                    name = f.name if isinstance(item, ast.Path) else item.name
                    raise self.err.at("MALFORMED_QUERY", item.pos,
                                      f"Field must be grouped or aggregated: {name}")
                kind = "field"
            else:
                raise self.err.at("MALFORMED_QUERY", getattr(item, "pos", q.select_pos),
                                  "Only fields and aggregate functions can be selected in an aggregate query")
            if item.alias:
                label = item.alias
            elif isinstance(item, ast.Path):
                label = f.name
            else:
                label = f"expr{next(expr_no)}"
            if label.lower() in {c.header.lower() for c in sel.columns}:
                raise self.err.at("MALFORMED_QUERY", item.pos, f"duplicate alias: {label}")
            sel.add(sql, Column(sel.next_name(), (label,), kind, f, label))
        order = self.order(q, scope, aggregate=True, exprs=exprs)
        group_sql = f" GROUP BY {', '.join(groups)}" if groups else ""
        sql = (f"SELECT {', '.join(sel.exprs)} FROM {quote(obj.name)} AS {scope.alias}{_joins(scope)}"
               f"{where}{group_sql}{_order_sql(order)}{tail}")
        return CompiledQuery(obj, sql, params + tail_params, sel.columns, aggregate=True)


def _joins(scope: Scope) -> str:
    return "".join(" " + j for j in scope.join_sql)


def _order_sql(order: list[str]) -> str:
    return f" ORDER BY {', '.join(order)}" if order else ""


def _limit_offset(q: ast.Query) -> tuple[str, list]:
    sql, params = "", []
    if q.limit is not None:
        sql += " LIMIT ?"
        params.append(q.limit)
    if q.offset is not None:
        sql += " OFFSET ?"
        params.append(q.offset)
    return sql, params


def _has_id_filter(scope: Scope, where: ast.Condition | None) -> bool:
    """Objects like ContentDocumentLink need an ANDed `=` or IN filter on a field their message names."""
    if where is None:
        return False
    named = set(re.findall(r"\w+", (scope.obj.query_requires_filter or "").lower()))
    items = where.items if isinstance(where, ast.BoolOp) and where.op == "AND" else [where]
    for c in items:
        ok_op = (isinstance(c, ast.Compare) and c.op == "=") or (isinstance(c, ast.InList) and not c.negated)
        if ok_op and isinstance(c.left, ast.Path):
            parts, _ = scope.strip_prefix(c.left)
            if len(parts) == 1 and parts[0].lower() in named and scope.obj.field(parts[0]) is not None:
                return True
    return False
