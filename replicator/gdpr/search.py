"""GDPR search: which objects, records and versions hold a person's email, phone or name, and which
exports copied them.

Why by describe type: a data-protection officer asks "where is this person", not "which column";
the store remembers each field's describe type (main.field_types), so an email is looked for in
every `email` field, a phone number in every `phone` field (compared by its digits, since orgs spell
numbers many ways), a name in the name fields (and "First Last" against FirstName + LastName),
an address part in the address fields; free text looks into every text field. Values are always
bound parameters; object and field names come from the store and are quoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from replicator.config import Config
from replicator.errors import InvalidInput
from replicator.result import JobResult, jsonable
from replicator.store.repository import Repository
from replicator.store.schema import quote
from replicator.store.snapshot import SnapshotStore

__all__ = ["BadSearch", "SearchRequest", "SearchResult", "run_search", "search"]

NAME_FIELDS = {"Name", "FirstName", "LastName", "MiddleName", "Suffix", "Salutation"}
ADDRESS_PARTS = ("Street", "City", "State", "PostalCode", "Country")
TEXT_TYPES = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"}
KINDS = ("email", "phone", "name", "address", "text")


class BadSearch(InvalidInput, ValueError):
    """A search that names no value, more than one kind, or a value that cannot be of that kind."""


@dataclass(frozen=True)
class SearchRequest:
    """Exactly one of the values; `text` searches every text field for the value as a substring."""

    email: str | None = None
    phone: str | None = None
    name: str | None = None
    address: str | None = None
    text: str | None = None

    def kind(self) -> tuple[str, str]:
        """The one kind asked for and its value (BadSearch otherwise)."""
        given = [(k, v) for k in KINDS if (v := getattr(self, k)) is not None]
        if len(given) != 1:
            raise BadSearch(f"search for exactly one value: {', '.join(KINDS)}")
        kind, value = given[0]
        if not value.strip():
            raise BadSearch(f"the {kind} to search for is empty")
        if kind == "phone" and not re.sub(r"\D", "", value):
            raise BadSearch(f"{value!r} holds no digits: not a phone number")
        if kind == "email" and "@" not in value:
            raise BadSearch(f"{value!r} is not an email address")
        return kind, value.strip()


@dataclass
class Match:
    """One record holding the value: its versions (run, validity) and the fields that hold it."""

    object: str
    id: str
    fields: list[str]
    versions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SearchResult(JobResult):
    """Records and versions holding the value, and the exports that copied any of them."""

    kind: str
    matches: list[Match]
    exports: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """Matches with their versions, and the exports."""
        return jsonable(self)

    def text(self) -> str:
        """One line per record and per export."""
        if not self.matches:
            return f"no record in the store holds that {self.kind}"
        lines = [f"{m.object} {m.id}: {len(m.versions)} versions (runs "
                 f"{', '.join(str(v['run_id']) for v in m.versions)}) in {', '.join(m.fields)}"
                 for m in self.matches]
        lines += [f"export {e['export_id']} ({e['kind']}, run {e['run_id']}): {e['destination']}"
                  for e in self.exports]
        return "\n".join(lines)


def _personal(store: SnapshotStore, obj: str, kind: str) -> list[str]:
    """The object's stored fields that can hold a value of `kind`, by describe type and name."""
    described = store.reads.field_types(obj)
    columns = store.reads.column_types(obj)
    text = [f for f, t in columns.items() if t == "VARCHAR" and f != "Id"
            and described.get(f, {}).get("type", "string") in TEXT_TYPES]
    if kind in ("email", "phone"):
        return [f for f in text if described.get(f, {}).get("type") == kind]
    if kind == "name":
        return [f for f in text if f in NAME_FIELDS]
    if kind == "address":
        return [f for f in text if f.endswith(ADDRESS_PARTS)]
    return text


def _condition(kind: str, column: str) -> str:
    """SQL true when `column` holds the value $1 (compared as the kind is compared)."""
    q = quote(column)
    if kind == "phone":
        return f"regexp_replace({q}, '\\D', '', 'g') = regexp_replace($1, '\\D', '', 'g')"
    if kind == "text":
        return f"contains(lower({q}), lower($1))"
    return f"lower(trim({q})) = lower($1)"


def _object_matches(store: SnapshotStore, obj: str, kind: str, value: str) -> list[Match]:
    fields = _personal(store, obj, kind)
    checks = {f: _condition(kind, f) for f in fields}
    if kind == "name" and {"FirstName", "LastName"} <= set(fields):
        checks["FirstName LastName"] = ("lower(concat_ws(' ', trim(\"FirstName\"), trim(\"LastName\"))) "
                                        "= lower($1)")
    if not checks:
        return []
    flags = ", ".join(f"{c} AS {quote(name)}" for name, c in checks.items())
    rows = store.db.execute(
        f'SELECT "Id", _run_id, _valid_from, _valid_to, _deleted, {flags} FROM hist.{quote(obj)} '
        f"WHERE {' OR '.join(f'coalesce({c}, false)' for c in checks.values())} ORDER BY \"Id\", _valid_from",
        [value]).fetchall()
    found: dict[str, Match] = {}
    for rid, run_id, valid_from, valid_to, deleted, *hits in rows:
        match = found.setdefault(rid, Match(obj, rid, []))
        match.fields = sorted({*match.fields, *(n for n, hit in zip(checks, hits, strict=True) if hit)})
        match.versions.append({"run_id": run_id, "valid_from": valid_from, "valid_to": valid_to,
                               "deleted": deleted})
    return list(found.values())


def _copied(entry: dict[str, Any], versions: list[dict[str, Any]], run_ts: dict[int, datetime]) -> bool:
    """Whether an export (as of its run) or a change file (between its runs) held one of the versions."""
    at = run_ts.get(entry["run_id"])
    if at is None:
        return False
    if entry["kind"] != "diff":
        return any(not v["deleted"] and v["valid_from"] <= at
                   and (v["valid_to"] is None or v["valid_to"] > at) for v in versions)
    since = run_ts.get(entry["from_run"])
    return since is not None and any(since < v["valid_from"] <= at or since < (v["valid_to"] or since) <= at
                                     for v in versions)


def search(store: SnapshotStore, request: SearchRequest) -> SearchResult:
    """Every record and version holding the value, and every ledger export holding one of them."""
    kind, value = request.kind()
    matches = [m for obj in store.reads.objects() for m in _object_matches(store, obj, kind, value)]
    run_ts = {r["run_id"]: r["run_ts"] for r in store.ledger.runs()}
    exports = [{k: e[k] for k in ("export_id", "kind", "format", "run_id", "from_run", "destination",
                                  "exported_at")} | {"objects": sorted({m.object for m in hits})}
               for e in store.exports.entries()
               if (hits := [m for m in matches
                            if m.object in (e["objects"] or []) and _copied(e, m.versions, run_ts)])]
    return SearchResult(kind, matches, exports)


def run_search(config: Config, request: SearchRequest) -> SearchResult:
    """Search the store read-only (no lock: a backup may run meanwhile)."""
    request.kind()
    with Repository.for_storage(config.storage).open_read() as store:
        return search(store, request)
