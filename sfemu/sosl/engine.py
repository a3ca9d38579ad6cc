"""Runs a `Search`: one SOQL query per object, restricted to rows whose searched fields match.

Which fields a search group covers follows Salesforce: NAME is the name field (and a person's
first and last name), EMAIL the email fields, PHONE the phone fields, ALL (and SIDEBAR) every text
field of those kinds plus text areas and URLs. Deleted records are never found (SOSL has no
ALL ROWS over REST). Results keep RETURNING's object order, each object's rows in its own ORDER BY,
and stop at the statement's overall LIMIT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sfemu.errors import SalesforceError
from sfemu.query import query_engine
from sfemu.schema import Field, SObject
from sfemu.soql.scope import column_sql
from sfemu.sosl.statement import Search, Target
from sfemu.sosl.terms import term_sql

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg

_TEXT_TYPES = ("string", "textarea", "email", "phone", "url")


def searched_fields(obj: SObject, group: str) -> list[Field]:
    """The fields of `obj` a search in `group` looks at."""
    fields = [f for f in obj.fields.values() if f.type in _TEXT_TYPES and f.formula_sql is None]
    if group == "NAME":
        return [f for f in fields if f.name_field or f.compound_field_name == "Name"]
    if group in ("EMAIL", "PHONE"):
        return [f for f in fields if f.type == group.lower()]
    return fields


def _default_targets(org: EmulatedOrg, group: str) -> list[Target]:
    return [Target(obj.name) for obj in org.schema
            if obj.searchable and obj.queryable and not obj.query_requires_filter
            and searched_fields(obj, group)]


def run_search(org: EmulatedOrg, search: Search, api_version: str) -> list[dict[str, Any]]:
    """searchRecords for a search: REST records with attributes, at most `search.limit` of them."""
    engine = query_engine(org)
    records: list[dict[str, Any]] = []
    for target in search.targets or _default_targets(org, search.group):
        remaining = search.limit - len(records)
        if remaining <= 0:
            break
        obj = org.schema.get(target.name)
        if obj is not None and not obj.searchable:
            raise SalesforceError(400, "INVALID_TYPE", f"entity type {obj.name} does not support search")
        fields = searched_fields(obj, search.group) if obj is not None else []

        def restrict(alias: str, obj: SObject | None = obj, fields: list[Field] = fields) -> tuple[str, list]:
            params: list = []
            columns = [column_sql(alias, f, obj) for f in fields] if obj is not None else []
            phones = [c for c, f in zip(columns, fields, strict=True) if f.type == "phone"]
            return term_sql(search.terms, columns, phones, params), params

        compiled = engine.compile(target.soql(), include_deleted=False, extra_where=restrict)
        result = engine.execute(compiled, expires=False)
        try:
            records.extend(result.json_records(0, remaining, api_version))
        finally:
            result.delete()
    return records
