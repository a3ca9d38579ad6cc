"""Automations that really run: validation rules, "Apex" triggers, record-triggered flows, workflow
rules and duplicate rules, defined in the schema YAML (`automations:`) and fired by the DML engine.

Salesforce orgs are full of automations that make a restore or a seeding job fail or change data;
a backup tool has to be tested against that. Definitions become records of a small tooling store
(ValidationRule 03d, ApexTrigger 01q, FlowDefinition 300 + Flow 301, WorkflowRule 01Q, DuplicateRule
0Bm) so the Tooling API can list and (de)activate them with real ids. Every condition and field
update is a formula compiled to SQL over the DML engine's staged rows, so a 10,000-row Bulk batch
costs one statement per automation, not one per record. Apex is declarative here: a trigger either
rejects rows (`reject`), sets fields (`set`) or inserts related records (`create_related`).
The file format is documented in docs/emulator-automations.md.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sfemu.formula import BOOLEAN, NEW, FormulaCompiler, FormulaError
from sfemu.ids import make_id
from sfemu.schema import Schema, SchemaError, SObject, build_object
from sfemu.store import Store, quote

if TYPE_CHECKING:
    from sfemu.dml.hooks import SaveContext
    from sfemu.org import EmulatedOrg

API_VERSION = 59.0
TRIGGER_EVENTS = ("before insert", "before update", "before delete", "after insert", "after update",
                  "after delete", "after undelete")
TRIGGER_ACTIONS = ("reject", "set", "create_related")
WORKFLOW_TRIGGERS = ("onCreateOnly", "onCreateOrTriggeringUpdate", "onAllChanges")
FLOW_TRIGGERS = {"before_save": "RecordBeforeSave", "after_save": "RecordAfterSave"}
FLOW_ON = {"create": "Create", "update": "Update", "create_and_update": "CreateAndUpdate"}
DUPLICATE_MESSAGE = "You're creating a duplicate record. We recommend you use an existing record instead."
KEYS = {
    "validation_rules": {"name", "object", "active", "formula", "message", "display_field", "description",
                         "namespace"},
    "triggers": {"name", "object", "active", "events", "action", "condition", "message", "set", "create",
                 "namespace", "api_version"},
    "flows": {"name", "label", "object", "trigger", "record_trigger", "active_version", "versions",
              "condition", "set", "create", "namespace", "description"},
    "workflow_rules": {"name", "object", "active", "trigger", "criteria", "field_updates", "description",
                       "namespace"},
    "duplicate_rules": {"name", "label", "object", "active", "match", "action", "message", "namespace"},
}
VERSION_KEYS = {"condition", "set", "create", "label"}

# The tooling store's objects: the automation records plus EntityDefinition for relationship paths.
_AUDIT = ["CreatedDate", "LastModifiedDate", "SystemModstamp"]
_ENTITY_REF = {"type": "reference", "to": "EntityDefinition", "relationship": "EntityDefinition",
               "createable": False, "updateable": False}
_META = {"Metadata": {"type": "textarea", "length": 131072}, "FullName": {"type": "string", "length": 255}}
TOOLING_OBJECTS: dict[str, dict[str, Any]] = {
    "EntityDefinition": {"system_fields": "none", "fields": {
        "QualifiedApiName": {"type": "string"}, "DeveloperName": {"type": "string"},
        "Label": {"type": "string"}, "DurableId": {"type": "string"}, "KeyPrefix": {"type": "string"},
        "NamespacePrefix": {"type": "string", "length": 15}}},
    "ApexTrigger": {"prefix": "01q", "system_fields": _AUDIT, "fields": {
        "Name": {"type": "string", "name_field": True}, "TableEnumOrId": {"type": "string"},
        "EntityDefinitionId": _ENTITY_REF, "NamespacePrefix": {"type": "string", "length": 15},
        "Status": {"type": "picklist", "values": ["Inactive", "Active", "Deleted"]},
        "ApiVersion": {"type": "double", "precision": 18, "scale": 1}, "Body": {"type": "textarea"},
        "IsValid": {"type": "boolean"}, "LengthWithoutComments": {"type": "int"},
        "UsageBeforeInsert": {"type": "boolean"}, "UsageAfterInsert": {"type": "boolean"},
        "UsageBeforeUpdate": {"type": "boolean"}, "UsageAfterUpdate": {"type": "boolean"},
        "UsageBeforeDelete": {"type": "boolean"}, "UsageAfterDelete": {"type": "boolean"},
        "UsageAfterUndelete": {"type": "boolean"}, "UsageIsBulk": {"type": "boolean"}, **_META}},
    "ValidationRule": {"prefix": "03d", "system_fields": _AUDIT, "fields": {
        "ValidationName": {"type": "string", "name_field": True}, "Active": {"type": "boolean"},
        "Description": {"type": "string"}, "EntityDefinitionId": _ENTITY_REF,
        "ErrorDisplayField": {"type": "string"}, "ErrorMessage": {"type": "string"},
        "NamespacePrefix": {"type": "string", "length": 15}, **_META}},
    "FlowDefinition": {"prefix": "300", "system_fields": _AUDIT, "fields": {
        "DeveloperName": {"type": "string", "name_field": True}, "MasterLabel": {"type": "string"},
        "Description": {"type": "string"},
        "ActiveVersionId": {"type": "reference", "to": "Flow", "relationship": "ActiveVersion"},
        "LatestVersionId": {"type": "reference", "to": "Flow", "relationship": "LatestVersion"},
        "NamespacePrefix": {"type": "string", "length": 15}, **_META}},
    "Flow": {"prefix": "301", "system_fields": _AUDIT, "fields": {
        "DefinitionId": {"type": "reference", "to": "FlowDefinition", "relationship": "Definition"},
        "MasterLabel": {"type": "string", "name_field": True}, "VersionNumber": {"type": "int"},
        "Status": {"type": "picklist", "values": ["Active", "Draft", "Obsolete", "InvalidDraft"]},
        "ProcessType": {"type": "picklist", "values": ["AutoLaunchedFlow", "Workflow", "Flow"]},
        "Description": {"type": "string"}, "ApiVersion": {"type": "double", "precision": 18, "scale": 1},
        "NamespacePrefix": {"type": "string", "length": 15}, **_META}},
    "WorkflowRule": {"prefix": "01Q", "system_fields": _AUDIT, "fields": {
        "Name": {"type": "string", "name_field": True}, "TableEnumOrId": {"type": "string"},
        "NamespacePrefix": {"type": "string", "length": 15}, **_META}},
    "DuplicateRule": {"prefix": "0Bm", "system_fields": _AUDIT, "fields": {
        "DeveloperName": {"type": "string"}, "MasterLabel": {"type": "string", "name_field": True},
        "IsActive": {"type": "boolean"}, "SobjectType": {"type": "string"},
        "SobjectSubtype": {"type": "string"}, "NamespacePrefix": {"type": "string", "length": 15},
        "Language": {"type": "string"}}},
}


def tooling_schema() -> Schema:
    """The Tooling API's view of the automation objects (a schema of its own, not the org's)."""
    return Schema([build_object(name, spec) for name, spec in TOOLING_OBJECTS.items()])


class AutomationError(SchemaError):
    """An automation definition that cannot run; the message names the automation."""


class ManagedError(Exception):
    """A change to a component of an installed managed package."""


# --- definitions ---------------------------------------------------------------------------------


@dataclass
class Action:
    """What a trigger, flow version or workflow rule does to the rows its condition selects."""

    condition: str | None = None
    sets: dict[str, str] = field(default_factory=dict)  # field -> formula
    create_object: str | None = None
    creates: dict[str, str] = field(default_factory=dict)  # field of create_object -> formula


@dataclass
class Automation:
    """One definition with its record id and active state."""

    kind: str  # ValidationRule | ApexTrigger | FlowDefinition | WorkflowRule | DuplicateRule
    id: str
    name: str
    obj: SObject
    active: bool
    spec: dict[str, Any]
    namespace: str | None = None
    action: Action = field(default_factory=Action)
    versions: list[tuple[str, Action, dict[str, Any]]] = field(default_factory=list)  # flows: (Flow id, ...)
    active_version: int = 0  # flows: 0 = none
    created: Any = None
    modified: Any = None

    @property
    def managed(self) -> bool:
        return bool(self.namespace)

    @property
    def full_name(self) -> str:
        prefix = f"{self.namespace}__" if self.namespace else ""
        if self.kind in ("ValidationRule", "WorkflowRule"):
            return f"{self.obj.name}.{prefix}{self.name}"
        return prefix + self.name

    def events(self) -> list[str]:
        return [str(e).lower() for e in self.spec.get("events", [])]


def _spec_action(where: str, spec: dict[str, Any], schema: Schema, obj: SObject,
                 condition_key: str) -> Action:
    """Parse the condition/set/create parts of a definition, compiling every formula once to check it."""
    action = Action(condition=spec.get(condition_key))
    sets = spec.get("set") or spec.get("field_updates") or {}
    if not isinstance(sets, dict):
        raise AutomationError(f"{where}: 'set' must map field names to formulas")
    for name, formula in sets.items():
        f = obj.field(name)
        if f is None or not f.stored or f.system or f.type == "id":
            raise AutomationError(f"{where}: {obj.name}.{name} is not a field an automation can set")
        action.sets[f.name] = str(formula)
    create = spec.get("create")
    if create is not None:
        target = schema.get(str((create or {}).get("object", "")))
        if target is None:
            raise AutomationError(f"{where}: create needs 'object', an object of the schema")
        action.create_object = target.name
        for name, formula in (create.get("fields") or {}).items():
            f = target.field(name)
            if f is None or not f.stored or f.system:
                raise AutomationError(f"{where}: {target.name}.{name} is not a field an automation can set")
            action.creates[f.name] = str(formula)
    if action.condition is not None:
        _check(schema, obj, action.condition, where, BOOLEAN)
    for formula in [*action.sets.values(), *action.creates.values()]:
        _check(schema, obj, formula, where)
    return action


def _check(schema: Schema, obj: SObject, text: str, where: str, expect: str | None = None) -> None:
    try:
        for has_old in (False, True):
            FormulaCompiler(schema, obj, has_old=has_old, now=_EPOCH).compile(text, where, expect)
    except FormulaError as exc:
        raise AutomationError(str(exc)) from None


def load_definitions(schema: Schema) -> list[Automation]:
    """Every automation of the schema's `automations:` section, checked, with deterministic ids."""
    out: list[Automation] = []
    unknown = sorted(set(schema.automations) - set(KEYS))
    if unknown:
        raise AutomationError(f"automations: unknown kinds {unknown} (known: {sorted(KEYS)})")
    counters: dict[str, int] = {}

    def next_id(prefix: str) -> str:
        counters[prefix] = counters.get(prefix, 0) + 1
        return make_id(prefix, counters[prefix])

    for kind, items in schema.automations.items():
        for spec in items or []:
            if not isinstance(spec, dict) or not spec.get("name") or not spec.get("object"):
                raise AutomationError(f"automations.{kind}: every entry needs 'name' and 'object'")
            where = f"{kind} {spec['name']}"
            bad = sorted(set(spec) - KEYS[kind])
            if bad:
                raise AutomationError(f"{where}: unknown keys {bad}")
            obj = schema.get(str(spec["object"]))
            if obj is None:
                raise AutomationError(f"{where}: unknown object {spec['object']}")
            out.append(_BUILDERS[kind](where, spec, schema, obj, next_id))
    return out


