"""Salesforce formulas (a practical subset) compiled to DuckDB SQL expressions.

Validation rules, trigger/flow/workflow conditions and field updates are formulas. Compiling them
to SQL over the DML engine's staged-rows table lets every rule run set-wise, once per save, however
many records the save holds. Field references resolve against the schema (canonical names, quoted);
string literals become named bound parameters, never SQL text. Parent paths such as `Account.Name`
become LEFT JOINs; PRIORVALUE, ISCHANGED and ISNEW read the `old` table of an update.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sfemu.schema import NUMBER_TYPES, Field, Schema, SObject
from sfemu.store import quote

TEXT, NUMBER, BOOLEAN, DATE, DATETIME, ANY = "text", "number", "boolean", "date", "datetime", "any"
NEW, OLD = "s", "o"  # aliases of the staged (new values) and old tables in generated SQL

_TOKEN = re.compile(r"""
    (?P<ws>\s+|/\*.*?\*/)
  | (?P<number>\d+(?:\.\d*)?|\.\d+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>==|!=|<>|<=|>=|&&|\|\||[-+*/^&=<>!(),])
""", re.VERBOSE | re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


class FormulaError(ValueError):
    """A formula Salesforce would not save; the message names the rule it belongs to."""


@dataclass
class Expr:
    sql: str
    type: str
    field: Field | None = None  # set for a plain field reference (PRIORVALUE/ISCHANGED need one)


@dataclass
class Formula:
    """One compiled formula: its SQL, the joins and parameters it needs, and its result type."""

    sql: str
    type: str
    field: Field | None = None


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def tokenize(text: str, where: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FormulaError(f"{where}: Syntax error. Found '{text[pos]}' at position {pos + 1}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, m.group(kind), pos))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


def _cond(sql: str) -> str:
    """A boolean that is never NULL: Salesforce conditions with blank inputs are false."""
    return f"COALESCE(({sql}), FALSE)"


def _field_type(f: Field) -> str:
    if f.type in NUMBER_TYPES:
        return NUMBER
    if f.type == "boolean":
        return BOOLEAN
    if f.type == "date":
        return DATE
    if f.type == "datetime":
        return DATETIME
    return TEXT


class FormulaCompiler:
    """Compiles formulas of one object for one kind of save into SQL sharing joins and parameters.

    `has_old`: the save is an update/delete with an `old` table (aliased OLD, joined on Id); on
    inserts ISNEW() is true, ISCHANGED() false and PRIORVALUE(f) is the new value, as on Salesforce.
    """

    _names = itertools.count(1)

    def __init__(self, schema: Schema, obj: SObject, *, has_old: bool, now: datetime) -> None:
        self.schema = schema
        self.obj = obj
        self.has_old = has_old
        self.now = now.replace(tzinfo=None)
        self.params: dict[str, Any] = {}  # only parameters the SQL uses (DuckDB refuses extra ones)
        self.joins: dict[tuple[str, ...], tuple[str, SObject, str]] = {}  # path -> (alias, obj, sql)
        self._where = ""
        self._tokens: list[tuple[str, str, int]] = []
        self._i = 0

    # --- public ----------------------------------------------------------------------------

    def compile(self, text: str, where: str, expect: str | None = None) -> Formula:
        """Compile `text`; `where` names the rule for error messages; `expect` checks the result type
        (BOOLEAN results are never NULL: a condition over blank fields is false)."""
        self._where = where
        self._tokens = tokenize(str(text), where)
        self._i = 0
        expr = self._or()
        kind, value, pos = self._tokens[self._i]
        if kind != "end":
            raise FormulaError(f"{where}: Syntax error. Extra '{value}' at position {pos + 1}")
        if expect == BOOLEAN and expr.type not in (BOOLEAN, ANY):
            raise FormulaError(f"{where}: Formula result is data type ({expr.type}), incompatible with "
                               f"expected data type (true/false).")
        if expect == BOOLEAN:
            return Formula(_cond(expr.sql), BOOLEAN)
        return Formula(expr.sql, expr.type, expr.field)

    def condition(self, text: str, where: str) -> str:
        """A true/false formula as a never-NULL SQL condition."""
        return self.compile(text, where, BOOLEAN).sql

    def from_sql(self, staged: str, old: str | None) -> str:
        """`FROM staged AS s [LEFT JOIN old AS o] [parent joins]` for the compiled expressions."""
        parts = [f"FROM {staged} AS {NEW}"]
        if self.has_old and old is not None:
            parts.append(f"LEFT JOIN {old} AS {OLD} ON {OLD}.{quote('Id')} = {NEW}.{quote('Id')}")
        parts.extend(sql for _, _, sql in self.joins.values())
        return " ".join(parts)

    # --- tokens ----------------------------------------------------------------------------

    def _peek(self) -> tuple[str, str, int]:
        return self._tokens[self._i]

    def _take(self) -> tuple[str, str, int]:
        tok = self._tokens[self._i]
        self._i += 1
        return tok

    def _accept(self, *ops: str) -> str | None:
        kind, value, _ = self._peek()
        if kind == "op" and value in ops:
            self._i += 1
            return value
        return None

    def _expect(self, op: str) -> None:
        kind, value, pos = self._take()
        if kind != "op" or value != op:
            found = value or "end of formula"
            raise FormulaError(f"{self._where}: Syntax error. Missing '{op}' (found '{found}' at position "
                               f"{pos + 1})")

    # --- grammar ---------------------------------------------------------------------------

    def _or(self) -> Expr:
        left = self._and()
        while self._accept("||"):
            right = self._and()
            left = Expr(f"({_cond(left.sql)} OR {_cond(right.sql)})", BOOLEAN)
        return left

    def _and(self) -> Expr:
        left = self._compare()
        while self._accept("&&"):
            right = self._compare()
            left = Expr(f"({_cond(left.sql)} AND {_cond(right.sql)})", BOOLEAN)
        return left

    def _compare(self) -> Expr:
        left = self._additive()
        op = self._accept("=", "==", "!=", "<>", "<", "<=", ">", ">=")
        if op is None:
            return left
        right = self._additive()
        sql_op = {"==": "=", "!=": "<>"}.get(op, op)
        return Expr(f"({left.sql} {sql_op} {right.sql})", BOOLEAN)

    def _additive(self) -> Expr:
        left = self._multiplicative()
        while True:
            op = self._accept("+", "-", "&")
            if op is None:
                return left
            right = self._multiplicative()
            left = self._arith(op, left, right)

    def _arith(self, op: str, left: Expr, right: Expr) -> Expr:
        if op == "&" or (op == "+" and TEXT in (left.type, right.type)):
            return Expr(f"(COALESCE({_text(left)}, '') || COALESCE({_text(right)}, ''))", TEXT)
        if left.type == DATETIME and right.type == NUMBER:
            sign = "+" if op == "+" else "-"
            millis = f"to_milliseconds(CAST(round(({right.sql}) * 86400000) AS BIGINT))"
            return Expr(f"({left.sql} {sign} {millis})", DATETIME)
        if left.type == DATE and right.type == NUMBER:
            return Expr(f"CAST({left.sql} {op} CAST({right.sql} AS INTEGER) AS DATE)", DATE)
        if left.type == DATE and right.type == DATE and op == "-":
            return Expr(f"CAST(({left.sql} - {right.sql}) AS DOUBLE)", NUMBER)
        if left.type == DATETIME and right.type == DATETIME and op == "-":
            return Expr(f"(epoch_ms({left.sql}) - epoch_ms({right.sql})) / 86400000.0", NUMBER)
        return Expr(f"(CAST({left.sql} AS DOUBLE) {op} CAST({right.sql} AS DOUBLE))", NUMBER)

    def _multiplicative(self) -> Expr:
        left = self._power()
        while True:
            op = self._accept("*", "/")
            if op is None:
                return left
            right = self._power()
            if op == "/":
                left = Expr(f"(CAST({left.sql} AS DOUBLE) / NULLIF(CAST({right.sql} AS DOUBLE), 0))", NUMBER)
            else:
                left = Expr(f"(CAST({left.sql} AS DOUBLE) * CAST({right.sql} AS DOUBLE))", NUMBER)

    def _power(self) -> Expr:
        left = self._unary()
        if self._accept("^"):
            right = self._unary()
            return Expr(f"power(CAST({left.sql} AS DOUBLE), CAST({right.sql} AS DOUBLE))", NUMBER)
        return left

    def _unary(self) -> Expr:
        if self._accept("-"):
            inner = self._unary()
            return Expr(f"(-CAST({inner.sql} AS DOUBLE))", NUMBER)
        if self._accept("+"):
            return self._unary()
        if self._accept("!"):
            inner = self._unary()
            return Expr(f"(NOT {_cond(inner.sql)})", BOOLEAN)
        return self._primary()

    def _primary(self) -> Expr:
        kind, value, pos = self._take()
        if kind == "number":
            return Expr(f"CAST({float(value)!r} AS DOUBLE)", NUMBER)
        if kind == "string":
            return self._literal(_unescape(value[1:-1]))
        if kind == "op" and value == "(":
            inner = self._or()
            self._expect(")")
            return inner
        if kind == "name":
            upper = value.upper()
            if self._accept("("):
                return self._call(upper, pos)
            if upper in ("TRUE", "FALSE"):
                return Expr(upper, BOOLEAN)
            if upper == "NULL":
                return Expr("NULL", ANY)
            return self._field(value, pos)
        found = value or "end of formula"
        raise FormulaError(f"{self._where}: Syntax error. Unexpected '{found}' at position {pos + 1}")

    def _literal(self, value: Any) -> Expr:
        name = f"f{next(self._names)}"
        self.params[name] = value
        return Expr(f"CAST(${name} AS VARCHAR)", TEXT)

    # --- field references ------------------------------------------------------------------

    def _field(self, path: str, pos: int) -> Expr:
        parts = path.split(".")
        obj, alias = self.obj, NEW
        for i, rel in enumerate(parts[:-1]):
            lookup = obj.relationship(rel)
            if lookup is None or not lookup.reference_to:
                raise FormulaError(f"{self._where}: Field {rel} does not exist. Check spelling.")
            key = tuple(p.lower() for p in parts[: i + 1])
            if key not in self.joins:
                target = self.schema.get(lookup.reference_to[0])
                if target is None:  # pragma: no cover - Schema validates references
                    raise FormulaError(f"{self._where}: Field {rel} does not exist. Check spelling.")
                join_alias = f"p{len(self.joins) + 1}"
                sql = (f"LEFT JOIN {quote(target.name)} AS {join_alias} "
                       f"ON {join_alias}.{quote('Id')} = {alias}.{quote(lookup.name)}")
                self.joins[key] = (join_alias, target, sql)
            alias, obj = self.joins[key][0], self.joins[key][1]
        f = obj.field(parts[-1])
        if f is None:
            raise FormulaError(f"{self._where}: Field {parts[-1]} does not exist. Check spelling.")
        if f.type in ("address", "location"):
            raise FormulaError(f"{self._where}: Field {f.name} is a compound field and cannot be used "
                               "in formulas")
        if f.formula_sql is not None:
            return Expr("(" + f.formula_sql.replace("{t}", alias) + ")", _field_type(f))
        plain = f if alias == NEW else None
        return Expr(f"{alias}.{quote(f.name)}", _field_type(f), plain)

    # --- functions -------------------------------------------------------------------------

    def _args(self) -> list[Expr]:
        args: list[Expr] = []
        if self._accept(")"):
            return args
        while True:
            args.append(self._or())
            if self._accept(")"):
                return args
            if not self._accept(","):
                self._expect(")")

    def _call(self, name: str, pos: int) -> Expr:
        args = self._args()
        handler = _FUNCTIONS.get(name)
        if handler is None:
            raise FormulaError(f"{self._where}: Unknown function {name}. Check spelling.")
        low, high = handler[0], handler[1]
        if len(args) < low or (high is not None and len(args) > high):
            raise FormulaError(f"{self._where}: Incorrect number of parameters for function '{name}()'. "
                               f"Expected {low if high == low else f'{low} or more'}, received {len(args)}")
        return handler[2](self, args)

    def now_param(self) -> str:
        """The save's moment (emulator clock), bound once per compiler."""
        self.params["fnow"] = self.now
        return "$fnow"

    def _prior(self, args: list[Expr], fn: str) -> Expr:
        f = args[0].field
        if f is None:
            raise FormulaError(f"{self._where}: {fn}() needs a field of the record")
        alias = OLD if self.has_old else NEW
        return Expr(f"{alias}.{quote(f.name)}", _field_type(f), None)


