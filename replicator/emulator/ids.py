"""Salesforce record ids: 15-character base-62 ids and their 18-character case-safe form.

Real clients compare ids, slice key prefixes and convert between the two forms, so the emulator
must produce ids that are indistinguishable from real ones (prefix, pod, counter, checksum).
"""

from __future__ import annotations

import re

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
POD = "5J"  # the 2-character instance part of every id this emulator mints
_ID_RE = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")


def checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character id case-insensitively unique."""
    out = []
    for start in (0, 5, 10):
        bits = 0
        for i, ch in enumerate(id15[start : start + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(CHECKSUM_CHARS[bits])
    return "".join(out)


def to18(record_id: str) -> str:
    """Return the 18-character form of a 15- or 18-character id."""
    if len(record_id) == 18:
        return record_id[:15] + checksum(record_id[:15])
    return record_id + checksum(record_id)


def is_valid(record_id: str) -> bool:
    """True when the text has the shape of an id and, for 18 characters, a correct checksum."""
    if not _ID_RE.match(record_id):
        return False
    return len(record_id) == 15 or record_id[15:].upper() == checksum(record_id[:15])


def normalize(record_id: str) -> str | None:
    """Canonical 18-character id for a 15- or 18-character input, or None if it is not an id.

    An 18-character id is matched case-insensitively on Salesforce, so its first 15 characters
    are recovered from the checksum's case bits.
    """
    if not _ID_RE.match(record_id):
        return None
    if len(record_id) == 15:
        return to18(record_id)
    suffix = record_id[15:].upper()
    if any(c not in CHECKSUM_CHARS for c in suffix):
        return None
    chars = list(record_id[:15])
    for group, c in enumerate(suffix):
        bits = CHECKSUM_CHARS.index(c)
        for i in range(5):
            pos = group * 5 + i
            ch = chars[pos]
            if ch.isalpha():
                chars[pos] = ch.upper() if bits & (1 << i) else ch.lower()
    id15 = "".join(chars)
    return id15 + checksum(id15)


def encode(number: int, width: int) -> str:
    """Base-62 digits of a non-negative number, left-padded to width (sorts like the number)."""
    digits = []
    while number:
        number, rem = divmod(number, 62)
        digits.append(BASE62[rem])
    text = "".join(reversed(digits)) or "0"
    if len(text) > width:
        raise ValueError(f"{number} does not fit in {width} base-62 digits")
    return text.rjust(width, "0")


def make_id(prefix: str, counter: int) -> str:
    """The 18-character id for a key prefix and a per-object counter.

    Ids minted in counter order sort lexicographically in the same order, as on Salesforce.
    """
    return to18(prefix + POD + encode(counter, 10))


def counter_of(record_id: str) -> int:
    """Inverse of make_id for ids minted here: the numeric counter of an id."""
    value = 0
    for ch in record_id[5:15]:
        value = value * 62 + BASE62.index(ch)
    return value
