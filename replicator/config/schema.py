"""The vocabulary config sections are written in: a dataclass field is a key of config.toml.

Why: a section states each key once, as a field (name = key, annotation = type, default = default),
and the reader derives parsing, unknown-key errors and the example-file check from it. What a plain
field cannot say goes in its metadata: a default that only the file has (`in_file`), a key that
exists for one kind only (`only_if`), a field holding the table's own name (`TABLE_NAME`); a
number's range or a text's shape are `Annotated` marks. A `Secret` field `x` is read from the key
`x_env`; a field typed as a union of sections picks one by its value (the section's `method`) and
reads that section's keys from the same table. Checks across keys stay in a section's
`validate(self, where) -> section` hook, which may return a normalised copy.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, is_dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from replicator.config.error import ConfigError
from replicator.config.secret import Secret

IN_FILE = "in_file"
ONLY_IF = "only_if"
GIVEN = "given"
# Keys that would hold a secret literally; each must be given as `<key>_env` instead.
LITERAL_SECRET_KEYS = ("password", "client_secret", "refresh_token", "security_token", "private_key")


@dataclass(frozen=True)
class Range:
    """An `Annotated[int, Range(lo, hi)]` mark: the integer must lie in lo..hi."""

    low: int
    high: int


@dataclass(frozen=True)
class Shape:
    """An `Annotated[str, Shape(regex, message)]` mark; `message` may show the value as `{value!r}`."""

    pattern: str
    message: str

    def problem(self, value: str) -> str | None:
        """The message when `value` does not have this shape, else None."""
        return None if re.search(self.pattern, value) else self.message.format(value=value)


# Not echoed when wrong: a value that is no variable name may be the secret itself, pasted by mistake.
ENV_NAME = Shape(r"^[A-Za-z_][A-Za-z0-9_]*$", "must be an environment variable name (letters, digits, _)")

# Job, org and endpoint names become file names and ledger keys: identifiers only (never "../x").
NAME = Shape(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$",
             "names are identifiers: a letter, then letters, digits, _ or - (at most 63); got {value!r}")


@dataclass(frozen=True)
class Items:
    """An `Annotated[tuple[str, ...], Items("object API names")]` mark: what the list holds, for errors."""

    what: str


@dataclass(frozen=True)
class Where:
    """Where a section sits (file and dotted key), so a `validate` hook's errors name them."""

    path: Path
    key: str

    def error(self, sub: str, message: str) -> ConfigError:
        """A ConfigError at `sub` below this section ("" for the section itself)."""
        return ConfigError(self.path, join(self.key, sub), message)


def in_file(default: Any) -> dict[str, Any]:
    """Field metadata: the text the file is read as when it leaves the key out.

    A value, or a function of the keys read before it (e.g. a port that depends on `kind`). The
    field's own default, if any, serves Python callers.
    """
    return {IN_FILE: default if callable(default) else lambda _values: default}


def only_if(key: str, value: str) -> dict[str, Any]:
    """Field metadata: the key is allowed only when `key` has `value`; otherwise the default applies."""
    return {ONLY_IF: (key, value)}


# Field metadata for a field holding the name of the section's own table (`demo` in `[orgs.demo]`).
TABLE_NAME = types.MappingProxyType({GIVEN: "name"})
# Field metadata for a field holding the path of the config file itself.
CONFIG_FILE = types.MappingProxyType({GIVEN: "file"})


def join(key: str, sub: str) -> str:
    """Dotted keys: join("orgs.demo", "auth") == "orgs.demo.auth"; either side may be empty."""
    return f"{key}.{sub}" if key and sub else key or sub


@cache
def hints(cls: type) -> Mapping[str, Any]:
    """The resolved annotations of a section, marks included."""
    return get_type_hints(cls, include_extras=True)


def unwrap(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """(type, marks) with `Annotated` and `| None` taken off."""
    marks: tuple[Any, ...] = ()
    if get_origin(hint) is Annotated:
        hint, *extra = get_args(hint)
        marks = tuple(extra)
    if get_origin(hint) in (Union, types.UnionType):
        members = [m for m in get_args(hint) if m is not type(None)]
        if len(members) == 1:
            inner, inner_marks = unwrap(members[0])
            return inner, marks + inner_marks
    return hint, marks


def variants(hint: Any) -> dict[str, type]:
    """For a union of sections, each section by its `method`; else empty."""
    hint, _ = unwrap(hint)
    if get_origin(hint) not in (Union, types.UnionType):
        return {}
    members = get_args(hint)
    if not all(is_dataclass(m) for m in members):
        return {}
    return {m.method: m for m in members}


def is_secret(hint: Any) -> bool:
    """A `Secret` field: the file names its environment variable instead of holding it."""
    return unwrap(hint)[0] is Secret


def file_key(name: str, hint: Any) -> str:
    """The key a field is written as: its name, or `<name>_env` for a secret."""
    return f"{name}_env" if is_secret(hint) else name


def has_default(f: Field[Any]) -> bool:
    """True when the dataclass itself gives the field a value if the file has none."""
    return f.default is not MISSING or f.default_factory is not MISSING


def python_default(f: Field[Any]) -> Any:
    """The value the dataclass gives a field the file leaves out (seen by later `in_file` rules)."""
    return f.default_factory() if f.default_factory is not MISSING else f.default
