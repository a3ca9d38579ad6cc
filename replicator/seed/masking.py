"""Deterministic masking of personal data, column by column over Arrow batches.

Why keyed and per value: the same email in a Contact and in a Case must mask to the same fake (or
joins and duplicate rules stop working), re-seeding must give the same sandbox, and nobody holding
the output may recover the input. So every fake is drawn from a Faker seeded with
HMAC-SHA256(secret, kind + value): same secret and value, same fake; a different secret, a
different fake; the raw value alone never seeds anything. The secret comes from an environment
variable (SECRET_ENV). Values are masked once per distinct value in a batch, and fakes are cut to
the field's length from describe.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from faker import Faker

from replicator.errors import InvalidInput

__all__ = ["FAKES", "KINDS", "SECRET_ENV", "MaskRule", "Masker", "MaskingProblem", "parse_rule",
           "personal_kind"]

SECRET_ENV = "REPLICATOR_SEED_SECRET"
MAX_SHIFT_DAYS = 3650


def _phone(f: Faker) -> str:
    # Digits, spaces and a leading +: passes the usual phone-format validation rules.
    return f"+1 {f.numerify('###')} {f.numerify('###')} {f.numerify('####')}"


def _email(f: Faker) -> str:
    return f"{f.user_name()}.{f.numerify('####')}@{f.domain_word()}.example"


FAKES: dict[str, Callable[[Faker], str]] = {
    "name": lambda f: f.name(),
    "first_name": lambda f: f.first_name(),
    "last_name": lambda f: f.last_name(),
    "email": _email,
    "phone": _phone,
    "street": lambda f: f.street_address(),
    "city": lambda f: f.city(),
    "postal_code": lambda f: f.postcode(),
    "address": lambda f: f.address().replace("\n", ", "),
    "company": lambda f: f.company(),
    "text": lambda f: f.sentence(nb_words=8),
    "url": lambda f: f"https://{f.domain_word()}.example",
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
        self.faker = Faker()

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

    def value(self, rule: MaskRule, value: Any, length: int | None = None) -> Any:
        """One value masked (None stays None except under `fixed`)."""
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
        self.faker.seed_instance(seed)
        if rule.kind == "pattern":
            out = self.faker.bothify(rule.arg.replace("*", "?"))
        else:
            out = FAKES[rule.kind](self.faker)
        if length and len(out) > length:
            out = out[-length:] if rule.kind == "email" else out[:length]
        return out

    def column(self, rule: MaskRule, array: pa.Array, length: int | None = None) -> pa.Array:
        """A column masked, each distinct value computed once; the column's type is kept."""
        if rule.kind == "keep":
            return array
        if rule.kind == "null":
            return pa.nulls(len(array), array.type)
        values = array.to_pylist()
        done: dict[Any, Any] = {}
        out = []
        for v in values:
            if v not in done:
                done[v] = self.value(rule, v, length)
            out.append(done[v])
        if rule.kind == "date_shift":
            return pa.array(out, array.type)
        if rule.kind == "fixed" and not isinstance(rule.arg, str):
            return pa.nulls(len(array), array.type) if rule.arg is None else pa.array(out)
        return pa.array(out, pa.string())
