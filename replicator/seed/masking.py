"""Deterministic masking of personal data, column by column over Arrow batches.

Why keyed and per value: the same email in a Contact and in a Case must mask to the same fake (or
joins and duplicate rules stop working), re-seeding must give the same sandbox, and nobody holding
the output may recover the input. So every fake is drawn from Faker's word lists by a random stream
seeded with HMAC-SHA256(secret, kind + value): same secret and value, same fake; a different
secret, a different fake; the raw value alone never seeds anything. The secret comes from an environment
variable (SECRET_ENV). Values are masked once per distinct value in a batch, and fakes are cut to
the field's length from describe.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyarrow as pa
from faker.providers.address.en_US import Provider as Address
from faker.providers.company.en_US import Provider as Company
from faker.providers.lorem.en_US import Provider as Lorem
from faker.providers.person.en_US import Provider as Person

from replicator.errors import InvalidInput

__all__ = ["FAKES", "KINDS", "SECRET_ENV", "MaskRule", "Masker", "MaskingProblem", "parse_rule",
           "personal_kind"]

SECRET_ENV = "REPLICATOR_SEED_SECRET"
MAX_SHIFT_DAYS = 3650
CACHED_VALUES = 1 << 18  # masked values remembered, so the plan's pricing pass and the load mask once

# Faker's en_US word lists, drawn from directly: Faker's own weighted draws cost ~0.5 ms a value.
FIRST = tuple(Person.first_names)
LAST = tuple(Person.last_names)
STREET_SUFFIX = tuple(Address.street_suffixes)
CITY_PREFIX, CITY_SUFFIX = tuple(Address.city_prefixes), tuple(Address.city_suffixes)
COMPANY_SUFFIX = tuple(Company.company_suffixes)
WORDS = tuple(Lorem.word_list)


class _Draw:
    """Picks from one value's keyed random stream."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, items: Sequence[str]) -> str:
        return items[self.rng.randrange(len(items))]

    def digits(self, n: int) -> str:
        return "".join(str(self.rng.randrange(10)) for _ in range(n))

    def pattern(self, text: str) -> str:
        """# a digit, ? (or *) a letter, anything else kept."""
        return "".join(str(self.rng.randrange(10)) if c == "#" else self.pick(string.ascii_letters)
                       if c in "?*" else c for c in text)


def _street(d: _Draw) -> str:
    return f"{d.rng.randrange(1, 9999)} {d.pick(LAST)} {d.pick(STREET_SUFFIX)}"


def _city(d: _Draw) -> str:
    return f"{d.pick(CITY_PREFIX)} {d.pick(FIRST)}{d.pick(CITY_SUFFIX)}"


FAKES: dict[str, Callable[[_Draw], str]] = {
    "name": lambda d: f"{d.pick(FIRST)} {d.pick(LAST)}",
    "first_name": lambda d: d.pick(FIRST),
    "last_name": lambda d: d.pick(LAST),
    "email": lambda d: (f"{d.pick(FIRST).lower()}.{d.pick(LAST).lower()}.{d.digits(4)}"
                        f"@{d.pick(LAST).lower()}.example"),
    # digits, spaces and a leading +: passes the usual phone-format validation rules
    "phone": lambda d: f"+1 {d.digits(3)} {d.digits(3)} {d.digits(4)}",
    "street": _street,
    "city": _city,
    "postal_code": lambda d: d.digits(5),
    "address": lambda d: f"{_street(d)}, {_city(d)} {d.digits(5)}",
    "company": lambda d: f"{d.pick(LAST)} {d.pick(COMPANY_SUFFIX)}",
    "text": lambda d: " ".join(d.pick(WORDS) for _ in range(8)).capitalize() + ".",
    "url": lambda d: f"https://{d.pick(LAST).lower()}.example",
}
KINDS = ("keep", "null", *FAKES, "fixed", "pattern", "date_shift")
KEYLESS = ("keep", "null", "fixed")  # kinds that need no secret
_PATTERN = re.compile(r"[#?*]")


class MaskingProblem(InvalidInput, ValueError):
    """A masking rule that cannot be applied; the message names the rule."""


@dataclass(frozen=True)
class MaskRule:
    """One field's rule: a kind plus its argument (the fixed value, the pattern, the day bound)."""

    kind: str
    arg: Any = None

    def describe(self) -> str:
        """How the plan shows the rule."""
        return self.kind if self.arg is None else f"{self.kind}({self.arg})"