def _validation_rule(where, spec, schema, obj, next_id) -> Automation:
    if not spec.get("formula") or not spec.get("message"):
        raise AutomationError(f"{where}: a validation rule needs 'formula' and 'message'")
    _check(schema, obj, spec["formula"], where, BOOLEAN)
    display = spec.get("display_field")
    if display is not None and obj.field(display) is None:
        raise AutomationError(f"{where}: display_field {display} is not a field of {obj.name}")
    return Automation("ValidationRule", next_id("03d"), spec["name"], obj, bool(spec.get("active", True)),
                      spec, spec.get("namespace"))


def _trigger(where, spec, schema, obj, next_id) -> Automation:
    events = [str(e).lower() for e in spec.get("events", [])]
    if not events or any(e not in TRIGGER_EVENTS for e in events):
        raise AutomationError(f"{where}: events must be a list of {list(TRIGGER_EVENTS)}")
    kind = spec.get("action")
    if kind not in TRIGGER_ACTIONS:
        raise AutomationError(f"{where}: action must be one of {list(TRIGGER_ACTIONS)}")
    if kind == "reject" and not spec.get("message"):
        raise AutomationError(f"{where}: a reject trigger needs 'message'")
    if kind == "set" and (not spec.get("set") or any(e.startswith("after") for e in events)):
        raise AutomationError(f"{where}: a set trigger needs 'set' and before events only")
    if kind == "create_related" and (not spec.get("create") or any(e.startswith("before") for e in events)):
        raise AutomationError(f"{where}: a create_related trigger needs 'create' and after events only")
    action = _spec_action(where, spec, schema, obj, "condition")
    return Automation("ApexTrigger", next_id("01q"), spec["name"], obj, bool(spec.get("active", True)), spec,
                      spec.get("namespace"), action)


