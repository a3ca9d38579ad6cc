"""Seed templates: which slice of production a sandbox gets, read from TOML and checked.

Why TOML with typed filters: a template is shared between people and run unattended, so a filter
is data (field, operator, value) that becomes a bound parameter, never text spliced into SQL or
SOQL. Jinja2 renders *values* only (dates relative to today, `--param k=v`), inside a sandbox and
with undefined names as errors. Every problem is one sentence naming the template file and key.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from replicator.errors import InvalidInput, NotFound

__all__ = ["OPERATORS", "Condition", "MatchRules", "Node", "ObjectRules", "Template", "TemplateProblem",
           "UnknownTemplate", "find_template", "load_template", "parameters", "shipped_folder",
           "template_names"]

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "like", "is null", "is not null")
NO_VALUE = ("is null", "is not null")
LIST_VALUE = ("in", "not in")
USER_MATCH = ("username", "email", "running_user")
PRICEBOOK_MATCH = ("standard", "name")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TemplateProblem(InvalidInput, ValueError):
    """A template that cannot be used as written; the message names the file and the key."""


class UnknownTemplate(NotFound, ValueError):
    """No template of that name in the template folders."""


@dataclass(frozen=True)
class Condition:
    """One typed filter condition: `field op value`, the value rendered and later bound."""

    field: str
    op: str
    value: Any = None
    key: str = ""  # where it was written, e.g. "root.filter[1]", for error messages


@dataclass(frozen=True)
class Node:
    """An object of the subset: the root, or a child reached by a relationship name from its parent."""

    key: str  # "root", "root.children[0]", ... (error messages)
    object: str | None  # the root's object; children learn theirs from the parent's describe
    relationship: str | None = None
    filter: tuple[Condition, ...] = ()
    limit: int | None = None
    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class ObjectRules:
    """Per-object rules: fields never copied, masking rules, and the upsert key."""

    exclude: tuple[str, ...] = ()
    mask: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None


@dataclass(frozen=True)
class MatchRules:
    """How records that are never seeded are found in the target: users, record types, pricebooks."""

    users: str = "username"  # username | email | running_user (unmatched users: the running user)
    pricebook: str = "standard"  # standard: the target's standard pricebook; name: same Name
    record_types: str = "developer_name"


@dataclass(frozen=True)
class Template:
    """A checked template: the subset tree, per-object rules and matching."""

    path: Path
    name: str
    description: str
    root: Node
    objects: dict[str, ObjectRules]
    match: MatchRules

    def nodes(self) -> list[Node]:
        """Every node, root first, depth first."""
        out, todo = [], [self.root]
        while todo:
            node = todo.pop(0)
            out.append(node)
            todo[:0] = list(node.children)
        return out


def shipped_folder() -> Path:
    """The example templates shipped with Replicator (a source checkout, else the installed share)."""
    here = Path(__file__).resolve().parents[2] / "templates" / "seed"
    if here.is_dir():
        return here
    import sys

    return Path(sys.prefix) / "share" / "replicator" / "templates" / "seed"


def parameters(path: Path) -> list[str]:
    """The `param.NAME` values a template expects on the command line."""
    try:
        return sorted(set(re.findall(r"param\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8"))))
    except OSError:
        return []


def template_names(folders: list[Path]) -> dict[str, Path]:
    """Template name (file stem) -> path; an earlier folder wins over a later one."""
    found: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


def find_template(name_or_path: str, folders: list[Path]) -> Path:
    """A template by name (in the folders) or by path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        return path
    names = template_names(folders)
    if name_or_path in names:
        return names[name_or_path]
    raise UnknownTemplate(f"no seed template {name_or_path!r} (templates: {', '.join(names) or 'none'})")


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.globals.update(days=lambda n: dt.timedelta(days=n), weeks=lambda n: dt.timedelta(weeks=n))
    return env