def _text(e: Expr) -> str:
    """Text of a value as Salesforce's TEXT() prints it (whole numbers without decimals)."""
    if e.type == NUMBER:
        return (f"(CASE WHEN ({e.sql}) = trunc({e.sql}) THEN CAST(CAST({e.sql} AS BIGINT) AS VARCHAR) "
                f"ELSE CAST(CAST({e.sql} AS DOUBLE) AS VARCHAR) END)")
    return f"CAST({e.sql} AS VARCHAR)"


def _blank(e: Expr) -> str:
    if e.type == TEXT:
        return f"({e.sql} IS NULL OR {_text(e)} = '')"
    return f"({e.sql} IS NULL)"


def _case(c: FormulaCompiler, a: list[Expr]) -> Expr:
    if len(a) % 2:
        raise FormulaError(f"{c._where}: Incorrect number of parameters for function 'CASE()'")
    whens = " ".join(f"WHEN {a[i].sql} THEN {a[i + 1].sql}" for i in range(1, len(a) - 1, 2))
    return Expr(f"(CASE {a[0].sql} {whens} ELSE {a[-1].sql} END)", a[2].type)


def _ischanged(c: FormulaCompiler, a: list[Expr]) -> Expr:
    prior = c._prior(a, "ISCHANGED")
    if not c.has_old:
        return Expr("FALSE", BOOLEAN)
    return Expr(f"({OLD}.{quote('Id')} IS NOT NULL AND {a[0].sql} IS DISTINCT FROM {prior.sql})", BOOLEAN)