def parse_rule(raw: Any) -> MaskRule:
    """A rule from a template: "email", {fixed = "x"}, {pattern = "###-???"}, {date_shift = 30}."""
    if isinstance(raw, str):
        if raw in ("fixed", "pattern"):
            raise MaskingProblem(f"'{raw}' needs a value: {{{raw} = ...}}")
        if raw == "date_shift":
            return MaskRule("date_shift", 30)
        if raw not in KINDS:
            raise MaskingProblem(f"{raw!r} is not a masking kind (known: {', '.join(KINDS)})")
        return MaskRule(raw)
    if isinstance(raw, dict) and len(raw) == 1:
        (kind, arg), = raw.items()
        if kind == "fixed":
            return MaskRule("fixed", arg)
        if kind == "pattern" and isinstance(arg, str) and _PATTERN.search(arg):
            return MaskRule("pattern", arg)
        if kind == "date_shift" and isinstance(arg, int) and not isinstance(arg, bool) \
                and 0 < arg <= MAX_SHIFT_DAYS:
            return MaskRule("date_shift", arg)
        raise MaskingProblem(f"{raw!r}: fixed takes any value, pattern a text with # ? or *, "
                             f"date_shift a number of days from 1 to {MAX_SHIFT_DAYS}")
    raise MaskingProblem(f"{raw!r} is not a masking rule")


# describe types and field names that hold personal data, and the fake each gets by default
_BY_TYPE = {"email": "email", "phone": "phone"}
_BY_NAME = (
    (re.compile(r"(^|_)(first_?name)$", re.I), "first_name"),
    (re.compile(r"(^|_)(last_?name)$", re.I), "last_name"),
    (re.compile(r"(street|address)$", re.I), "street"),
    (re.compile(r"city$", re.I), "city"),
    (re.compile(r"(postal_?code|zip)$", re.I), "postal_code"),
    (re.compile(r"^(supplied_?name|name__c)$", re.I), "name"),
    (re.compile(r"birth", re.I), "date_shift"),
)


def personal_kind(name: str, sf_type: str) -> str | None:
    """The fake a field that looks personal should get (by describe type or name), or None."""
    if sf_type in _BY_TYPE:
        return _BY_TYPE[sf_type]
    if sf_type not in ("string", "textarea", "date", "datetime"):
        return None
    for pattern, kind in _BY_NAME:
        if pattern.search(name):
            return kind
    return None


class Masker:
    """Applies rules with one secret; caches nothing across batches but per batch each value once."""

    def __init__(self, secret: bytes | None) -> None:
        self.secret = secret
        self.value = lru_cache(maxsize=CACHED_VALUES)(self._value)

    @classmethod
    def from_environment(cls) -> Masker:
        """The masker keyed by $REPLICATOR_SEED_SECRET (unset: only keep, null and fixed can run)."""
        secret = os.environ.get(SECRET_ENV)
        return cls(secret.encode("utf-8") if secret else None)

    def require_secret(self) -> None:
        """Fakes need the secret: a fixed key would let anyone with the code redo the mapping."""
        if not self.secret:
            raise MaskingProblem(f"masking needs a secret: set the environment variable {SECRET_ENV}")

    def _seed(self, kind: str, value: Any) -> int:
        self.require_secret()
        assert self.secret is not None
        digest = hmac.new(self.secret, f"{kind}\x00{value}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big")

    def _value(self, rule: MaskRule, value: Any, length: int | None = None) -> Any:
        """One value masked (None stays None except under `fixed`); `value` is this, cached."""
        if rule.kind == "keep":
            return value
        if rule.kind == "fixed":
            return rule.arg
        if value is None or rule.kind == "null":
            return None
        if rule.kind == "email" and isinstance(value, str):
            value = value.strip().lower()  # Ann@X.com and ann@x.com are one address
        seed = self._seed(rule.kind if rule.kind in FAKES else "value", value)
        if rule.kind == "date_shift":
            return value + dt.timedelta(days=seed % (2 * rule.arg + 1) - rule.arg)
        draw = _Draw(seed)
        out = draw.pattern(rule.arg) if rule.kind == "pattern" else FAKES[rule.kind](draw)
        if length and len(out) > length:
            out = out[-length:] if rule.kind == "email" else out[:length]
        return out

    def column(self, rule: MaskRule, array: pa.Array, length: int | None = None) -> pa.Array:
        """A column masked, each distinct value computed once (cached); the column's type is kept."""
        if rule.kind == "keep":
            return array
        if rule.kind == "null":
            return pa.nulls(len(array), array.type)
        out = [self.value(rule, v, length) for v in array.to_pylist()]
        if rule.kind == "date_shift":
            return pa.array(out, array.type)
        if rule.kind == "fixed" and not isinstance(rule.arg, str):
            return pa.nulls(len(array), array.type) if rule.arg is None else pa.array(out)
        return pa.array(out, pa.string())
