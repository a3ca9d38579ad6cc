"""What the target org's describe says about the objects a restore or replicate writes.

Why from the target's describe (not the store's): only what the org accepts today may be sent;
formula, roll-up, audit and system fields are not createable there, so they are never written, and
a field the backup has but the org dropped is simply not sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from replicator.errors import NotFound
from replicator.salesforce.client import OrgClient, OrgError

# Never written, even where an org with "Set Audit Fields" would accept them on create.
SYSTEM_FIELDS = frozenset({"Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
                           "LastModifiedById", "SystemModstamp", "LastActivityDate", "LastViewedDate",
                           "LastReferencedDate", "MasterRecordId"})


class UnknownObject(NotFound, ValueError):
    """An object the store or the target org does not have."""


@dataclass(frozen=True)
class ObjectModel:
    """One object as the target org describes it: what may be written and what it references."""

    name: str
    createable: bool
    insertable: tuple[str, ...]  # createable fields
    updateable: tuple[str, ...]
    references: dict[str, tuple[tuple[str, ...], bool]]  # field -> (referenced objects, required)
    children: tuple[tuple[str, str, bool], ...]  # (child object, its reference field, cascade delete)
    types: dict[str, str]  # field -> describe type

    @classmethod
    def of(cls, describe: dict[str, Any]) -> ObjectModel:
        """The model of one describe answer."""
        fields = [f for f in describe.get("fields", []) if f["name"] not in SYSTEM_FIELDS
                  and not f.get("calculated") and not f.get("autoNumber")]
        references = {f["name"]: (tuple(f.get("referenceTo") or ()),
                                  bool(f.get("createable")) and not f.get("nillable")
                                  and not f.get("defaultedOnCreate"))
                      for f in fields if f.get("type") == "reference" and f.get("referenceTo")}
        children = tuple((r["childSObject"], r["field"], bool(r.get("cascadeDelete")))
                         for r in describe.get("childRelationships", [])
                         if r.get("childSObject") and r.get("field"))
        return cls(describe["name"], bool(describe.get("createable")),
                   tuple(f["name"] for f in fields if f.get("createable")),
                   tuple(f["name"] for f in fields if f.get("updateable")),
                   references, children, {f["name"]: f.get("type", "") for f in describe.get("fields", [])})


class Describer:
    """Describe answers of one org, each object asked once (describes cost API calls)."""

    def __init__(self, client: OrgClient) -> None:
        self.client = client
        self._models: dict[str, ObjectModel | None] = {}
        self._prefixes: dict[str, str] | None = None

    def model(self, sobject: str) -> ObjectModel | None:
        """The object's model, or None when the org has no such object."""
        if sobject not in self._models:
            try:
                self._models[sobject] = ObjectModel.of(self.client.describe(sobject))
            except OrgError as exc:
                if exc.status != 404 and exc.code != "NOT_FOUND":
                    raise
                self._models[sobject] = None
        return self._models[sobject]

    def require(self, sobject: str) -> ObjectModel:
        """The model of an object the org must have."""
        found = self.model(sobject)
        if found is None:
            raise UnknownObject(f"the target org has no object {sobject}")
        return found

    def object_of(self, record_id: str) -> str | None:
        """The object an Id belongs to, by its three-character key prefix."""
        if self._prefixes is None:
            self._prefixes = {o["keyPrefix"]: o["name"] for o in self.client.describe_global()["sobjects"]
                              if o.get("keyPrefix")}
        return self._prefixes.get(record_id[:3])
