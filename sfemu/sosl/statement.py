"""A search request, parsed from a SOSL statement (`/search?q=`) or from parameterizedSearch's
parameters, into one `Search` that the engine runs.

SOSL: `FIND {terms} [IN ALL|NAME|EMAIL|PHONE|SIDEBAR FIELDS] [RETURNING Obj[(fields [WHERE ...]
[ORDER BY ...] [LIMIT n] [OFFSET n])], ...] [WITH ...] [LIMIT n]`. What sits inside a RETURNING
object's parentheses is SOQL (field list, WHERE, ORDER BY, LIMIT, OFFSET), so the engine hands it to
the SOQL compiler as `SELECT fields FROM Obj ...`; the compiler validates names against describe
and binds every literal, exactly as for a `/query` the same user could send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sfemu.errors import SalesforceError
from sfemu.soql.errors import ErrorFactory, SoqlError, located
from sfemu.soql.lexer import Token, tokenize
from sfemu.sosl.terms import Expr, malformed, parse_terms

GROUPS = ("ALL", "NAME", "EMAIL", "PHONE", "SIDEBAR")
MAX_LIMIT = 2000
_CLAUSES = ("WHERE", "ORDER", "LIMIT", "OFFSET", "USING")
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")
_INTEGER = re.compile(r"\d{1,9}")


@dataclass
class Target:
    """One object to search and what to return from it."""

    name: str
    fields: str | None = None  # SOQL field list; None returns only the Id
    clauses: str = ""  # SOQL tail: WHERE / ORDER BY / LIMIT / OFFSET

    def soql(self) -> str:
        return f"SELECT {self.fields or 'Id'} FROM {self.name} {self.clauses}".strip()


@dataclass
class Search:
    terms: Expr
    group: str = "ALL"
    targets: list[Target] = field(default_factory=list)  # empty: every searchable object
    limit: int = MAX_LIMIT


def parse_sosl(text: str | None) -> Search:
    """A `/search?q=` SOSL statement; MALFORMED_SEARCH for what Salesforce's parser refuses."""
    text = text or ""
    m = re.match(r"\s*FIND\s*\{", text, re.IGNORECASE)
    if not m:
        raise malformed("No search term found. The search term must be enclosed in braces.")
    end = _closing_brace(text, m.end())
    search = Search(parse_terms(text[m.end():end]))
    try:
        tokens = tokenize(text[end + 1:], ErrorFactory(text[end + 1:]))
    except SoqlError as exc:
        raise malformed(exc.message) from None
    _Clauses(text, end + 1, tokens, search).parse()
    return search


def _closing_brace(text: str, start: int) -> int:
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "}":
            return i
        i += 1
    detail = f"line 1:{len(text)} mismatched character '<EOF>' expecting '}}'"
    raise malformed(located(text, len(text), detail))


