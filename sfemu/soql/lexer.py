"""SOQL tokenizer.

Hand-written so it copes with what clients really send: no space between a string and a keyword
(`'Account'AND`), tabs and newlines, unquoted datetimes with 0/3/6 fraction digits and any offset form.
Digits are ASCII only, as in Salesforce's grammar: `LIMIT ١٠` or a superscript is no viable character.
String literals keep two readings: the plain value and a LIKE pattern in which `\\%` and `\\_` stay
escaped (escape character backslash), because only LIKE gives those escapes a meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from sfemu.soql.errors import ErrorFactory

_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):?(\d{2}))",
    re.ASCII)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![\dT:])", re.ASCII)
_DATE_START = re.compile(r"\d{4}-\d{2}-\d{2}T", re.ASCII)
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPACE = re.compile(r"[ \t\r\n\f]+")
_OPS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_PUNCT = "(),.:"
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Token:
    kind: str  # ident | string | number | date | datetime | op | ( ) , . : | eof
    text: str  # source text (identifiers keep their casing)
    pos: int
    value: object = None  # decoded value for literals
    pattern: str | None = None  # strings: LIKE pattern with backslash escapes

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


def tokenize(text: str, err: ErrorFactory) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        m = _SPACE.match(text, i)
        if m:
            i = m.end()
            continue
        ch = text[i]
        if ch == "'":
            tok, i = _string(text, i, err)
            tokens.append(tok)
            continue
        if ch in _DIGITS or (ch in "-." and i + 1 < n and text[i + 1] in _DIGITS):
            tok = _temporal(text, i, err)
            if tok is None:
                m = _NUMBER.match(text, i)
                if not m:
                    raise _no_viable(err, text, i)
                tok = Token("number", m.group(), i, m.group())
            tokens.append(tok)
            i = i + len(tok.text)
            continue
        m = _IDENT.match(text, i)
        if m:
            tokens.append(Token("ident", m.group(), i))
            i = m.end()
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op:
            tokens.append(Token("op", op, i))
            i += len(op)
            continue
        if ch in _PUNCT:
            tokens.append(Token(ch, ch, i))
            i += 1
            continue
        raise _no_viable(err, text, i)
    tokens.append(Token("eof", "<EOF>", n))
    return tokens


def _no_viable(err: ErrorFactory, text: str, i: int):
    bad = text[i] if i < len(text) else "<EOF>"
    return err.at("MALFORMED_QUERY", i, f"line 1:{i} no viable alternative at character '{bad}'")


def _temporal(text: str, i: int, err: ErrorFactory) -> Token | None:
    """A datetime or date literal at i, or None when the text there is a plain number."""
    m = _DATETIME.match(text, i)
    if m:
        y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
        try:
            micro = int((frac or "0")[:6].ljust(6, "0"))
            tz = UTC
            if not z:
                offset = timedelta(hours=int(oh), minutes=int(om))
                tz = timezone(offset if sign == "+" else -offset)
            value = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=tz)
        except ValueError:
            raise _no_viable(err, text, i) from None
        return Token("datetime", m.group(), i, value)
    if _DATE_START.match(text, i):  # a datetime that does not finish, e.g. '+00:00' decoded to ' 00:00'
        end = i + 11
        while end < len(text) and (text[end] in _DIGITS or text[end] in ":."):
            end += 1
        raise _no_viable(err, text, end)
    m = _DATE.match(text, i)
    if m:
        try:
            value = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise _no_viable(err, text, i) from None
        return Token("date", m.group(), i, value)
    return None


def _string(text: str, start: int, err: ErrorFactory) -> tuple[Token, int]:
    """A quoted string at `start`; returns the token and the index after the closing quote."""
    value: list[str] = []
    pattern: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            tok = Token("string", text[start: i + 1], start, "".join(value), "".join(pattern))
            return tok, i + 1
        if ch == "\\":
            if i + 1 >= n:
                break
            esc = text[i + 1]
            if esc in "%_":
                value.append(esc)
                pattern.append("\\" + esc)
                i += 2
                continue
            if esc == "u":
                c, i = _unicode_escape(text, i, err)
            elif esc in _ESCAPES:
                c = _ESCAPES[esc]
                i += 2
            else:
                raise err.at("MALFORMED_QUERY", i,
                             f"Invalid string literal '{text[start:]}'. Illegal character sequence "
                             f"'\\{esc}' in string literal.")
            value.append(c)
            pattern.append("\\\\" if c == "\\" else c)
            continue
        value.append(ch)
        pattern.append(ch)
        i += 1
    raise err.at("MALFORMED_QUERY", start, f"line 1:{start} mismatched character '<EOF>' expecting '''")


def _unicode_escape(text: str, i: int, err: ErrorFactory) -> tuple[str, int]:
    """The character of a `\\uXXXX` escape at i and the index after it. Two escapes forming a UTF-16
    pair make one character, as in Java; a lone surrogate is no character and is refused."""
    code = _hex4(text, i, err)
    if 0xD800 <= code <= 0xDBFF and text.startswith("\\u", i + 6):
        low = _hex4(text, i + 6, err)
        if 0xDC00 <= low <= 0xDFFF:
            return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), i + 12
    if 0xD800 <= code <= 0xDFFF:
        raise err.at("MALFORMED_QUERY", i, "Invalid string literal: unpaired surrogate in unicode escape")
    return chr(code), i + 6


def _hex4(text: str, i: int, err: ErrorFactory) -> int:
    """The value of the four hex digits of the `\\u` escape at i."""
    digits = text[i + 2: i + 6]
    if len(digits) != 4 or not all(c in _HEX for c in digits):
        raise err.at("MALFORMED_QUERY", i, "Invalid string literal: invalid unicode escape")
    return int(digits, 16)
