"""The emulated org's objects and fields, loaded from a YAML schema file.

One description serves everything: the DuckDB tables of the store, describe/describeGlobal, SOQL
validation and the data generator. The standard org lives in `orgs/standard.yaml`; users can load
their own file in the same format (documented in `docs/emulator-schema.md`) to mirror their org.

Names are case-insensitive on Salesforce, so lookups go through lower-cased keys while every
response uses the canonical casing kept here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STANDARD_SCHEMA = Path(__file__).with_name("orgs") / "standard.yaml"

# Salesforce field type -> SOAP type, as describe reports it.
SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "string": "xsd:string",
    "textarea": "xsd:string",
    "phone": "xsd:string",
    "url": "xsd:string",
    "email": "xsd:string",
    "picklist": "xsd:string",
    "multipicklist": "xsd:string",
    "combobox": "xsd:string",
    "encryptedstring": "xsd:string",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "long": "xsd:long",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "time": "xsd:time",
    "base64": "xsd:base64Binary",
    "address": "urn:address",
    "location": "urn:location",
    "anyType": "xsd:anyType",
}

TEXT_TYPES = frozenset(
    {"id", "reference", "string", "textarea", "phone", "url", "email", "picklist",
     "multipicklist", "combobox", "encryptedstring", "anyType"}
)
NUMBER_TYPES = frozenset({"int", "long", "double", "currency", "percent"})
COMPOUND_TYPES = frozenset({"address", "location"})

ADDRESS_PARTS = (
    ("Street", "street", "textarea", 255),
    ("City", "city", "string", 40),
    ("State", "state", "string", 80),
    ("PostalCode", "postalCode", "string", 20),
    ("Country", "country", "string", 80),
    ("Latitude", "latitude", "double", None),
    ("Longitude", "longitude", "double", None),
    ("GeocodeAccuracy", "geocodeAccuracy", "picklist", 40),
)


class SchemaError(ValueError):
    """A schema file that cannot describe an org; the message names the object and field."""


@dataclass
class Field:
    """One field of an sObject, with everything describe and the store need to know."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    required: bool = False  # nillable=False and not defaulted on create: REQUIRED_FIELD_MISSING
    defaulted_on_create: bool = False
    default_value: Any = None
    unique: bool = False
    external_id: bool = False
    id_lookup: bool = False
    name_field: bool = False
    custom: bool = False
    reference_to: list[str] = field(default_factory=list)
    relationship_name: str | None = None
    child_relationship: str | None = None  # the parent's childRelationships name for this lookup
    cascade_delete: bool = False  # master-detail
    master_detail: bool = False
    restricted_delete: bool = False
    picklist_values: list[str] = field(default_factory=list)
    compound_field_name: str | None = None  # e.g. BillingCity -> "BillingAddress"
    compound_key: str | None = None  # key inside the compound JSON value, e.g. "city"
    components: list[str] = field(default_factory=list)  # for an address/location field
    calculated: bool = False
    formula: str | None = None  # Salesforce formula text (describe's calculatedFormula)
    formula_sql: str | None = None  # the same formula as a DuckDB expression over the row
    rollup: dict[str, Any] | None = None  # {object, field, function} for roll-up summaries
    auto_number: bool = False
    html_formatted: bool = False
    case_sensitive: bool = False
    filterable: bool = True
    sortable: bool = True
    groupable: bool = True
    aggregatable: bool = True
    system: bool = False  # audit and system fields maintained by the server

    @property
    def soap_type(self) -> str:
        return SOAP_TYPES[self.type]

    @property
    def stored(self) -> bool:
        """True when the value is a column of the store (compounds and formulas are computed)."""
        return self.type not in COMPOUND_TYPES and self.formula_sql is None

    @property
    def polymorphic(self) -> bool:
        return len(self.reference_to) > 1

    @property
    def sql_type(self) -> str:
        """DuckDB column type for the value as Salesforce would store it."""
        t = self.type
        if t == "boolean":
            return "BOOLEAN"
        if t == "int":
            return "INTEGER"
        if t == "long":
            return "BIGINT"
        if t in ("double", "currency", "percent"):
            return f"DECIMAL({min(max(self.precision, 1), 38)},{self.scale})" if self.precision else "DOUBLE"
        if t == "date":
            return "DATE"
        if t == "datetime":
            return "TIMESTAMP"  # naive UTC, millisecond precision
        if t == "time":
            return "TIME"
        if t == "base64":
            return "BLOB"
        return "VARCHAR"