def _flow(where, spec, schema, obj, next_id) -> Automation:
    if _flow_when(spec) not in FLOW_TRIGGERS or _record_trigger(spec) not in FLOW_ON:
        raise AutomationError(f"{where}: trigger must be one of {list(FLOW_TRIGGERS)} and on one of "
                              f"{list(FLOW_ON)}")
    raw_versions = spec.get("versions") or [{k: spec[k] for k in ("condition", "set", "create") if k in spec}]
    auto = Automation("FlowDefinition", next_id("300"), spec["name"], obj, True, spec, spec.get("namespace"))
    for i, version in enumerate(raw_versions, start=1):
        bad = sorted(set(version) - VERSION_KEYS)
        if bad:
            raise AutomationError(f"{where}: unknown keys {bad} in version {i}")
        action = _spec_action(f"{where} version {i}", version, schema, obj, "condition")
        if not action.sets and not action.create_object:
            raise AutomationError(f"{where} version {i}: a flow needs 'set' and/or 'create'")
        if action.create_object and spec.get("trigger") == "before_save":
            raise AutomationError(f"{where}: before-save flows can only set fields")
        auto.versions.append((next_id("301"), action, version))
    auto.active_version = int(spec.get("active_version", len(auto.versions)))
    if not 0 <= auto.active_version <= len(auto.versions):
        raise AutomationError(f"{where}: active_version {auto.active_version} does not exist")
    auto.active = auto.active_version > 0
    return auto


