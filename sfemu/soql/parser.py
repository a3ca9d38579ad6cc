"""Recursive-descent parser for the SOQL subset of sf_api.md 3.2.

Salesforce refuses AND and OR mixed at one level without parentheses, so the condition grammar has
no precedence: a level is all-AND or all-OR, and the first mismatched keyword is the unexpected token.
"""

from __future__ import annotations

from sfemu.soql import ast
from sfemu.soql.errors import ErrorFactory
from sfemu.soql.lexer import Token, tokenize

CLAUSES = ("WHERE", "WITH", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FOR", "USING")
AGGREGATES = ("COUNT", "COUNT_DISTINCT", "MIN", "MAX", "SUM", "AVG")
DATE_FUNCTIONS = ("CALENDAR_MONTH", "CALENDAR_QUARTER", "CALENDAR_YEAR", "DAY_IN_MONTH", "DAY_IN_WEEK",
                  "DAY_IN_YEAR", "DAY_ONLY", "FISCAL_MONTH", "FISCAL_QUARTER", "FISCAL_YEAR",
                  "HOUR_IN_DAY", "WEEK_IN_MONTH", "WEEK_IN_YEAR")
WITH_FLAGS = ("SECURITY_ENFORCED", "USER_MODE", "SYSTEM_MODE")
MAX_LENGTH = 100_000
# Parentheses and NOTs nested deeper than this are refused as MALFORMED_QUERY, so a hostile query
# (thousands of nested parentheses) is a 400, not a recursion overflow; no real filter comes close.
MAX_NESTING = 100
MAX_INTEGER = 2**31 - 1


def parse(text: str, err: ErrorFactory | None = None) -> ast.Query:
    """Parse a whole statement; raises SoqlError (MALFORMED_QUERY) on bad syntax."""
    err = err or ErrorFactory(text)
    if len(text) > MAX_LENGTH:
        raise err.at("MALFORMED_QUERY", 0, f"SOQL statements cannot be longer than {MAX_LENGTH} characters.")
    p = _Parser(tokenize(text, err), err)
    query = p.query(nested=False)
    p.expect_eof()
    return query


class _Parser:
    def __init__(self, tokens: list[Token], err: ErrorFactory) -> None:
        self.toks = tokens
        self.i = 0
        self.err = err
        self.depth = 0  # parentheses and NOTs open around the current condition

    # --- token helpers -------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Token:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def fail(self, tok: Token | None = None):
        tok = tok or self.tok
        return self.err.unexpected(tok.pos, tok.text)

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            raise self.fail()
        return self.next()

    def keyword(self, *words: str) -> Token:
        if not self.tok.is_kw(*words):
            raise self.fail()
        return self.next()

    def accept(self, *words: str) -> Token | None:
        return self.next() if self.tok.is_kw(*words) else None

    def ident(self) -> Token:
        return self.expect("ident")

    def expect_eof(self) -> None:
        if self.tok.kind != "eof":
            raise self.fail()

    def integer(self) -> int:
        """A non-negative integer that fits Java's int, as Salesforce's parser reads LIMIT, OFFSET and N."""
        t = self.expect("number")
        if not t.text.isdigit() or int(t.text) > MAX_INTEGER:
            raise self.fail(t)
        return int(t.text)

    # --- statement -----------------------------------------------------------------------

    def query(self, nested: bool) -> ast.Query:
        select_tok = self.keyword("SELECT")
        items = [self.select_item(nested)]
        while self.tok.kind == ",":
            self.next()
            items.append(self.select_item(nested))
        self.keyword("FROM")
        obj = self.ident()
        q = ast.Query(select=items, sobject=obj.text, sobject_pos=obj.pos, select_pos=select_tok.pos)
        if self.tok.kind == "ident" and not self.tok.is_kw(*CLAUSES):
            q.alias = self.next().text
        if self.accept("USING"):
            self.keyword("SCOPE")
            self.ident()
        if self.accept("WHERE"):
            q.where = self.condition()
        if self.accept("WITH"):
            self.keyword(*WITH_FLAGS)
        if self.tok.is_kw("GROUP"):
            q.group_pos = self.next().pos
            self.keyword("BY")
            if self.tok.is_kw("ROLLUP", "CUBE") and self.peek().kind == "(":
                raise self.fail()
            q.group_by.append(self.operand())
            while self.tok.kind == ",":
                self.next()
                q.group_by.append(self.operand())
        if self.accept("ORDER"):
            self.keyword("BY")
            q.order_by.append(self.order_item())
            while self.tok.kind == ",":
                self.next()
                q.order_by.append(self.order_item())
        if self.accept("LIMIT"):
            q.limit = self.integer()
        if self.tok.is_kw("OFFSET"):
            q.offset_pos = self.next().pos
            q.offset = self.integer()
        if self.accept("FOR"):
            if self.accept("UPDATE"):
                self.accept("TRACKING", "VIEWSTAT")
            else:
                self.keyword("VIEW", "REFERENCE")
        return q

    def select_item(self, nested: bool):
        t = self.tok
        if t.is_kw("FROM"):
            raise self.fail()
        if t.kind == "(":
            if nested:
                raise self.fail(self.peek())
            self.next()
            sub = self.query(nested=True)
            self.expect(")")
            return ast.SubQuery(sub, t.pos)
        if t.is_kw("TYPEOF") and self.peek().kind == "ident" and not self.peek().is_kw("FROM"):
            return self.typeof()
        if t.kind == "ident" and self.peek().kind == "(":
            if t.is_kw("FIELDS"):
                self.next()
                self.expect("(")
                kind = self.keyword("ALL", "STANDARD", "CUSTOM").text.upper()
                self.expect(")")
                return ast.Fields(kind, t.pos)
            func = self.function(AGGREGATES + DATE_FUNCTIONS)
            func.alias = self.alias()
            return func
        path = self.path()
        path.alias = self.alias()
        return path

    def alias(self) -> str | None:
        """An alias after a select item; a stray word that is not one is the unexpected token."""
        t = self.tok
        if t.kind != "ident" or t.is_kw("FROM"):
            return None
        follow = self.peek()
        if follow.kind == "," or follow.is_kw("FROM"):
            self.next()
            return t.text
        raise self.fail(t)

    def typeof(self) -> ast.TypeOf:
        start = self.next()
        rel = self.path()
        whens: list[tuple[str, int, list[ast.Path]]] = []
        while self.accept("WHEN"):
            typ = self.ident()
            self.keyword("THEN")
            whens.append((typ.text, typ.pos, self.path_list()))
        if not whens:
            raise self.fail()
        else_fields = self.path_list() if self.accept("ELSE") else []
        self.keyword("END")
        return ast.TypeOf(rel, whens, else_fields, start.pos)

    def path_list(self) -> list[ast.Path]:
        paths = [self.path()]
        while self.tok.kind == "," and self.peek().kind == "ident" and not self.peek().is_kw(
                "WHEN", "ELSE", "END"):
            self.next()
            paths.append(self.path())
        return paths

    def path(self) -> ast.Path:
        first = self.ident()
        parts = [first.text]
        while self.tok.kind == ".":
            self.next()
            parts.append(self.ident().text)
        return ast.Path(parts, first.pos)

    def function(self, allowed: tuple[str, ...]) -> ast.Func:
        name = self.ident()
        if name.text.upper() not in allowed:
            raise self.fail(name)
        self.expect("(")
        arg = None
        if self.tok.kind != ")" or name.text.upper() != "COUNT":
            arg = self.path()
        self.expect(")")
        return ast.Func(name.text.upper(), arg, name.pos)

    def operand(self) -> ast.Path | ast.Func:
        if self.tok.kind == "ident" and self.peek().kind == "(":
            return self.function(AGGREGATES + DATE_FUNCTIONS)
        return self.path()

    def order_item(self) -> ast.OrderItem:
        expr = self.operand()
        desc = bool(self.accept("DESC"))
        if not desc:
            self.accept("ASC")
        nulls_first = not desc
        if self.accept("NULLS"):
            nulls_first = self.keyword("FIRST", "LAST").text.upper() == "FIRST"
        return ast.OrderItem(expr, desc, nulls_first)

    # --- conditions ----------------------------------------------------------------------

    def condition(self) -> ast.Condition:
        first = self.unary()
        if not self.tok.is_kw("AND", "OR"):
            return first
        op = self.tok.text.upper()
        items = [first]
        while self.tok.is_kw("AND", "OR"):
            if self.tok.text.upper() != op:
                raise self.fail()
            self.next()
            items.append(self.unary())
        return ast.BoolOp(op, items)

    def unary(self) -> ast.Condition:
        if not self.tok.is_kw("NOT") and self.tok.kind != "(":
            return self.predicate()
        if self.depth >= MAX_NESTING:
            raise self.err.at("MALFORMED_QUERY", self.tok.pos,
                              f"conditions nested deeper than {MAX_NESTING} levels")
        self.depth += 1
        if self.accept("NOT"):
            cond: ast.Condition = ast.Not(self.unary())
        else:
            self.next()
            cond = self.condition()
            self.expect(")")
        self.depth -= 1
        return cond

    def predicate(self) -> ast.Condition:
        left = self.operand()
        t = self.tok
        if t.kind == "op":
            self.next()
            op = "!=" if t.text == "<>" else t.text
            return ast.Compare(left, op, self.literal(), t.pos)
        if t.is_kw("LIKE"):
            self.next()
            value = self.literal()
            return ast.Compare(left, "LIKE", value, t.pos)
        if t.is_kw("NOT") and self.peek().is_kw("IN"):
            self.next()
            self.next()
            return ast.InList(left, True, self.in_values(), t.pos)
        if t.is_kw("IN"):
            self.next()
            return ast.InList(left, False, self.in_values(), t.pos)
        if t.is_kw("INCLUDES", "EXCLUDES"):
            self.next()
            if not isinstance(left, ast.Path):
                raise self.fail(t)
            return ast.Includes(left, t.text.upper() == "EXCLUDES", self.literal_list(), t.pos)
        raise self.fail()

    def in_values(self) -> list[ast.Literal] | ast.SubQuery:
        if self.tok.kind == "(" and self.peek().is_kw("SELECT"):
            start = self.next()
            sub = self.query(nested=True)
            self.expect(")")
            return ast.SubQuery(sub, start.pos)
        return self.literal_list()

    def literal_list(self) -> list[ast.Literal]:
        self.expect("(")
        values = [self.literal()]
        while self.tok.kind == ",":
            self.next()
            values.append(self.literal())
        self.expect(")")
        return values

    def literal(self) -> ast.Literal:
        t = self.next()
        if t.kind == "string":
            return ast.Literal("string", t.value, t.pos, t.text, pattern=t.pattern)
        if t.kind == "number":
            return ast.Literal("number", t.value, t.pos, t.text)
        if t.kind in ("date", "datetime"):
            return ast.Literal(t.kind, t.value, t.pos, t.text)
        if t.kind == "ident":
            word = t.text.upper()
            if word in ("TRUE", "FALSE"):
                return ast.Literal("boolean", word == "TRUE", t.pos, t.text)
            if word == "NULL":
                return ast.Literal("null", None, t.pos, t.text)
            arg = None
            if self.tok.kind == ":":
                self.next()
                arg = self.integer()
            return ast.Literal("dateliteral", word, t.pos, t.text, arg=arg)
        raise self.fail(t)