def _variadic(sql_fn: str):
    return lambda c, a: Expr(f"{sql_fn}({', '.join(e.sql for e in a)})", a[0].type)


def _number_fn(template: str):
    return lambda c, a: Expr(template.format(*(f"CAST({e.sql} AS DOUBLE)" for e in a)), NUMBER)


def _text_fn(template: str, result: str = TEXT):
    return lambda c, a: Expr(template.format(*(_text(e) for e in a)), result)


# name -> (min args, max args or None, builder)
_FUNCTIONS: dict[str, tuple[int, int | None, Any]] = {
    "AND": (1, None, lambda c, a: Expr("(" + " AND ".join(_cond(e.sql) for e in a) + ")", BOOLEAN)),
    "OR": (1, None, lambda c, a: Expr("(" + " OR ".join(_cond(e.sql) for e in a) + ")", BOOLEAN)),
    "NOT": (1, 1, lambda c, a: Expr(f"(NOT {_cond(a[0].sql)})", BOOLEAN)),
    "IF": (3, 3, lambda c, a: Expr(f"(CASE WHEN {_cond(a[0].sql)} THEN {a[1].sql} ELSE {a[2].sql} END)",
                                   a[1].type if a[1].type != ANY else a[2].type)),
    "CASE": (4, None, _case),
    "ISBLANK": (1, 1, lambda c, a: Expr(_blank(a[0]), BOOLEAN)),
    "ISNULL": (1, 1, lambda c, a: Expr(f"({a[0].sql} IS NULL)", BOOLEAN)),
    "BLANKVALUE": (2, 2, lambda c, a: Expr(f"(CASE WHEN {_blank(a[0])} THEN {a[1].sql} ELSE {a[0].sql} END)",
                                           a[0].type)),
    "NULLVALUE": (2, 2, lambda c, a: Expr(f"COALESCE({a[0].sql}, {a[1].sql})", a[0].type)),
    "ISPICKVAL": (2, 2, lambda c, a: Expr(_cond(f"{_text(a[0])} = {_text(a[1])}"), BOOLEAN)),
    "INCLUDES": (2, 2, _text_fn("list_contains(string_split(COALESCE({0}, ''), ';'), {1})", BOOLEAN)),
    "TEXT": (1, 1, lambda c, a: Expr(_text(a[0]), TEXT)),
    "VALUE": (1, 1, _text_fn("TRY_CAST({0} AS DOUBLE)", NUMBER)),
    "LEN": (1, 1, _text_fn("CAST(length(COALESCE({0}, '')) AS DOUBLE)", NUMBER)),
    "LEFT": (2, 2, lambda c, a: Expr(f"left({_text(a[0])}, CAST({a[1].sql} AS BIGINT))", TEXT)),
    "RIGHT": (2, 2, lambda c, a: Expr(f"right({_text(a[0])}, CAST({a[1].sql} AS BIGINT))", TEXT)),
    "MID": (3, 3, lambda c, a: Expr(f"substr({_text(a[0])}, CAST({a[1].sql} AS BIGINT), "
                                    f"CAST({a[2].sql} AS BIGINT))", TEXT)),
    "UPPER": (1, 1, _text_fn("upper({0})")),
    "LOWER": (1, 1, _text_fn("lower({0})")),
    "TRIM": (1, 1, _text_fn("trim({0})")),
    "CONTAINS": (2, 2, _text_fn("contains(COALESCE({0}, ''), COALESCE({1}, ''))", BOOLEAN)),
    "BEGINS": (2, 2, _text_fn("starts_with(COALESCE({0}, ''), COALESCE({1}, ''))", BOOLEAN)),
    "REGEX": (2, 2, _text_fn("regexp_full_match(COALESCE({0}, ''), {1})", BOOLEAN)),
    "TODAY": (0, 0, lambda c, a: Expr(f"CAST({c.now_param()} AS DATE)", DATE)),
    "NOW": (0, 0, lambda c, a: Expr(f"CAST({c.now_param()} AS TIMESTAMP)", DATETIME)),
    "DATE": (3, 3, lambda c, a: Expr("make_date(" + ", ".join(f"CAST({e.sql} AS BIGINT)" for e in a) + ")",
                                     DATE)),
    "YEAR": (1, 1, lambda c, a: Expr(f"CAST(year({a[0].sql}) AS DOUBLE)", NUMBER)),
    "MONTH": (1, 1, lambda c, a: Expr(f"CAST(month({a[0].sql}) AS DOUBLE)", NUMBER)),
    "DAY": (1, 1, lambda c, a: Expr(f"CAST(day({a[0].sql}) AS DOUBLE)", NUMBER)),
    "ABS": (1, 1, _number_fn("abs({0})")),
    "ROUND": (2, 2, lambda c, a: Expr(f"round(CAST({a[0].sql} AS DOUBLE), CAST({a[1].sql} AS INTEGER))",
                                      NUMBER)),
    "MAX": (1, None, _variadic("greatest")),
    "MIN": (1, None, _variadic("least")),
    "PRIORVALUE": (1, 1, lambda c, a: c._prior(a, "PRIORVALUE")),
    "ISCHANGED": (1, 1, _ischanged),
    "ISNEW": (0, 0, lambda c, a: Expr("FALSE" if c.has_old else "TRUE", BOOLEAN)),
}
FUNCTIONS = frozenset(_FUNCTIONS)


def check(schema: Schema, obj: SObject, text: str, where: str, expect: str | None = None) -> None:
    """Raise FormulaError when `text` would not compile (for both inserts and updates)."""
    now = datetime(2000, 1, 1)
    for has_old in (False, True):
        FormulaCompiler(schema, obj, has_old=has_old, now=now).compile(text, where, expect)