def _workflow_rule(where, spec, schema, obj, next_id) -> Automation:
    if spec.get("trigger", "onCreateOrTriggeringUpdate") not in WORKFLOW_TRIGGERS:
        raise AutomationError(f"{where}: trigger must be one of {list(WORKFLOW_TRIGGERS)}")
    if not spec.get("criteria") or not spec.get("field_updates"):
        raise AutomationError(f"{where}: a workflow rule needs 'criteria' and 'field_updates'")
    action = _spec_action(where, spec, schema, obj, "criteria")
    return Automation("WorkflowRule", next_id("01Q"), spec["name"], obj, bool(spec.get("active", True)), spec,
                      spec.get("namespace"), action)


def _duplicate_rule(where, spec, schema, obj, next_id) -> Automation:
    match = spec.get("match") or []
    if not match or any(obj.field(m) is None or not obj.field(m).stored for m in match):
        raise AutomationError(f"{where}: match must list stored fields of {obj.name}")
    if spec.get("action", "block") not in ("block", "allow"):
        raise AutomationError(f"{where}: action must be block or allow")
    return Automation("DuplicateRule", next_id("0Bm"), spec["name"], obj, bool(spec.get("active", True)),
                      spec, spec.get("namespace"))


_BUILDERS = {"validation_rules": _validation_rule, "triggers": _trigger, "flows": _flow,
             "workflow_rules": _workflow_rule, "duplicate_rules": _duplicate_rule}


# --- the tooling records -------------------------------------------------------------------------


def metadata(auto: Automation, version: int | None = None) -> dict[str, Any]:
    """The `Metadata` of a record as the Tooling API returns it (shapes of the Metadata API types)."""
    s = auto.spec
    if auto.kind == "ValidationRule":
        return {"active": auto.active, "description": s.get("description"),
                "errorConditionFormula": s["formula"], "errorDisplayField": s.get("display_field"),
                "errorMessage": s["message"], "shouldEvaluateOnClient": None, "urls": None}
    if auto.kind == "ApexTrigger":
        return {"apiVersion": float(s.get("api_version", API_VERSION)), "packageVersions": None,
                "status": "Active" if auto.active else "Inactive", "urls": None}
    if auto.kind == "WorkflowRule":
        updates = [{"name": f"Set_{name}", "type": "FieldUpdate"} for name in auto.action.sets]
        return {"actions": updates, "active": auto.active, "booleanFilter": None, "criteriaItems": [],
                "description": s.get("description"), "formula": s["criteria"],
                "triggerType": s.get("trigger", "onCreateOrTriggeringUpdate"), "workflowTimeTriggers": []}
    if auto.kind == "FlowDefinition" and version is None:
        return {"activeVersionNumber": auto.active_version or None, "description": s.get("description"),
                "masterLabel": s.get("label", auto.name)}
    if auto.kind == "FlowDefinition":
        _, action, raw = auto.versions[version - 1]
        return {"apiVersion": API_VERSION, "label": raw.get("label", s.get("label", auto.name)),
                "processType": "AutoLaunchedFlow", "status": _flow_status(auto, version),
                "start": {"object": auto.obj.name, "recordTriggerType": FLOW_ON[_record_trigger(s)],
                          "triggerType": FLOW_TRIGGERS[_flow_when(s)],
                          "filterFormula": action.condition},
                "recordUpdates": [{"field": k, "value": v} for k, v in action.sets.items()],
                "recordCreates": ([{"object": action.create_object,
                                    "inputAssignments": [{"field": k, "value": v}
                                                         for k, v in action.creates.items()]}]
                                  if action.create_object else [])}
    return {"isActive": auto.active, "masterLabel": s.get("label", auto.name)}


