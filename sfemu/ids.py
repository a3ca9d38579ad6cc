"""Salesforce record ids: 15-character base-62 ids and their 18-character case-safe form.

Real clients compare ids, slice key prefixes and convert between the two forms, so the emulator
must produce ids that are indistinguishable from real ones (prefix, pod, counter, checksum).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

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


# --- vectorised minting (bulk writes, data generation) -------------------------------------------

_B62 = np.frombuffer(BASE62.encode(), np.uint8)
_CK = np.frombuffer(CHECKSUM_CHARS.encode(), np.uint8)
_W5 = 1 << np.arange(5)


def id_matrix(prefix: str, counters: np.ndarray) -> np.ndarray:
    """make_id for many counters at once, as an (n, 18) byte matrix (one id per row)."""
    n = len(counters)
    m = np.empty((n, 18), np.uint8)
    m[:, :5] = np.frombuffer((prefix + POD).encode(), np.uint8)
    c = np.asarray(counters, np.int64).copy()
    for pos in range(14, 4, -1):
        m[:, pos] = _B62[c % 62]
        c //= 62
    upper = (m[:, :15] >= 65) & (m[:, :15] <= 90)
    m[:, 15:] = _CK[(upper.reshape(n, 3, 5) * _W5).sum(axis=2)]
    return m


def id_strings(m: np.ndarray) -> pa.StringArray:
    """Arrow strings over an id matrix's bytes (no per-id Python object)."""
    n = len(m)
    offsets = np.arange(0, 18 * (n + 1), 18, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(m)))


def make_ids(prefix: str, first_counter: int, n: int) -> pa.StringArray:
    """make_id for the counters first_counter .. first_counter+n-1, vectorised: a 10,000-row insert
    mints its ids in well under a millisecond instead of tens of milliseconds."""
    return id_strings(id_matrix(prefix, np.arange(first_counter, first_counter + n, dtype=np.int64)))