@dataclass
class SObject:
    """One sObject type: describe-level flags plus its fields in declaration order."""

    name: str
    key_prefix: str | None
    label: str
    label_plural: str
    custom: bool = False
    queryable: bool = True
    replicateable: bool = True
    retrieveable: bool = True
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    undeletable: bool = True
    triggerable: bool = True
    searchable: bool = True
    layoutable: bool = True
    feed_enabled: bool = False
    custom_setting: bool = False
    bulk_supported: bool = True  # False: Bulk API refuses it with INVALIDENTITY
    query_requires_filter: str | None = None  # e.g. ContentDocumentLink needs a filter on an Id
    record_types: list[str] = field(default_factory=list)
    fields: dict[str, Field] = field(default_factory=dict)  # lower-cased name -> Field

    def field(self, name: str) -> Field | None:
        """Case-insensitive field lookup."""
        return self.fields.get(name.lower())

    def relationship(self, name: str) -> Field | None:
        """The reference field whose relationshipName is `name` (case-insensitive)."""
        lname = name.lower()
        for f in self.fields.values():
            if f.relationship_name and f.relationship_name.lower() == lname:
                return f
        return None

    @property
    def stored_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.stored]

    @property
    def name_field(self) -> Field | None:
        return next((f for f in self.fields.values() if f.name_field), None)


@dataclass
class ChildRelationship:
    """A parent-to-child relationship as describe's childRelationships lists it."""

    child: SObject
    field: Field
    relationship_name: str | None
    cascade_delete: bool
    restricted_delete: bool


class Schema:
    """All sObjects of an org, addressable by name (case-insensitive) and key prefix."""

    def __init__(self, objects: list[SObject], automations: dict[str, Any] | None = None) -> None:
        self.objects: dict[str, SObject] = {o.name.lower(): o for o in objects}
        self._by_prefix = {o.key_prefix: o for o in objects if o.key_prefix}
        self.automations = automations or {}
        self._children: dict[str, list[ChildRelationship]] = {o.name.lower(): [] for o in objects}
        for obj in objects:
            for f in obj.fields.values():
                for target in f.reference_to:
                    parent = self.get(target)
                    if parent is None:
                        raise SchemaError(f"{obj.name}.{f.name} references unknown object {target}")
                    self._children[parent.name.lower()].append(
                        ChildRelationship(obj, f, f.child_relationship, f.cascade_delete,
                                          f.restricted_delete)
                    )

    def get(self, name: str) -> SObject | None:
        return self.objects.get(name.lower())

    def by_prefix(self, prefix: str) -> SObject | None:
        return self._by_prefix.get(prefix)

    def object_of_id(self, record_id: str) -> SObject | None:
        return self._by_prefix.get(record_id[:3])

    def children(self, name: str) -> list[ChildRelationship]:
        return self._children.get(name.lower(), [])

    def child_relationship(self, parent: str, relationship_name: str) -> ChildRelationship | None:
        lname = relationship_name.lower()
        for rel in self.children(parent):
            if rel.relationship_name and rel.relationship_name.lower() == lname:
                return rel
        return None

    def __iter__(self):
        return iter(self.objects.values())

    @classmethod
    def load(cls, path: str | Path = STANDARD_SCHEMA, *extra: str | Path) -> Schema:
        """Load a schema file, optionally merged with further files (later ones add or override)."""
        merged: dict[str, Any] = {"objects": {}, "automations": {}}
        for p in (path, *extra):
            doc = yaml.safe_load(Path(p).read_text()) or {}
            if not isinstance(doc, dict):
                raise SchemaError(f"{p}: expected a mapping with 'objects'")
            merged["objects"].update(doc.get("objects") or {})
            for kind, items in (doc.get("automations") or {}).items():
                merged["automations"].setdefault(kind, []).extend(items)
        objects = [build_object(name, spec or {}) for name, spec in merged["objects"].items()]
        return cls(objects, merged["automations"])