def _flow_when(spec: dict[str, Any]) -> str:
    return spec.get("trigger", "after_save")


def _record_trigger(spec: dict[str, Any]) -> str:
    return spec.get("record_trigger", "create_and_update")


def _flow_status(auto: Automation, version: int) -> str:
    if version == auto.active_version:
        return "Active"
    return "Obsolete" if version < len(auto.versions) or auto.active_version else "Draft"


def _trigger_body(auto: Automation) -> str:
    a = auto.action
    what = {"reject": f"reject when {a.condition}: {auto.spec.get('message')}",
            "set": f"set {', '.join(f'{k} = {v}' for k, v in a.sets.items())}",
            "create_related": f"insert {a.create_object} records"}[auto.spec["action"]]
    when = f" when {a.condition}" if a.condition and auto.spec["action"] != "reject" else ""
    return (f"trigger {auto.name} on {auto.obj.name} ({', '.join(auto.events())}) {{\n"
            f"    // emulated: {what}{when}\n}}\n")


def records(auto: Automation) -> list[tuple[str, dict[str, Any]]]:
    """(object, row) for the tooling store: one row, or a FlowDefinition plus its Flow versions."""
    audit = {"CreatedDate": auto.created, "LastModifiedDate": auto.modified, "SystemModstamp": auto.modified}
    ns = auto.namespace
    common = {"Id": auto.id, "NamespacePrefix": ns, "FullName": auto.full_name, **audit}
    if auto.kind == "ValidationRule":
        row = {"ValidationName": auto.name, "Active": auto.active,
               "Description": auto.spec.get("description"), "EntityDefinitionId": auto.obj.name,
               "ErrorDisplayField": auto.spec.get("display_field"), "ErrorMessage": auto.spec["message"]}
    elif auto.kind == "ApexTrigger":
        body = _trigger_body(auto)
        events = auto.events()
        row = {"Name": auto.name, "TableEnumOrId": auto.obj.name, "EntityDefinitionId": auto.obj.name,
               "Status": "Active" if auto.active else "Inactive",
               "ApiVersion": float(auto.spec.get("api_version", API_VERSION)), "Body": body, "IsValid": True,
               "LengthWithoutComments": len(body), "UsageIsBulk": False,
               **{"Usage" + e.title().replace(" ", ""): e in events for e in TRIGGER_EVENTS}}
    elif auto.kind == "WorkflowRule":
        row = {"Name": auto.name, "TableEnumOrId": auto.obj.name}
    elif auto.kind == "DuplicateRule":
        return [("DuplicateRule", {"Id": auto.id, "DeveloperName": auto.name, "NamespacePrefix": ns,
                                   "MasterLabel": auto.spec.get("label", auto.name), "IsActive": auto.active,
                                   "SobjectType": auto.obj.name, "Language": "en_US", **audit})]
    else:
        flows = []
        for number, (flow_id, _, raw) in enumerate(auto.versions, start=1):
            flows.append(("Flow", {
                "Id": flow_id, "DefinitionId": auto.id,
                "MasterLabel": raw.get("label", auto.spec.get("label", auto.name)), "VersionNumber": number,
                "Status": _flow_status(auto, number), "ProcessType": "AutoLaunchedFlow",
                "ApiVersion": API_VERSION, "NamespacePrefix": ns, "FullName": f"{auto.full_name}-{number}",
                "Metadata": json.dumps(metadata(auto, number)), **audit}))
        active = auto.versions[auto.active_version - 1][0] if auto.active_version else None
        row = {"DeveloperName": auto.name, "MasterLabel": auto.spec.get("label", auto.name),
               "Description": auto.spec.get("description"), "ActiveVersionId": active,
               "LatestVersionId": auto.versions[-1][0]}
        return [("FlowDefinition", {**common, **row, "Metadata": json.dumps(metadata(auto))}), *flows]
    return [(auto.kind, {**common, **row, "Metadata": json.dumps(metadata(auto))})]


# --- running them ------------------------------------------------------------------------------

_EPOCH = datetime(2000, 1, 1)  # any moment: checking a formula does not evaluate it
_EVENT_NAMES = {"insert": "Insert", "update": "Update", "delete": "Delete", "undelete": "Undelete"}