class _Clauses:
    """The clauses after `FIND {...}`, token by token (SOQL's lexer)."""

    def __init__(self, text: str, offset: int, tokens: list[Token], search: Search) -> None:
        self.text, self.offset, self.toks, self.search = text, offset, tokens, search
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def fail(self) -> SalesforceError:
        pos = self.offset + self.tok.pos
        shown = "<EOF>" if self.tok.kind == "eof" else self.tok.text
        return malformed(located(self.text, pos, f"unexpected token: '{shown}'"))

    def keyword(self, *words: str) -> Token:
        if not self.tok.is_kw(*words):
            raise self.fail()
        token = self.tok
        self.i += 1
        return token

    def parse(self) -> None:
        if self.tok.is_kw("IN"):
            self.i += 1
            self.search.group = self.keyword(*GROUPS).text.upper()
            self.keyword("FIELDS")
        if self.tok.is_kw("RETURNING"):
            self.i += 1
            self.returning()
        while self.tok.is_kw("WITH"):  # divisions, snippets, networks: no meaning in the emulator
            self.i += 1
            while self.tok.kind != "eof" and not self.tok.is_kw("LIMIT", "WITH", "UPDATE"):
                self.i += 1
        if self.tok.is_kw("LIMIT"):
            self.i += 1
            self.search.limit = self.integer()
        if self.tok.is_kw("UPDATE"):  # UPDATE TRACKING / VIEWSTAT: statistics only
            self.i += 1
            while self.tok.kind in ("ident", ","):
                self.i += 1
        if self.tok.kind != "eof":
            raise self.fail()

    def integer(self) -> int:
        if self.tok.kind != "number" or not _INTEGER.fullmatch(self.tok.text):
            raise self.fail()
        value = int(self.tok.text)
        self.i += 1
        return min(value, MAX_LIMIT)

    def returning(self) -> None:
        while True:
            if self.tok.kind != "ident":
                raise self.fail()
            target = Target(self.tok.text)
            self.i += 1
            if self.tok.kind == "(":
                self.object_spec(target)
            self.search.targets.append(target)
            if self.tok.kind != ",":
                return
            self.i += 1

    def object_spec(self, target: Target) -> None:
        """`(fields [clauses])`: split at the first top-level clause keyword; kept as source text."""
        start = self.tok.pos + 1
        depth, clause_at = 0, None
        while True:
            self.i += 1
            tok = self.tok
            if tok.kind == "eof":
                raise self.fail()
            if tok.kind == "(":
                depth += 1
            elif tok.kind == ")":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and clause_at is None and tok.is_kw(*_CLAUSES):
                clause_at = tok.pos
        source = self.text[self.offset:]
        stop = self.tok.pos
        fields_end = clause_at if clause_at is not None else stop
        target.fields = source[start:fields_end].strip() or None
        target.clauses = source[fields_end:stop].strip()
        self.i += 1


def parameterized(params: dict, *, listed: bool) -> Search:
    """parameterizedSearch's parameters (GET query string or POST body) as a Search.

    `params`: q, in, overallLimit, defaultLimit, fields (global list), and per object either
    `sobjects: [{name, fields, where, limit}]` (POST) or `sobject` plus `Obj.fields`, `Obj.where`,
    `Obj.limit` (GET, `listed` False).
    """
    q = params.get("q")
    if not isinstance(q, str) or not q.strip():
        raise malformed("No search term found. The search term must be enclosed in braces.")
    search = Search(parse_terms(q))
    group = str(params.get("in") or "ALL").upper()
    if group not in GROUPS:
        raise SalesforceError(400, "INVALID_SEARCH", f"Invalid value for parameter 'in': {group}")
    search.group = group
    search.limit = _limit(params.get("overallLimit"), "overallLimit", MAX_LIMIT)
    default_limit = params.get("defaultLimit")
    common_fields = _names(params.get("fields"))
    specs = params.get("sobjects") if listed else [
        {"name": name, "fields": params.get(f"{name}.fields"), "where": params.get(f"{name}.where"),
         "limit": params.get(f"{name}.limit")} for name in params.get("sobject") or []]
    if not isinstance(specs, list | type(None)):
        raise SalesforceError(400, "INVALID_SEARCH", "sobjects must be a list")
    for spec in specs or []:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
                or not _FIELD_NAME.fullmatch(spec["name"]):
            raise SalesforceError(400, "INVALID_SEARCH", "Each sobject needs a valid name")
        fields = _names(spec.get("fields")) or common_fields
        clauses = f"WHERE {spec['where']}" if spec.get("where") else ""
        limit = spec.get("limit") or default_limit
        if limit is not None:
            clauses += f" LIMIT {_limit(limit, 'limit', MAX_LIMIT)}"
        search.targets.append(Target(spec["name"], ", ".join(fields) or None, clauses.strip()))
    return search


def _names(value: object) -> list[str]:
    """Field names from a list or a comma-separated string; each must look like a field path."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise SalesforceError(400, "INVALID_SEARCH", "fields must be a list of field names")
    names = [i.strip() for i in items if i.strip()]
    for name in names:
        if not _FIELD_NAME.fullmatch(name):
            raise SalesforceError(400, "INVALID_FIELD", f"No such column '{name}'")
    return names


def _limit(value: object, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        text = ""
    if not _INTEGER.fullmatch(text):
        raise SalesforceError(400, "INVALID_SEARCH", f"Invalid value for parameter '{name}': {value}")
    return min(int(text), MAX_LIMIT)
