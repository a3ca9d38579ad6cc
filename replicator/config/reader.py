"""Reads config.toml tables into section dataclasses by walking their fields.

Why generic: each section declares its keys once (see `replicator.config.schema`), so adding a
section costs one dataclass, and every section fails the same way: an unknown key, a wrong type
or a bad choice is a `ConfigError` naming the file and the dotted key, and a literal secret is
refused without echoing it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from replicator.config.error import ConfigError
from replicator.config.schema import (
    ENV_NAME,
    GIVEN,
    IN_FILE,
    LITERAL_SECRET_KEYS,
    NAME,
    ONLY_IF,
    Items,
    Range,
    Shape,
    Where,
    file_key,
    has_default,
    hints,
    is_secret,
    join,
    python_default,
    unwrap,
    variants,
)
from replicator.config.secret import Secret

T = TypeVar("T")


class Reader:
    """Walks the TOML tree once, keeping the file path for error messages and `environ` for secrets."""

    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self.path = path
        self.environ = environ
        self.base = path.resolve().parent

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.path, key, message)

    def section(self, cls: type[T], key: str, raw: Any, given: Mapping[str, Any]) -> T:
        """One table as `cls`: literal secrets refused, unknown keys named, then every field read."""
        raw = self.table(key, raw)
        if secret_names(cls):
            self.refuse_literal_secrets(key, raw, secret_names(cls))
        switch = switch_key(cls)
        chosen = {switch: self.switch_value(cls, switch, key, raw)} if switch else {}
        context = f"with {switch} = {chosen[switch]!r}" if switch else ""
        self.check_keys(key, raw, set(keys_of(cls, chosen)), context)
        return self.build(cls, key, raw, given)

    def build(self, cls: type[T], key: str, raw: Mapping[str, Any], given: Mapping[str, Any]) -> T:
        """Read `cls`'s fields from `raw` in declaration order, then run its `validate` hook."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            hint = hints(cls)[f.name]
            if GIVEN in f.metadata:
                values[f.name] = given[f.metadata[GIVEN]]
            elif not applies(f.metadata, values):
                continue
            elif is_secret(hint):
                secret = self.secret(key, f.name, raw, required=not has_default(f))
                if secret is not None:
                    values[f.name] = secret
            elif variants(hint):
                chosen = self.variant(join(key, f.name), hint, raw.get(f.name))
                values[f.name] = self.build(chosen, key, raw, {})
            elif f.name in raw:
                values[f.name] = self.value(join(key, f.name), hint, raw[f.name])
            elif IN_FILE in f.metadata:
                values[f.name] = self.value(join(key, f.name), hint, f.metadata[IN_FILE](values))
            elif is_section(hint):
                values[f.name] = self.value(join(key, f.name), hint, {})
            elif has_default(f):
                values[f.name] = python_default(f)
            else:
                raise self.error(join(key, f.name), "is required")
        section = cls(**values)
        validate = getattr(section, "validate", None)
        return validate(Where(self.path, key)) if validate else section

    def switch_value(self, cls: type, name: str, key: str, raw: Mapping[str, Any]) -> str:
        """The value of the key that decides which other keys a table may hold (`auth`, `kind`)."""
        hint = hints(cls)[name]
        if variants(hint):
            return self.variant(join(key, name), hint, raw.get(name)).method
        return self.value(join(key, name), hint, raw.get(name))

    def variant(self, key: str, hint: Any, raw: Any) -> type:
        """The section a union-typed key's value picks (`auth = "jwt_bearer"` -> JwtBearerAuth)."""
        options = variants(hint)
        return options[self.choice(key, raw, tuple(options))]

    def value(self, key: str, hint: Any, raw: Any) -> Any:
        """One value of the annotated type, or a ConfigError saying what was expected."""
        kind, marks = unwrap(hint)
        origin = get_origin(kind)
        if is_dataclass(kind):
            return self.section(kind, key, raw, {})
        if origin is dict:
            entries = self.table(key, raw)
            for name in entries:
                if problem := NAME.problem(name):
                    raise self.error(f"{key}.{name}", problem)
            return {name: self.section(get_args(kind)[1], f"{key}.{name}", body, {"name": name})
                    for name, body in entries.items()}
        if origin is Literal:
            return self.choice(key, raw, get_args(kind))
        if kind is bool:
            if not isinstance(raw, bool):
                raise self.error(key, f"must be true or false (got {raw!r})")
            return raw
        if kind is int:
            return self.integer(key, raw, next((m for m in marks if isinstance(m, Range)), None))
        if kind is float:
            if not isinstance(raw, int | float) or isinstance(raw, bool):
                raise self.error(key, f"must be a number (got {raw!r})")
            return float(raw)
        if origin is tuple:
            what = next((m.what for m in marks if isinstance(m, Items)), "non-empty strings")
            if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
                raise self.error(key, f"must be a list of {what}")
            return tuple(raw)
        text = self.string(key, raw)
        for shape in (m for m in marks if isinstance(m, Shape)):
            if problem := shape.problem(text):
                raise self.error(key, problem)
        return self.file_path(text) if kind is Path else text

    def choice(self, key: str, raw: Any, choices: tuple[str, ...]) -> str:
        text = self.string(key, raw)
        if text not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)} (got {text!r})")
        return text

    def integer(self, key: str, raw: Any, bounds: Range | None) -> int:
        within = f" from {bounds.low} to {bounds.high}" if bounds else ""
        if (not isinstance(raw, int) or isinstance(raw, bool)
                or (bounds and not bounds.low <= raw <= bounds.high)):
            raise self.error(key, f"must be an integer{within} (got {raw!r})")
        return raw

    def string(self, key: str, raw: Any) -> str:
        if raw is None:
            raise self.error(key, "is required")
        if not isinstance(raw, str) or not raw:
            raise self.error(key, f"must be a non-empty string (got {raw!r})")
        return raw

    def table(self, key: str, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.error(key, f"must be a table, got {type(raw).__name__}")
        return raw

    def file_path(self, text: str) -> Path:
        """Relative paths are relative to the config file, so the file works from any directory."""
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.base / path

    def secret(self, key: str, name: str, raw: Mapping[str, Any], *, required: bool) -> Secret | None:
        """The Secret named by `<name>_env` in table `key` (the variable's value is read lazily)."""
        env_key = f"{key}.{name}_env"
        if name + "_env" not in raw:
            if required:
                raise self.error(env_key, "is required (the name of an environment variable)")
            return None
        env = self.string(env_key, raw[name + "_env"])
        if problem := ENV_NAME.problem(env):
            # The value is not echoed: a user who pasted the secret itself here must not see it logged.
            raise self.error(env_key, problem)
        return Secret(env, self.environ.get(env), path=self.path, key=env_key)

    def refuse_literal_secrets(self, key: str, raw: Mapping[str, Any], names: set[str]) -> None:
        for name in raw:
            if name in names:
                raise self.error(
                    f"{key}.{name}",
                    f"secrets may not be written in the config file; put the value in an environment "
                    f"variable and name it with `{name}_env = \"VARIABLE_NAME\"`",
                )

    def check_keys(self, key: str, raw: Mapping[str, Any], allowed: set[str], context: str) -> None:
        for name in raw:
            if name not in allowed:
                hint = f" {context}" if context else ""
                raise self.error(join(key, name),
                                 f"unknown key{hint} (allowed: {', '.join(sorted(allowed))})")


def applies(metadata: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """False for a key that `only_if` rules out given the keys read so far."""
    if ONLY_IF not in metadata:
        return True
    name, wanted = metadata[ONLY_IF]
    return values.get(name) == wanted


def is_section(hint: Any) -> bool:
    """A table in the file: a section, or a table of named sections."""
    kind, _ = unwrap(hint)
    return is_dataclass(kind) or get_origin(kind) is dict


def switch_key(cls: type) -> str | None:
    """The key whose value decides the table's other keys: a union of sections, or an `only_if` key."""
    for f in fields(cls):
        if variants(hints(cls)[f.name]):
            return f.name
        if ONLY_IF in f.metadata:
            return f.metadata[ONLY_IF][0]
    return None


def secret_names(cls: type) -> set[str]:
    """Literal keys refused in a table that holds secrets: its secret fields' names and the usual ones."""
    names = {f.name for f in fields(cls) if is_secret(hints(cls)[f.name])}
    for f in fields(cls):
        for variant in variants(hints(cls)[f.name]).values():
            names |= secret_names(variant)
    return names | set(LITERAL_SECRET_KEYS) if names else set()


def keys_of(cls: type, chosen: Mapping[str, Any]) -> Iterator[str]:
    """The keys a table of `cls` may hold once its switch key has the value in `chosen`."""
    for f in fields(cls):
        hint = hints(cls)[f.name]
        if GIVEN in f.metadata or not applies(f.metadata, chosen):
            continue
        yield file_key(f.name, hint)
        if f.name in chosen and variants(hint):
            yield from keys_of(variants(hint)[chosen[f.name]], {})


def known_keys(cls: type, prefix: str = "") -> set[str]:
    """Every key a file may hold below `cls`, dotted, a named table's name as `*` (`orgs.*.auth`)."""
    keys: set[str] = set()
    for f in fields(cls):
        hint = hints(cls)[f.name]
        kind, _ = unwrap(hint)
        if GIVEN in f.metadata:
            continue
        if is_dataclass(kind):
            keys |= known_keys(kind, join(prefix, f.name))
        elif get_origin(kind) is dict:
            keys |= known_keys(get_args(kind)[1], join(prefix, f"{f.name}.*"))
        else:
            keys.add(join(prefix, file_key(f.name, hint)))
            for variant in variants(hint).values():
                keys |= known_keys(variant, prefix)
    return keys