class Automations:
    """The org's automations: definitions, their tooling records, and the DML hooks that run them."""

    def __init__(self, org: EmulatedOrg) -> None:
        self.org = org
        self.schema = tooling_schema()
        self.store = Store(self.schema, org.clock)  # in memory: a reset reloads the YAML definitions
        self.lock = threading.RLock()
        self.items = load_definitions(org.schema)
        self.by_id = {a.id: a for a in self.items}
        self.deployments: dict[str, dict[str, Any]] = {}  # Tooling MetadataContainer & co. by id
        self.flow_versions = {fid: (a, n) for a in self.items
                              for n, (fid, _, _) in enumerate(a.versions, start=1)}
        now = org.clock.now().replace(tzinfo=None)
        for auto in self.items:
            auto.created = auto.modified = now
        self._write_entities()
        for auto in self.items:
            self._write(auto)

    # --- tooling records ---------------------------------------------------------------------

    def _write_entities(self) -> None:
        rows = [(o.name, o.name, o.name.removesuffix("__c"), o.label, o.name, o.key_prefix)
                for o in self.org.schema]
        self.store.cursor().executemany(
            'INSERT INTO "EntityDefinition" ("Id", "QualifiedApiName", "DeveloperName", "Label", '
            '"DurableId", "KeyPrefix") VALUES (?, ?, ?, ?, ?, ?)', rows)

    def _write(self, auto: Automation) -> None:
        """(Re)write the tooling rows of one automation from its definition."""
        cur = self.store.cursor()
        with self.store.write_lock:
            for obj_name, row in records(auto):
                cur.execute(f"DELETE FROM {quote(obj_name)} WHERE {quote('Id')} = ?", [row["Id"]])
                names = list(row)
                cur.execute(f"INSERT INTO {quote(obj_name)} ({', '.join(quote(n) for n in names)}) "
                            f"VALUES ({', '.join('?' for _ in names)})", [row[n] for n in names])

    def find(self, record_id: str) -> Automation | None:
        """The automation owning a tooling record id (a Flow version id gives its definition)."""
        auto = self.by_id.get(record_id)
        if auto is None and record_id in self.flow_versions:
            auto = self.flow_versions[record_id][0]
        return auto

    # --- state changes (Tooling PATCH) --------------------------------------------------------

    def set_active(self, auto: Automation, active: bool) -> None:
        if auto.managed:
            raise ManagedError(auto.id)
        with self.lock:
            auto.active = active
            self._touch(auto)

    def set_flow_version(self, auto: Automation, number: int) -> None:
        """Activate flow version `number` (0 deactivates the flow)."""
        if auto.managed:
            raise ManagedError(auto.id)
        if not 0 <= number <= len(auto.versions):
            raise ValueError(f"version {number} does not exist")
        with self.lock:
            auto.active_version = number
            auto.active = number > 0
            self._touch(auto)

    def update_spec(self, auto: Automation, changes: dict[str, Any]) -> None:
        """Change formula/message fields of a definition; a formula that does not compile is refused."""
        if auto.managed:
            raise ManagedError(auto.id)
        spec = {**auto.spec, **changes}
        where = f"{auto.kind} {auto.name}"
        if auto.kind == "ValidationRule":
            _check(self.org.schema, auto.obj, spec["formula"], where, BOOLEAN)
        elif auto.kind == "WorkflowRule":
            _check(self.org.schema, auto.obj, spec["criteria"], where, BOOLEAN)
            auto.action.condition = spec["criteria"]
        with self.lock:
            auto.spec = spec
            self._touch(auto)

    def _touch(self, auto: Automation) -> None:
        auto.modified = self.org.clock.stamp().replace(tzinfo=None)
        self._write(auto)

    # --- hooks -------------------------------------------------------------------------------------

    def _active(self, kind: str, obj: SObject) -> list[Automation]:
        return [a for a in self.items if a.kind == kind and a.active and a.obj.name == obj.name]

    def before_save(self, ctx: SaveContext) -> None:
        """Before-save flows, before triggers, validation rules, duplicate rules (order of execution)."""
        if ctx.op in ("insert", "update"):
            for flow in self._flows(ctx, "before_save"):
                _Run(self, ctx, flow.versions[flow.active_version - 1][1], flow).set_staged()
        for trig in self._triggers(ctx, "before"):
            self._run_trigger(ctx, trig, "Before")
        if ctx.op not in ("insert", "update"):
            return
        for rule in self._active("ValidationRule", ctx.obj):
            run = _Run(self, ctx, Action(condition=rule.spec["formula"]), rule)
            ctx.fail(run.matching(), "FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.spec["message"],
                     [rule.spec["display_field"]] if rule.spec.get("display_field") else [])
        for rule in self._active("DuplicateRule", ctx.obj):
            self._duplicates(ctx, rule)

    def after_save(self, ctx: SaveContext) -> None:
        """After triggers, workflow field updates, after-save flows."""
        for trig in self._triggers(ctx, "after"):
            self._run_trigger(ctx, trig, "After")
        if ctx.op not in ("insert", "update"):
            return
        for rule in self._active("WorkflowRule", ctx.obj):
            run = _Run(self, ctx, rule.action, rule)
            trigger = rule.spec.get("trigger", "onCreateOrTriggeringUpdate")
            if ctx.op == "update" and trigger == "onCreateOnly":
                continue
            run.set_saved(newly_met=ctx.op == "update" and trigger == "onCreateOrTriggeringUpdate")
        for flow in self._flows(ctx, "after_save"):
            run = _Run(self, ctx, flow.versions[flow.active_version - 1][1], flow)
            run.set_saved()
            run.create_related(f"{flow.name}: flow")

    def _flows(self, ctx: SaveContext, when: str) -> list[Automation]:
        wanted = {"insert": ("create", "create_and_update"),
                  "update": ("update", "create_and_update")}[ctx.op]
        return [f for f in self._active("FlowDefinition", ctx.obj)
                if _flow_when(f.spec) == when and _record_trigger(f.spec) in wanted]

    def _triggers(self, ctx: SaveContext, phase: str) -> list[Automation]:
        event = f"{phase} {ctx.op}"
        return [t for t in self._active("ApexTrigger", ctx.obj) if event in t.events()]

    def _run_trigger(self, ctx: SaveContext, trig: Automation, phase: str) -> None:
        event = phase + _EVENT_NAMES[ctx.op]
        run = _Run(self, ctx, trig.action, trig)
        kind = trig.spec["action"]
        if kind == "reject":
            ctx.fail(run.matching(), "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                     f"{trig.full_name}: execution of {event} caused by: {trig.spec['message']}")
        elif kind == "set":
            run.set_staged()
        else:
            run.create_related(f"{trig.full_name}: execution of {event} caused by: System.DmlException")

    def _duplicates(self, ctx: SaveContext, rule: Automation) -> None:
        """Rows whose match fields equal (case-insensitively) an existing record's or an earlier row's."""
        fields = [ctx.obj.field(m) for m in rule.spec["match"]]
        same = " AND ".join(f"lower(CAST(x.{quote(f.name)} AS VARCHAR)) = "
                            f"lower(CAST(s.{quote(f.name)} AS VARCHAR))" for f in fields)
        table = self.org.store.table(ctx.obj)
        failed = list(ctx.failures)
        sql = (f"SELECT s.{quote('_row')} FROM {ctx.staged} AS s "
               f"WHERE NOT list_contains(CAST(? AS INTEGER[]), s.{quote('_row')}) "
               f"AND (EXISTS (SELECT 1 FROM {table} AS x WHERE {same} AND x.{quote('_DeletedAt')} IS NULL "
               f"AND x.{quote('Id')} IS DISTINCT FROM s.{quote('Id')}) "
               f"OR EXISTS (SELECT 1 FROM {ctx.staged} AS x WHERE {same} "
               f"AND x.{quote('_row')} < s.{quote('_row')}))")
        rows = [r[0] for r in ctx.cursor.execute(sql, [failed]).fetchall()]
        if rows and rule.spec.get("action", "block") == "block":
            ctx.fail(rows, "DUPLICATES_DETECTED", rule.spec.get("message", DUPLICATE_MESSAGE))


class _Run:
    """One automation's formulas compiled for one save, with the statements that apply them."""

    def __init__(self, owner: Automations, ctx: SaveContext, action: Action, auto: Automation) -> None:
        self.ctx = ctx
        self.action = action
        self.auto = auto
        self.fc = FormulaCompiler(owner.org.schema, ctx.obj, has_old=ctx.old is not None,
                                  now=owner.org.clock.now())
        self.where = f"{auto.kind} {auto.full_name}"
        self.cond = self.fc.condition(action.condition, self.where) if action.condition else "TRUE"

    def _params(self) -> dict[str, Any]:
        return {**self.fc.params, "xfailed": list(self.ctx.failures)}

    def _live(self) -> str:
        return f"NOT list_contains(CAST($xfailed AS INTEGER[]), {NEW}.{quote('_row')})"

    def _select(self, exprs: list[str], extra: str = "") -> str:
        cols = ", ".join([f"{NEW}.{quote('_row')} AS {quote('__row')}",
                          f"{NEW}.{quote('Id')} AS {quote('__id')}", *exprs])
        return (f"SELECT {cols} {self.fc.from_sql(self.ctx.staged, self.ctx.old)} "
                f"WHERE {self.cond} AND {self._live()}{extra}")

    def matching(self) -> list[int]:
        """`_row` of the staged rows (not yet failed) whose condition is true."""
        return [r[0] for r in self.ctx.cursor.execute(self._select([]), self._params()).fetchall()]

    def _assignments(self) -> list[tuple[str, str]]:
        """(field, SQL cast to the column type) for every field update."""
        out = []
        for name, formula in self.action.sets.items():
            f = self.ctx.obj.field(name)
            out.append((f.name, f"TRY_CAST(({self.fc.compile(formula, self.where).sql}) AS {f.sql_type})"))
        return out

    def set_staged(self) -> None:
        """Before-save field updates: change the staged rows themselves."""
        assignments = self._assignments()
        if not assignments:
            return
        values = self._select([f"{sql} AS {quote('v_' + name)}" for name, sql in assignments])
        sets = ", ".join(f"{quote(name)} = v.{quote('v_' + name)}" for name, _ in assignments)
        staged = self.ctx.staged
        self.ctx.cursor.execute(f"UPDATE {staged} SET {sets} FROM ({values}) AS v "
                                f"WHERE {staged}.{quote('_row')} = v.{quote('__row')}", self._params())

    def set_saved(self, newly_met: bool = False) -> None:
        """After-save field updates (workflow, flows): change the written records and the staged copy.

        `newly_met`: only rows whose previous values did not meet the criteria (workflow's
        "created, and any time it's edited to subsequently meet criteria").
        """
        assignments = self._assignments()
        if not assignments:
            return
        extra = ""
        if newly_met and self.ctx.old is not None and self.action.condition:
            prior = FormulaCompiler(self.fc.schema, self.ctx.obj, has_old=False, now=self.fc.now)
            old_cond = prior.condition(self.action.condition, self.where)
            before = (f"SELECT {NEW}.{quote('Id')} {prior.from_sql(self.ctx.old, None)} WHERE {old_cond}")
            self.fc.params.update(prior.params)
            extra = f" AND {NEW}.{quote('Id')} NOT IN ({before})"
        values = self._select([f"{sql} AS {quote('v_' + name)}" for name, sql in assignments], extra)
        cur = self.ctx.cursor
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _automation_values AS {values}", self._params())
        try:
            table = quote(self.ctx.obj.name)
            sets = ", ".join(f"{quote(name)} = v.{quote('v_' + name)}" for name, _ in assignments)
            cur.execute(f"UPDATE {table} SET {sets} FROM _automation_values AS v "
                        f"WHERE {table}.{quote('Id')} = v.{quote('__id')}")
            cur.execute(f"UPDATE {self.ctx.staged} SET {sets} FROM _automation_values AS v "
                        f"WHERE {self.ctx.staged}.{quote('_row')} = v.{quote('__row')}")
        finally:
            cur.execute("DROP TABLE IF EXISTS _automation_values")

    def create_related(self, failure_prefix: str) -> None:
        """Insert records of another object, one per matching row, through the DML engine; a failed
        insert fails the row that caused it."""
        a = self.action
        if not a.create_object:
            return
        target = self.fc.schema.get(a.create_object)
        exprs = []
        for name, formula in a.creates.items():
            f = target.field(name)
            sql = self.fc.compile(formula, self.where).sql
            exprs.append(f"TRY_CAST(({sql}) AS {f.sql_type}) AS {quote(f.name)}")
        table = self.ctx.cursor.execute(self._select(exprs), self._params()).to_arrow_table()
        if not table.num_rows:
            return
        sources = table.column("__row").to_pylist()
        rows = table.drop_columns(["__row", "__id"])
        try:
            results = self.ctx.dml.insert(target, rows)
        except Exception as exc:  # a nested DML failure (DmlAbort) fails every causing row
            error = getattr(exc, "error", None)
            detail = f"{error.status_code}, {error.message}" if error else str(exc)
            self.ctx.fail(sources, "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                          f"{failure_prefix}: Insert failed. First exception on row 0; first error: {detail}")
            return
        for pos, (source, result) in enumerate(zip(sources, results, strict=True)):
            if not result.success:
                err = result.errors[0] if result.errors else None
                detail = f"{err.status_code}, {err.message}: {err.fields}" if err else "UNKNOWN_EXCEPTION"
                self.ctx.fail([source], "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                              f"{failure_prefix}: Insert failed. First exception on row {pos}; first error: "
                              f"{detail}")


_CREATE_LOCK = threading.Lock()


def automations(org: EmulatedOrg) -> Automations:
    """The org's automations (created on first use and registered as the DML engine's hooks).

    A control-API reset clears org.extensions; the next call rebuilds them from the YAML, which is
    how a reset restores every automation's original active state.
    """
    with _CREATE_LOCK:
        hooks = org.extensions.get("automations")
        if hooks is None:
            hooks = org.extensions["automations"] = Automations(org)
    return hooks


__all__ = ["AutomationError", "Automations", "ManagedError", "automations", "load_definitions",
           "tooling_schema"]
