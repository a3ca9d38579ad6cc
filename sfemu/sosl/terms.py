"""The search expression of SOSL's `FIND {...}` and parameterizedSearch's `q`, and its SQL.

Salesforce's search index matches whole words, case-insensitively: `Acme` finds "Acme Corp" but
not "Acmeville"; `*` stands for any characters and `?` for exactly one; a quoted phrase needs its
words in order; terms side by side must all match (implicit AND), and `AND`, `OR`, `AND NOT`
and parentheses combine them. Each term becomes a bound RE2 pattern tried on every searched
field of a row, so the emulator answers what the index would without building one. Phone fields
also match on digits alone, as Salesforce normalises phone numbers ("4155551212" finds
"(415) 555-1212").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sfemu.errors import SalesforceError

_SPECIAL = set('()"')
_BOUNDARY_START = r"(?:^|[^\pL\pN])"
_BOUNDARY_END = r"(?:$|[^\pL\pN])"
_DIGITS_ONLY = re.compile(r"[\d()+\-. ]+")
MIN_PHONE_DIGITS = 3
MIN_TERM_CHARS = 2  # Salesforce refuses one-character terms (wildcards do not count)


def malformed(message: str) -> SalesforceError:
    return SalesforceError(400, "MALFORMED_SEARCH", message)


@dataclass(frozen=True)
class Term:
    """One word or quoted phrase (a tuple of words) to find."""

    words: tuple[str, ...]

    def pattern(self) -> str:
        """A case-insensitive RE2 pattern matching the term as whole words."""
        body = r"[^\pL\pN\n]+".join(_word_pattern(w) for w in self.words)
        return f"(?i){_BOUNDARY_START}{body}{_BOUNDARY_END}"

    def digits(self) -> str | None:
        """The digits of a phone-number-like single term, else None."""
        text = self.words[0]
        if len(self.words) != 1 or not _DIGITS_ONLY.fullmatch(text):
            return None
        digits = re.sub(r"\D", "", text)
        return digits if len(digits) >= MIN_PHONE_DIGITS else None


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class Combined:
    op: str  # "AND" | "OR"
    operands: tuple[Expr, ...]


Expr = Term | Not | Combined


def _word_pattern(word: str) -> str:
    out = []
    for ch in word:
        out.append({"*": r"[\pL\pN]*", "?": r"[\pL\pN]"}.get(ch) or re.escape(ch))
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) pairs: ( ) phrase word; a backslash escapes the next character."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            tokens.append((ch, ch))
            i += 1
        elif ch == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise malformed(f"Unmatched quote in search term: {text}")
            tokens.append(("phrase", text[i + 1:end]))
            i = end + 1
        else:
            word = []
            while i < n and not text[i].isspace() and text[i] not in _SPECIAL:
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                word.append(text[i])
                i += 1
            tokens.append(("word", "".join(word)))
    return tokens


def parse_terms(text: str) -> Expr:
    """The search expression; MALFORMED_SEARCH or INVALID_SEARCH for what Salesforce refuses."""
    parser = _Parser(_tokens(text))
    if not parser.tokens:
        raise malformed("No search term found. The search term must be enclosed in braces.")
    expr = parser.disjunction()
    if parser.i < len(parser.tokens):
        raise malformed(f"unexpected token in search term: '{parser.tokens[parser.i][1]}'")
    return expr


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek_operator(self, *words: str) -> bool:
        if self.i >= len(self.tokens):
            return False
        kind, text = self.tokens[self.i]
        return kind == "word" and text.upper() in words

    def disjunction(self) -> Expr:
        parts = [self.conjunction()]
        while self.peek_operator("OR"):
            self.i += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Combined("OR", tuple(parts))

    def conjunction(self) -> Expr:
        parts = [self.unary()]
        while self.i < len(self.tokens) and self.tokens[self.i][0] != ")" and not self.peek_operator("OR"):
            if self.peek_operator("AND"):
                self.i += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else Combined("AND", tuple(parts))

    def unary(self) -> Expr:
        if self.peek_operator("NOT"):
            self.i += 1
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Expr:
        if self.i >= len(self.tokens) or self.peek_operator("AND", "OR"):
            found = self.tokens[self.i][1] if self.i < len(self.tokens) else "<EOF>"
            raise malformed(f"unexpected token in search term: '{found}'")
        kind, text = self.tokens[self.i]
        self.i += 1
        if kind == "(":
            expr = self.disjunction()
            if self.i >= len(self.tokens) or self.tokens[self.i][0] != ")":
                raise malformed("Missing closing parenthesis in search term")
            self.i += 1
            return expr
        if kind == ")":
            raise malformed("unexpected token in search term: ')'")
        words = tuple(text.split()) if kind == "phrase" else (text,)
        if sum(ch not in "*?" for ch in "".join(words)) < MIN_TERM_CHARS:
            raise SalesforceError(400, "INVALID_SEARCH",
                                  f"search term must be longer than one character: {text}")
        return Term(words)


def term_sql(expr: Expr, columns: list[str], phone_columns: list[str], params: list) -> str:
    """SQL true when a row (its searched `columns`) matches `expr`; patterns go into params."""
    if isinstance(expr, Not):
        return f"NOT ({term_sql(expr.operand, columns, phone_columns, params)})"
    if isinstance(expr, Combined):
        joined = f" {expr.op} ".join(term_sql(e, columns, phone_columns, params) for e in expr.operands)
        return f"({joined})"
    tests = []
    if columns:  # one pattern over the fields joined by newlines (which no phrase spans): one scan a row
        tests.append(f"coalesce(regexp_matches(concat_ws(chr(10), {', '.join(columns)}), ?), false)")
        params.append(expr.pattern())
    digits = expr.digits()
    if digits is not None:
        for column in phone_columns:
            tests.append(f"coalesce(contains(regexp_replace({column}, '[^0-9]', '', 'g'), ?), false)")
            params.append(digits)
    return f"({' OR '.join(tests) or 'false'})"