# --- building objects from the YAML description ------------------------------------------------

_SYSTEM_AUDIT = (
    ("CreatedDate", "datetime", "Created Date"),
    ("CreatedById", "reference", "Created By ID"),
    ("LastModifiedDate", "datetime", "Last Modified Date"),
    ("LastModifiedById", "reference", "Last Modified By ID"),
    ("SystemModstamp", "datetime", "System Modstamp"),
)


def _label(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    return base.replace("_", " ")


def _system_field(name: str, ftype: str, label: str, **kw: Any) -> Field:
    f = Field(name=name, type=ftype, label=label, createable=False, updateable=False,
              nillable=False, defaulted_on_create=True, system=True, **kw)
    if ftype == "reference":
        f.length = 18
    return f


def build_object(name: str, spec: dict[str, Any]) -> SObject:
    """Turn one YAML object entry into an SObject, adding the system fields Salesforce adds."""
    custom = name.endswith("__c")
    obj = SObject(
        name=name,
        key_prefix=spec.get("prefix"),
        label=spec.get("label", _label(name)),
        label_plural=spec.get("plural", spec.get("label", _label(name)) + "s"),
        custom=custom,
        record_types=list(spec.get("record_types", [])),
    )
    for flag in ("queryable", "replicateable", "retrieveable", "createable", "updateable",
                 "deletable", "undeletable", "triggerable", "searchable", "layoutable",
                 "feed_enabled", "custom_setting", "bulk_supported", "query_requires_filter"):
        if flag in spec:
            setattr(obj, flag, spec[flag])
    system = spec.get("system_fields", "full")  # full | created | none
    fields: list[Field] = [Field(name="Id", type="id", label=f"{obj.label} ID", length=18,
                                 nillable=False, createable=False, updateable=False,
                                 defaulted_on_create=True, id_lookup=True, system=True)]
    if system != "none":
        fields.append(Field(name="IsDeleted", type="boolean", label="Deleted", nillable=False,
                            createable=False, updateable=False, defaulted_on_create=True,
                            default_value=False, system=True))
    if spec.get("owned"):
        fields.append(Field(name="OwnerId", type="reference", label="Owner ID", length=18,
                            nillable=False, defaulted_on_create=True, reference_to=["User"],
                            relationship_name="Owner", system=False))
    if obj.record_types:
        fields.append(Field(name="RecordTypeId", type="reference", label="Record Type ID",
                            length=18, reference_to=["RecordType"], relationship_name="RecordType"))
    declared = spec.get("fields") or {}
    if custom and not any(k == "Name" for k in declared):
        fields.append(Field(name="Name", type="string", label=f"{obj.label} Name", length=80,
                            name_field=True, required=False, nillable=True))
    for fname, fspec in declared.items():
        fields.extend(build_fields(name, fname, fspec or {}))
    if system in ("full", "created"):
        for fname, ftype, label in _SYSTEM_AUDIT:
            if system == "created" and not fname.startswith("Created"):
                continue
            kw: dict[str, Any] = {"reference_to": ["User"],
                                  "relationship_name": fname[:-2]} if ftype == "reference" else {}
            fields.append(_system_field(fname, ftype, label, **kw))
    for f in fields:
        if f.name.lower() in obj.fields:
            raise SchemaError(f"{name}.{f.name} is defined twice")
        obj.fields[f.name.lower()] = f
    return obj


def build_fields(obj_name: str, name: str, spec: dict[str, Any]) -> list[Field]:
    """One YAML field entry -> the Field (plus components for address/location compounds)."""
    ftype = spec.get("type", "string")
    if ftype not in SOAP_TYPES:
        raise SchemaError(f"{obj_name}.{name}: unknown field type {ftype!r}")
    custom = name.endswith("__c")
    to = spec.get("to", [])
    f = Field(
        name=name,
        type=ftype,
        label=spec.get("label", _label(name)),
        length=spec.get("length", _default_length(ftype)),
        precision=spec.get("precision", 18 if ftype in ("currency",) else 0),
        scale=spec.get("scale", 2 if ftype in ("currency",) else 0),
        digits=spec.get("digits", 9 if ftype == "int" else 0),
        required=bool(spec.get("required", False)),
        nillable=not spec.get("required", False) and ftype != "boolean",
        createable=spec.get("createable", True),
        updateable=spec.get("updateable", True),
        unique=bool(spec.get("unique", False)),
        external_id=bool(spec.get("external_id", False)),
        id_lookup=bool(spec.get("external_id", False)),
        name_field=bool(spec.get("name_field", False)),
        custom=custom,
        reference_to=[to] if isinstance(to, str) else list(to),
        relationship_name=spec.get("relationship"),
        child_relationship=spec.get("child_relationship"),
        master_detail=bool(spec.get("master_detail", False)),
        cascade_delete=bool(spec.get("master_detail", False)),
        restricted_delete=bool(spec.get("restricted_delete", False)),
        picklist_values=list(spec.get("values", [])),
        default_value=spec.get("default", False if ftype == "boolean" else None),
        defaulted_on_create=ftype == "boolean" or "default" in spec,
        formula=spec.get("formula"),
        formula_sql=spec.get("sql"),
        rollup=spec.get("rollup"),
        auto_number=bool(spec.get("auto_number", False)),
        html_formatted=bool(spec.get("html", False)),
        filterable=spec.get("filterable", ftype not in ("textarea",) or spec.get("length", 0) <= 255),
    )
    if ftype == "reference" and not f.relationship_name:
        f.relationship_name = name[:-3] + "__r" if custom else (name[:-2] if name.endswith("Id") else None)
    if f.formula is not None or f.rollup is not None or f.auto_number:
        f.calculated = f.formula is not None or f.rollup is not None
        f.createable = f.updateable = False
    if f.master_detail:
        f.nillable = False
        f.required = True
        f.updateable = bool(spec.get("reparentable", False))
    if ftype in ("textarea",) and f.length > 255:
        f.sortable = f.groupable = f.filterable = False
    if ftype in ("base64",):
        f.sortable = f.groupable = f.filterable = f.aggregatable = False
    if ftype not in NUMBER_TYPES | {"date", "datetime", "time"}:
        f.aggregatable = ftype in TEXT_TYPES and ftype not in ("textarea", "multipicklist")
    if ftype in COMPOUND_TYPES:
        return [f, *_components(obj_name, f, spec)]
    return [f]


def _components(obj_name: str, f: Field, spec: dict[str, Any]) -> list[Field]:
    """Component fields of an address or geolocation compound field."""
    parts: list[Field] = []
    if f.type == "address":
        prefix = spec.get("prefix", f.name[: -len("Address")] if f.name.endswith("Address") else f.name)
        for suffix, key, ctype, length in ADDRESS_PARTS:
            c = Field(name=f"{prefix}{suffix}", type=ctype, label=f"{_label(prefix)} {suffix}".strip(),
                      length=length or 0, precision=18 if ctype == "double" else 0,
                      scale=15 if ctype == "double" else 0, compound_field_name=f.name,
                      compound_key=key, custom=f.custom)
            if ctype == "double":
                c.precision, c.scale = 0, 0  # stored as DOUBLE
            parts.append(c)
    else:  # location: Foo__c -> Foo__Latitude__s, Foo__Longitude__s
        base = f.name[:-3] if f.name.endswith("__c") else f.name
        for suffix, key in (("Latitude", "latitude"), ("Longitude", "longitude")):
            cname = f"{base}__{suffix}__s" if f.custom else f"{base}{suffix}"
            parts.append(Field(name=cname, type="double", label=f"{_label(base)} ({suffix})",
                               compound_field_name=f.name, compound_key=key, custom=f.custom))
    f.components = [p.name for p in parts]
    f.createable = f.updateable = False
    f.filterable = f.sortable = f.groupable = f.aggregatable = False
    return parts


def _default_length(ftype: str) -> int:
    return {"string": 255, "textarea": 32768, "phone": 40, "url": 255, "email": 80,
            "picklist": 255, "multipicklist": 4099, "combobox": 255, "encryptedstring": 175,
            "reference": 18, "id": 18}.get(ftype, 0)
