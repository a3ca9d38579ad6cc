"""WHERE clauses: SOQL conditions to SQL with bound parameters.

Salesforce semantics kept here: text compares case-insensitively, ids compare as normalized 18-char
ids, `!=` / NOT IN / EXCLUDES / NOT also match nulls, date literals are ranges in the org time zone,
and a literal of the wrong type for its field is INVALID_FIELD.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from sfemu.ids import normalize
from sfemu.schema import NUMBER_TYPES, TEXT_TYPES, Field
from sfemu.soql import ast
from sfemu.soql.dates import date_range, local_midnight_utc, local_today
from sfemu.soql.errors import ErrorFactory
from sfemu.soql.scope import Resolved, Scope

IDS = ("id", "reference")
# SOQL date functions over a date/datetime value (UTC, as Salesforce evaluates them without
# convertTimezone); fiscal year = calendar year in this org.
DATE_FUNCTIONS = {
    "CALENDAR_MONTH": "month({})", "CALENDAR_QUARTER": "quarter({})", "CALENDAR_YEAR": "year({})",
    "DAY_IN_MONTH": "day({})", "DAY_IN_WEEK": "dayofweek({}) + 1", "DAY_IN_YEAR": "dayofyear({})",
    "DAY_ONLY": "CAST({} AS DATE)", "FISCAL_MONTH": "month({})", "FISCAL_QUARTER": "quarter({})",
    "FISCAL_YEAR": "year({})", "HOUR_IN_DAY": "hour({})", "WEEK_IN_MONTH": "((day({}) - 1) // 7 + 1)",
    "WEEK_IN_YEAR": "((dayofyear({}) - 1) // 7 + 1)",
}
_TYPE_WORDS = {"boolean": "boolean", "date": "date", "datetime": "dateTime", "int": "int", "long": "long",
               "double": "double", "currency": "double", "percent": "double", "time": "time"}


class Filters:
    """Compiles conditions for one scope; `subquery` compiles semi-join subqueries (owned by the compiler)."""

    def __init__(self, scope: Scope, err: ErrorFactory, now: datetime, tz: str,
                 subquery: Callable[[ast.Query, list], str]) -> None:
        self.scope = scope
        self.err = err
        self.tz = tz
        self.today = local_today(now, tz)
        self.subquery = subquery

    def condition(self, node: ast.Condition, params: list) -> str:
        if isinstance(node, ast.BoolOp):
            return "(" + f" {node.op} ".join(self.condition(i, params) for i in node.items) + ")"
        if isinstance(node, ast.Not):
            return f"(NOT coalesce({self.condition(node.item, params)}, false))"
        left = self.operand(node.left)
        if isinstance(node, ast.Includes):
            return self.includes(left, node, params)
        if isinstance(node, ast.InList):
            return self.in_list(left, node, params)
        return self.compare(left, node, params)

    def operand(self, node: ast.Path | ast.Func) -> Resolved:
        if isinstance(node, ast.Func):
            if node.name not in DATE_FUNCTIONS:
                raise self.err.at("MALFORMED_QUERY", node.pos,
                                  "Aggregate functions are not supported in the WHERE clause; use HAVING")
            inner = self.scope.resolve(node.arg)
            if inner.field.type not in ("date", "datetime") or (
                    node.name == "HOUR_IN_DAY" and inner.field.type == "date"):
                raise self.err.at("MALFORMED_QUERY", node.arg.pos,
                                  f"{node.name} cannot be applied to field {inner.field.name}")
            ftype = "date" if node.name == "DAY_ONLY" else "int"
            f = Field(name=f"{node.name}({inner.field.name})", type=ftype)
            return Resolved(DATE_FUNCTIONS[node.name].format(inner.sql), f, inner.join, inner.names)
        r = self.scope.resolve(node)
        if not r.field.filterable:
            raise self.err.at("INVALID_FIELD", node.pos,
                              f"field '{r.field.name}' can not be filtered in a query call")
        return r

    # --- values --------------------------------------------------------------------------

    def value(self, f: Field, lit: ast.Literal, op: str) -> object:
        """Bind a literal to a field's type (None for null); dateliterals return (start, end)."""
        t = f.type
        if lit.kind == "null":
            if op not in ("=", "!=", "IN"):
                raise self.err.at("MALFORMED_QUERY", lit.pos, f"unexpected token: '{lit.text}'")
            return None
        if t in IDS:
            if lit.kind != "string":
                raise self._mismatch(f, lit, "id", quoted=True)
            if lit.value == "":
                return None
            rid = normalize(lit.value)
            if rid is None:
                raise self.err.at("INVALID_QUERY_FILTER_OPERATOR", lit.pos, f"invalid ID field: {lit.value}")
            return rid
        if t in TEXT_TYPES:
            if lit.kind != "string":
                raise self._mismatch(f, lit, "string", quoted=True)
            return lit.value.lower()
        if lit.kind == "string":
            raise self._mismatch(f, lit, _TYPE_WORDS.get(t, t), quoted=False)
        if t == "boolean" and lit.kind == "boolean":
            return lit.value
        if t in NUMBER_TYPES and lit.kind == "number":
            try:
                return int(lit.value) if t in ("int", "long") else Decimal(str(lit.value))
            except (ValueError, InvalidOperation):
                raise self._mismatch(f, lit, _TYPE_WORDS[t], quoted=False) from None
        if t in ("date", "datetime") and lit.kind == "dateliteral":
            span = date_range(lit.value, lit.arg, self.today)
            if span is None:
                raise self.err.at("MALFORMED_QUERY", lit.pos, f"unexpected token: '{lit.text}'")
            if t == "datetime":
                return tuple(local_midnight_utc(d, self.tz) for d in span)
            return span
        if t == "date" and lit.kind == "date":
            return lit.value
        if t == "datetime" and lit.kind == "datetime":
            return lit.value.astimezone(UTC).replace(tzinfo=None)
        raise self._mismatch(f, lit, _TYPE_WORDS.get(t, t), quoted=False)

    def _mismatch(self, f: Field, lit: ast.Literal, type_word: str, quoted: bool):
        if lit.kind == "dateliteral" and date_range(lit.value, lit.arg, self.today) is None:
            return self.err.at("MALFORMED_QUERY", lit.pos, f"unexpected token: '{lit.text}'")
        how = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        detail = f"value of filter criterion for field '{f.name}' must be of type {type_word} and {how}"
        return self.err.at("INVALID_FIELD", lit.pos, detail)

    # --- predicates ----------------------------------------------------------------------

    @staticmethod
    def _text(f: Field) -> bool:
        return f.type in TEXT_TYPES and f.type not in IDS

    def compare(self, left: Resolved, node: ast.Compare, params: list) -> str:
        f, col, op = left.field, left.sql, node.op
        if op == "LIKE":
            if f.type not in TEXT_TYPES or node.value.kind != "string":
                raise self.err.at("INVALID_QUERY_FILTER_OPERATOR", node.pos,
                                  f"invalid operator on field '{f.name}': LIKE is only valid on string fields"
                                  if f.type not in TEXT_TYPES else f"unexpected token: '{node.value.text}'")
            params.append(node.value.pattern)
            return f"coalesce({col} ILIKE ? ESCAPE '\\', false)"
        if f.type == "multipicklist" and op not in ("=", "!="):
            raise self.err.at("INVALID_QUERY_FILTER_OPERATOR", node.pos,
                              f"invalid operator on multipicklist field: {op}")
        value = self.value(f, node.value, op)
        if value is None:
            return f"({col} IS NULL)" if op == "=" else f"({col} IS NOT NULL)"
        if isinstance(value, tuple):
            return self._range(col, op, value, params)
        if self._text(f):
            col = f"lower({col})"
        if op == "!=":
            params.append(value)
            return f"({col} IS DISTINCT FROM ?)"
        params.append(value)
        return f"coalesce({col} {op} ?, false)"

    @staticmethod
    def _range(col: str, op: str, span: tuple[date | datetime, date | datetime], params: list) -> str:
        start, end = span
        if op == "=":
            params.extend([start, end])
            return f"coalesce({col} >= ? AND {col} < ?, false)"
        if op == "!=":
            params.extend([start, end])
            return f"({col} IS NULL OR {col} < ? OR {col} >= ?)"
        bound, sql_op = {"<": (start, "<"), "<=": (end, "<"), ">": (end, ">="), ">=": (start, ">=")}[op]
        params.append(bound)
        return f"coalesce({col} {sql_op} ?, false)"

    def in_list(self, left: Resolved, node: ast.InList, params: list) -> str:
        f, col = left.field, left.sql
        if isinstance(node.values, ast.SubQuery):
            if f.type not in IDS:
                raise self.err.at("INVALID_FIELD", node.pos,
                                  f"Invalid semi join: field '{f.name}' must be an Id or a reference field")
            sub = self.subquery(node.values.query, params)
            if node.negated:
                return f"({col} IS NULL OR {col} NOT IN ({sub}))"
            return f"coalesce({col} IN ({sub}), false)"
        if f.type == "multipicklist":
            raise self.err.at("INVALID_QUERY_FILTER_OPERATOR", node.pos,
                              "invalid operator on multipicklist field: IN")
        plain, ranges, has_null = [], [], False
        for lit in node.values:
            v = self.value(f, lit, "IN")
            if v is None:
                has_null = True
            elif isinstance(v, tuple):
                ranges.append(v)
            else:
                plain.append(v)
        target = f"lower({col})" if self._text(f) else col
        parts = []
        if plain:
            parts.append(f"{target} IN ({', '.join('?' * len(plain))})")
            params.extend(plain)
        for span in ranges:
            parts.append(self._range(col, "=", span, params))
        if has_null:
            parts.append(f"{col} IS NULL")
        sql = "coalesce(" + " OR ".join(parts) + ", false)"
        return f"(NOT {sql})" if node.negated else sql

    def includes(self, left: Resolved, node: ast.Includes, params: list) -> str:
        f, col = left.field, left.sql
        if f.type != "multipicklist":
            raise self.err.at("INVALID_QUERY_FILTER_OPERATOR", node.pos,
                              "includes or excludes operator only valid on multipicklist field")
        items = f"list_transform(string_split(lower({col}), ';'), x -> trim(x))"
        parts = []
        for lit in node.values:
            if lit.kind != "string":
                raise self._mismatch(f, lit, "string", quoted=True)
            wanted = [s.strip().lower() for s in lit.value.split(";") if s.strip()]
            parts.append(f"list_has_all({items}, ?::VARCHAR[])")
            params.append(wanted)
        sql = "coalesce(" + " OR ".join(parts) + ", false)"
        return f"(NOT {sql})" if node.excludes else sql
