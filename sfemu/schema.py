"""The emulated org's objects and fields, loaded from a YAML schema file.

One description serves everything: the DuckDB tables of the store, describe/describeGlobal, SOQL
validation and the data generator. The standard org lives in `orgs/standard.yaml`; users can load
their own file in the same format (documented in `docs/emulator-schema.md`) to mirror their org.

Names are case-insensitive on Salesforce, so lookups go through lower-cased keys while every
response uses the canonical casing kept here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

STANDARD_SCHEMA = Path(__file__).with_name("orgs") / "standard.yaml"
# When the metadata "last changed" unless a schema file says otherwise (describe's Last-Modified).
DEFAULT_LAST_MODIFIED = datetime(2024, 1, 15, 8, 0, 0, tzinfo=UTC)
CUSTOM_SUFFIXES = ("__c", "__kav", "__x")  # custom object, knowledge article version, external object
ROLLUP_FUNCTIONS = frozenset({"SUM", "COUNT", "MIN", "MAX"})

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
GEOCODE_ACCURACY = ["Address", "NearAddress", "Block", "Street", "ExtendedZip", "Zip", "Neighborhood",
                    "City", "County", "State", "Unknown"]

# Audit fields in the order Salesforce lists them; `system_fields` selects a subset.
SYSTEM_FIELDS = ("IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
                 "SystemModstamp")
SYSTEM_FIELD_SETS = {
    "full": SYSTEM_FIELDS,
    "created": ("IsDeleted", "CreatedDate", "CreatedById"),
    "none": (),
}

# Every YAML key the loader understands; anything else is a typo and fails loudly.
OBJECT_KEYS = frozenset({
    "prefix", "label", "plural", "custom", "owned", "record_types", "system_fields", "fields",
    "name_compound", "query_requires_filter", "query_filter_fields", "associate", "queryable",
    "replicateable", "retrieveable", "createable", "updateable", "deletable", "undeletable",
    "triggerable", "searchable", "layoutable", "feed_enabled", "custom_setting", "bulk_supported",
    "mergeable", "mru_enabled",
})
FIELD_KEYS = frozenset({
    "type", "label", "length", "precision", "scale", "digits", "required", "nillable", "createable",
    "updateable", "unique", "external_id", "id_lookup", "name_field", "to", "relationship",
    "child_relationship", "master_detail", "cascade_delete", "reparentable", "restricted_delete", "values",
    "restricted", "default", "formula", "sql", "rollup", "auto_number", "html", "filterable", "prefix",
    "help", "case_sensitive",
})


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
    cascade_delete: bool = False  # master-detail, and standard lookups such as Contact.AccountId
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
    restricted_picklist: bool = False  # values outside picklist_values are rejected
    inline_help_text: str | None = None
    extra_type_info: str | None = None  # describe's extraTypeInfo, e.g. "plaintextarea", "personname"

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
    mergeable: bool = False
    mru_enabled: bool = False
    # Contact/Lead/User: components of the compound Name (describe gives them compoundFieldName
    # "Name"); Name itself stays a stored string the writers keep equal to compose_name().
    name_compound: list[str] = field(default_factory=list)
    # With query_requires_filter: fields of which one must be filtered with = or IN (else MALFORMED_QUERY).
    query_filter_fields: list[str] = field(default_factory=list)
    associate_entity_type: str | None = None  # "History" / "Share" / "Feed" for associated objects
    associate_parent_entity: str | None = None  # the object they belong to, e.g. "Account"

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

    @property
    def owned(self) -> bool:
        return "ownerid" in self.fields

    def compose_name(self, values: dict[str, Any]) -> str | None:
        """The stored Name of a compound-name record: first and last name, as Salesforce returns it.

        Salutation is a component of the compound but not part of the Name text.
        """
        parts = [str(values[c]) for c in self.name_compound
                 if c != "Salutation" and values.get(c) not in (None, "")]
        return " ".join(parts) or None


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

    def __init__(self, objects: list[SObject], automations: dict[str, Any] | None = None,
                 last_modified: datetime = DEFAULT_LAST_MODIFIED) -> None:
        self.objects: dict[str, SObject] = {o.name.lower(): o for o in objects}
        self._by_prefix: dict[str, SObject] = {}
        for o in objects:
            if o.key_prefix in self._by_prefix:
                raise SchemaError(f"{o.name}: key prefix {o.key_prefix} is already used by "
                                  f"{self._by_prefix[o.key_prefix].name}")
            if o.key_prefix:
                self._by_prefix[o.key_prefix] = o
        self.automations = automations or {}
        self.last_modified = last_modified  # when the metadata last changed (describe Last-Modified)
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
        for obj in objects:
            _check_object(self, obj)

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
        last_modified = DEFAULT_LAST_MODIFIED
        for p in (path, *extra):
            try:
                doc = yaml.safe_load(Path(p).read_text()) or {}
            except yaml.YAMLError as exc:
                raise SchemaError(f"{p}: not valid YAML: {exc}") from exc
            if not isinstance(doc, dict) or not isinstance(doc.get("objects", {}), dict):
                raise SchemaError(f"{p}: expected a mapping with 'objects'")
            merged["objects"].update(doc.get("objects") or {})
            for kind, items in (doc.get("automations") or {}).items():
                merged["automations"].setdefault(kind, []).extend(items)
            if "last_modified" in doc:
                last_modified = _parse_last_modified(p, doc["last_modified"])
        objects = [build_object(name, spec or {}) for name, spec in merged["objects"].items()]
        return cls(objects, merged["automations"], last_modified)


def _parse_last_modified(path: str | Path, value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise SchemaError(f"{path}: last_modified {value!r} is not an ISO datetime") from exc
    if not isinstance(value, datetime):
        raise SchemaError(f"{path}: last_modified must be a datetime")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_SQL_COLUMN = re.compile(r'\{t\}\."([^"]+)"')


def _check_object(schema: Schema, obj: SObject) -> None:
    """Checks that need the whole object or schema: formulas, roll-ups, query filter fields."""
    for f in obj.fields.values():
        where = f"{obj.name}.{f.name}"
        if f.formula_sql is not None:
            for col in _SQL_COLUMN.findall(f.formula_sql):
                ref = obj.field(col)
                if ref is None or not ref.stored or ref.name != col:
                    raise SchemaError(f"{where}: formula sql uses {col!r}, not a stored field of {obj.name}")
        if f.rollup is not None:
            _check_rollup(schema, obj, f, where)
    for name in obj.query_filter_fields:
        if obj.field(name) is None:
            raise SchemaError(f"{obj.name}.{name}: listed in query_filter_fields but not declared")


def _check_rollup(schema: Schema, obj: SObject, f: Field, where: str) -> None:
    spec = f.rollup or {}
    child = schema.get(str(spec.get("object", "")))
    function = str(spec.get("function", "")).upper()
    if child is None:
        raise SchemaError(f"{where}: rollup object {spec.get('object')!r} is unknown")
    if function not in ROLLUP_FUNCTIONS:
        raise SchemaError(f"{where}: rollup function {spec.get('function')!r} is not one of "
                          f"{sorted(ROLLUP_FUNCTIONS)}")
    if function != "COUNT" and child.field(str(spec.get("field", ""))) is None:
        raise SchemaError(f"{where}: a {function} rollup needs 'field', a field of {child.name} "
                          f"(got {spec.get('field')!r})")
    if not any(r.child is child and r.field.master_detail for r in schema.children(obj.name)):
        raise SchemaError(f"{where}: rollup needs a master-detail from {child.name} to {obj.name}")


# --- building objects from the YAML description ------------------------------------------------

_SYSTEM_AUDIT = {
    "CreatedDate": ("datetime", "Created Date"),
    "CreatedById": ("reference", "Created By ID"),
    "LastModifiedDate": ("datetime", "Last Modified Date"),
    "LastModifiedById": ("reference", "Last Modified By ID"),
    "SystemModstamp": ("datetime", "System Modstamp"),
}


def _label(name: str) -> str:
    """A readable default label: `Unit_Price__c` -> "Unit Price", `ParentId` -> "Parent ID"."""
    base = name[:-3] if name.endswith("__c") else name
    if "_" in base:
        return base.replace("_", " ")
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", base)
    return words[:-2] + "ID" if words.endswith(" Id") else words


def _system_field(name: str, ftype: str, label: str, **kw: Any) -> Field:
    f = Field(name=name, type=ftype, label=label, createable=False, updateable=False,
              nillable=False, defaulted_on_create=True, system=True, **kw)
    if ftype == "reference":
        f.length = 18
    return f


def _system_names(name: str, spec: dict[str, Any]) -> tuple[str, ...]:
    """The audit fields an object has: a named set (full/created/none) or an explicit list."""
    chosen = spec.get("system_fields", "full")
    if isinstance(chosen, str):
        if chosen not in SYSTEM_FIELD_SETS:
            raise SchemaError(f"{name}: system_fields {chosen!r} is not one of "
                              f"{sorted(SYSTEM_FIELD_SETS)} or a list of {list(SYSTEM_FIELDS)}")
        return SYSTEM_FIELD_SETS[chosen]
    unknown = [n for n in chosen or () if n not in SYSTEM_FIELDS]
    if unknown:
        raise SchemaError(f"{name}: system_fields {unknown} are not among {list(SYSTEM_FIELDS)}")
    return tuple(n for n in SYSTEM_FIELDS if n in chosen)


def build_object(name: str, spec: dict[str, Any]) -> SObject:
    """Turn one YAML object entry into an SObject, adding the system fields Salesforce adds."""
    if not isinstance(spec, dict):
        raise SchemaError(f"{name}: expected a mapping of object settings")
    unknown = sorted(set(spec) - OBJECT_KEYS)
    if unknown:
        raise SchemaError(f"{name}: unknown object keys {unknown}")
    custom = bool(spec.get("custom", name.endswith(CUSTOM_SUFFIXES)))
    label = spec.get("label", _label(name))
    obj = SObject(
        name=name,
        key_prefix=spec.get("prefix"),
        label=label,
        label_plural=spec.get("plural", label + "s"),
        custom=custom,
        record_types=list(spec.get("record_types", [])),
        name_compound=list(spec.get("name_compound", [])),
        query_filter_fields=list(spec.get("query_filter_fields", [])),
    )
    if obj.key_prefix is not None and (not isinstance(obj.key_prefix, str) or len(obj.key_prefix) != 3):
        raise SchemaError(f"{name}: prefix must be a 3-character string (quote it in YAML), "
                          f"got {obj.key_prefix!r}")
    for flag in ("queryable", "replicateable", "retrieveable", "createable", "updateable",
                 "deletable", "undeletable", "triggerable", "searchable", "layoutable",
                 "feed_enabled", "custom_setting", "bulk_supported", "query_requires_filter",
                 "mergeable"):
        if flag in spec:
            setattr(obj, flag, spec[flag])
    obj.mru_enabled = bool(spec.get("mru_enabled", obj.layoutable and obj.searchable))
    associate = spec.get("associate")
    if associate:
        obj.associate_entity_type = associate.get("type")
        obj.associate_parent_entity = associate.get("parent")
    system = _system_names(name, spec)
    fields: list[Field] = [Field(name="Id", type="id", label=f"{obj.label} ID", length=18,
                                 nillable=False, createable=False, updateable=False,
                                 defaulted_on_create=True, id_lookup=True, system=True)]
    if "IsDeleted" in system:
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
    if not isinstance(declared, dict):
        raise SchemaError(f"{name}: 'fields' must be a mapping of field name -> settings")
    if name.endswith("__c") and not any(k == "Name" for k in declared):
        fields.append(Field(name="Name", type="string", label=f"{obj.label} Name", length=80,
                            name_field=True, required=False, nillable=True))
    for fname, fspec in declared.items():
        fields.extend(build_fields(name, fname, fspec or {}))
    for fname in system:
        if fname in _SYSTEM_AUDIT:
            ftype, flabel = _SYSTEM_AUDIT[fname]
            kw: dict[str, Any] = {"reference_to": ["User"],
                                  "relationship_name": fname[:-2]} if ftype == "reference" else {}
            fields.append(_system_field(fname, ftype, flabel, **kw))
    for f in fields:
        if f.name.lower() in obj.fields:
            raise SchemaError(f"{name}.{f.name} is defined twice")
        obj.fields[f.name.lower()] = f
    for cname in obj.name_compound:
        component = obj.field(cname)
        if component is None:
            raise SchemaError(f"{name}.{cname}: listed in name_compound but not declared")
        component.compound_field_name = "Name"
        component.extra_type_info = "personname"
    return obj


def build_fields(obj_name: str, name: str, spec: dict[str, Any]) -> list[Field]:
    """One YAML field entry -> the Field (plus components for address/location compounds)."""
    where = f"{obj_name}.{name}"
    if not isinstance(spec, dict):
        raise SchemaError(f"{where}: expected a mapping of field settings")
    unknown = sorted(set(spec) - FIELD_KEYS)
    if unknown:
        raise SchemaError(f"{where}: unknown field keys {unknown}")
    ftype = spec.get("type", "string")
    if ftype not in SOAP_TYPES:
        raise SchemaError(f"{where}: unknown field type {ftype!r} (known: {', '.join(SOAP_TYPES)})")
    custom = name.endswith("__c")
    to = spec.get("to", [])
    if ftype == "reference" and not to:
        raise SchemaError(f"{where}: a reference field needs 'to' (the object or objects it points to)")
    if ftype in ("picklist", "multipicklist") and not spec.get("values"):
        raise SchemaError(f"{where}: a {ftype} field needs 'values'")
    if ("formula" in spec) != ("sql" in spec):
        raise SchemaError(f"{where}: a formula field needs both 'formula' (Salesforce text) and 'sql'")
    if "rollup" in spec and not isinstance(spec["rollup"], dict):
        raise SchemaError(f"{where}: rollup must be a mapping {{object, field, function}}")
    required = bool(spec.get("required", False))
    f = Field(
        name=name,
        type=ftype,
        label=spec.get("label", _label(name)),
        length=spec.get("length", _default_length(ftype)),
        precision=spec.get("precision", 18 if ftype in ("currency",) else 0),
        scale=spec.get("scale", 2 if ftype in ("currency",) else 0),
        digits=spec.get("digits", 9 if ftype == "int" else 0),
        required=required,
        nillable=spec.get("nillable", not required and ftype != "boolean"),
        createable=spec.get("createable", True),
        updateable=spec.get("updateable", True),
        unique=bool(spec.get("unique", False)),
        external_id=bool(spec.get("external_id", False)),
        id_lookup=bool(spec.get("id_lookup", spec.get("external_id", False))),
        name_field=bool(spec.get("name_field", False)),
        custom=custom,
        reference_to=[to] if isinstance(to, str) else list(to),
        relationship_name=spec.get("relationship"),
        child_relationship=spec.get("child_relationship"),
        master_detail=bool(spec.get("master_detail", False)),
        cascade_delete=bool(spec.get("cascade_delete", spec.get("master_detail", False))),
        restricted_delete=bool(spec.get("restricted_delete", False)),
        picklist_values=[str(v) for v in spec.get("values", [])],
        restricted_picklist=bool(spec.get("restricted", False)),
        default_value=spec.get("default", False if ftype == "boolean" else None),
        defaulted_on_create=ftype == "boolean" or "default" in spec,
        formula=spec.get("formula"),
        formula_sql=spec.get("sql"),
        rollup=spec.get("rollup"),
        auto_number=bool(spec.get("auto_number", False)),
        html_formatted=bool(spec.get("html", False)),
        case_sensitive=bool(spec.get("case_sensitive", False)),
        inline_help_text=spec.get("help"),
        filterable=spec.get("filterable", ftype not in ("textarea",) or spec.get("length", 0) <= 255),
    )
    if f.picklist_values and f.default_value is not None and str(f.default_value) not in f.picklist_values:
        raise SchemaError(f"{where}: default {f.default_value!r} is not one of its values")
    if ftype == "reference" and not f.relationship_name:
        f.relationship_name = name[:-3] + "__r" if custom else (name[:-2] if name.endswith("Id") else None)
    if f.formula is not None or f.rollup is not None or f.auto_number:
        f.calculated = f.formula is not None or f.rollup is not None
        f.createable = f.updateable = False
    if f.auto_number:
        f.nillable, f.defaulted_on_create = False, True
    if f.master_detail:
        f.nillable = False
        f.required = True
        f.updateable = bool(spec.get("reparentable", False))
    if ftype == "textarea":
        f.extra_type_info = "richtextarea" if f.html_formatted else "plaintextarea"
    if ftype in ("textarea",) and f.length > 255:
        f.sortable = f.groupable = f.filterable = False
    if ftype in ("base64",):
        f.sortable = f.groupable = f.filterable = f.aggregatable = False
    if ftype in ("double", "currency", "percent", "multipicklist"):
        f.groupable = False
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
                      compound_key=key, custom=f.custom,
                      picklist_values=GEOCODE_ACCURACY if ctype == "picklist" else [],
                      groupable=ctype != "double")
            if ctype == "textarea":
                c.extra_type_info = "plaintextarea"
            if ctype == "double":
                c.precision, c.scale = 0, 0  # stored as DOUBLE
            parts.append(c)
    else:  # location: Foo__c -> Foo__Latitude__s, Foo__Longitude__s
        base = f.name[:-3] if f.name.endswith("__c") else f.name
        for suffix, key in (("Latitude", "latitude"), ("Longitude", "longitude")):
            cname = f"{base}__{suffix}__s" if f.custom else f"{base}{suffix}"
            parts.append(Field(name=cname, type="double", label=f"{_label(base)} ({suffix})",
                               compound_field_name=f.name, compound_key=key, custom=f.custom,
                               groupable=False))
    f.components = [p.name for p in parts]
    f.createable = f.updateable = False
    f.filterable = f.sortable = f.groupable = f.aggregatable = False
    return parts


def _default_length(ftype: str) -> int:
    return {"string": 255, "textarea": 32768, "phone": 40, "url": 255, "email": 80,
            "picklist": 255, "multipicklist": 4099, "combobox": 255, "encryptedstring": 175,
            "reference": 18, "id": 18}.get(ftype, 0)