class _Reader:
    """Walks the parsed TOML, rendering values and naming the key of every problem."""

    def __init__(self, path: Path, params: dict[str, str] | None, today: dt.date) -> None:
        self.path, self.params, self.today = path, params, today
        self.env = _environment()

    def fail(self, key: str, message: str) -> TemplateProblem:
        return TemplateProblem(f"{self.path.name}: {key}: {message}")

    def render(self, key: str, value: Any) -> Any:
        """A value with its Jinja2 expressions rendered (text only; other types pass through)."""
        if isinstance(value, list):
            return [self.render(f"{key}[{i}]", v) for i, v in enumerate(value)]
        if not isinstance(value, str) or "{" not in value or self.params is None:
            return value
        try:
            return self.env.from_string(value).render(
                today=self.today, now=dt.datetime.now(dt.UTC), param=self.params)
        except TemplateError as exc:
            raise self.fail(key, f"cannot render {value!r}: {exc}") from None

    def table(self, key: str, value: Any, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(f"{key}.{unknown[0]}" if key else unknown[0],
                            f"unknown key (known: {', '.join(sorted(allowed))})")
        return value

    def name(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.fail(key, f"{value!r} is not an API name")
        return value

    def node(self, key: str, raw: Any, *, root: bool) -> Node:
        raw = self.table(key, raw, {"object", "relationship", "filter", "limit", "children"})
        obj = rel = None
        if root:
            if "object" not in raw:
                raise self.fail(key, "needs 'object'")
            obj = self.name(f"{key}.object", raw["object"])
        else:
            if "relationship" not in raw:
                raise self.fail(key, "needs 'relationship' (a child relationship name of its parent)")
            rel = self.name(f"{key}.relationship", raw["relationship"])
        limit = raw.get("limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise self.fail(f"{key}.limit", f"must be a positive whole number, not {limit!r}")
        conditions = raw.get("filter", [])
        if not isinstance(conditions, list):
            raise self.fail(f"{key}.filter", "must be a list of {field, op, value} tables")
        children = raw.get("children", [])
        if not isinstance(children, list):
            raise self.fail(f"{key}.children", "must be a list of tables")
        return Node(key, obj, rel,
                    tuple(self.condition(f"{key}.filter[{i}]", c) for i, c in enumerate(conditions)), limit,
                    tuple(self.node(f"{key}.children[{i}]", c, root=False) for i, c in enumerate(children)))

    def condition(self, key: str, raw: Any) -> Condition:
        raw = self.table(key, raw, {"field", "op", "value"})
        name = self.name(f"{key}.field", raw.get("field"))
        op = str(raw.get("op", "=")).lower()
        if op not in OPERATORS:
            raise self.fail(f"{key}.op", f"{op!r} is not an operator (known: {', '.join(OPERATORS)})")
        if op in NO_VALUE:
            if "value" in raw:
                raise self.fail(f"{key}.value", f"'{op}' takes no value")
            return Condition(name, op, None, key)
        if "value" not in raw:
            raise self.fail(key, f"'{op}' needs a value")
        value = self.render(f"{key}.value", raw["value"])
        if (op in LIST_VALUE) != isinstance(value, list):
            raise self.fail(f"{key}.value", f"'{op}' needs {'a list' if op in LIST_VALUE else 'one value'}")
        if isinstance(value, list) and not value:
            raise self.fail(f"{key}.value", "an empty list selects nothing")
        if isinstance(value, dict):
            raise self.fail(f"{key}.value", "must be text, a number, a boolean or a date")
        return Condition(name, op, value, key)

    def rules(self, key: str, raw: Any) -> ObjectRules:
        raw = self.table(key, raw, {"exclude", "mask", "external_id"})
        exclude = raw.get("exclude", [])
        if not isinstance(exclude, list):
            raise self.fail(f"{key}.exclude", "must be a list of field names")
        mask = self.table(f"{key}.mask", raw.get("mask", {}), set(raw.get("mask", {})))
        for fname, rule in mask.items():
            self.name(f"{key}.mask.{fname}", fname)
            mask[fname] = self.render(f"{key}.mask.{fname}", rule)
        external = raw.get("external_id")
        return ObjectRules(tuple(self.name(f"{key}.exclude[{i}]", f) for i, f in enumerate(exclude)),
                           dict(mask),
                           None if external is None else self.name(f"{key}.external_id", external))

    def match(self, raw: Any) -> MatchRules:
        raw = self.table("match", raw, {"users", "pricebook", "record_types"})
        rules = MatchRules(**raw)
        for key, allowed in (("users", USER_MATCH), ("pricebook", PRICEBOOK_MATCH),
                             ("record_types", ("developer_name",))):
            if getattr(rules, key) not in allowed:
                raise self.fail(f"match.{key}", f"{getattr(rules, key)!r} is not one of {', '.join(allowed)}")
        return rules


def load_template(path: Path, params: dict[str, str] | None = None, *,
                  today: dt.date | None = None) -> Template:
    """Read and check a template's shape (objects and fields are checked against describe later).

    `params` None leaves Jinja2 expressions unrendered (listing templates needs no values)."""
    for key in params or {}:
        if not _PARAM.match(key):
            raise TemplateProblem(f"{path.name}: parameter {key!r} is not a name")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateProblem(f"{path.name}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TemplateProblem(f"{path.name}: not TOML: {exc}") from None
    reader = _Reader(path, params, today or dt.datetime.now(dt.UTC).date())
    raw = reader.table("", raw, {"name", "description", "root", "objects", "match"})
    if "root" not in raw:
        raise reader.fail("root", "missing: a template needs a root object")
    objects = reader.table("objects", raw.get("objects", {}), set(raw.get("objects", {})))
    return Template(
        path=path, name=str(raw.get("name", path.stem)), description=str(raw.get("description", "")),
        root=reader.node("root", raw["root"], root=True),
        objects={reader.name(f"objects.{k}", k): reader.rules(f"objects.{k}", v) for k, v in objects.items()},
        match=reader.match(raw.get("match", {})),
    )
