"""The Tooling API (`/services/data/vXX.X/tooling/...`) over the org's automations.

Tools list automations with cheap fields, fetch `Metadata` per record and switch them off and on
again (sf_api.md section 6); a backup tool's restore and seeding paths do exactly that, and so
does the Bulk benchmark, which deactivates everything before loading. Queries go through the same
SOQL compiler as REST, over the tooling schema of dml/automations.py; activation follows Salesforce's
rules: ValidationRule/WorkflowRule via `Metadata.active`, FlowDefinition via
`Metadata.activeVersionNumber` (or Flow via `Metadata.status`), ApexTrigger only in sandboxes
(direct PATCH of `Metadata.status`, or the ApexTriggerMember + MetadataContainer +
ContainerAsyncRequest flow) and never for components of a managed package.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from starlette.responses import Response

from sfemu.describe import describe_global, describe_sobject
from sfemu.dml.automations import Automation, AutomationError, Automations, ManagedError, automations
from sfemu.errors import SalesforceError, not_found
from sfemu.ids import is_valid, make_id, to18
from sfemu.render import JsonRenderer
from sfemu.rest.query import run_query
from sfemu.routing import DATA, Ctx, json_response, no_content, route
from sfemu.soql import SoqlError, compile_query
from sfemu.soql.errors import ErrorFactory
from sfemu.soql.parser import parse

TOOLING = DATA + "/tooling"
META_FIELDS = frozenset({"metadata", "fullname"})
# Salesforce's answer to Tooling writes of Apex in production orgs.
LOCKED = "Can not update Apex Trigger on an active organization."
ONE_ROW = ("When retrieving results with Metadata or FullName fields, the query qualifications must specify "
           "no more than one row for retrieval. Result size: {}")
# Objects Salesforce also serves through the normal REST /query (not part of the org's schema here).
NORMAL_API_OBJECTS = frozenset({"apextrigger", "duplicaterule"})
# Deployment objects of the ApexTriggerMember flow: kept in memory, not queryable.
CONTAINER, MEMBER, ASYNC = "MetadataContainer", "ApexTriggerMember", "ContainerAsyncRequest"
DEPLOY_PREFIXES = {CONTAINER: "1dc", MEMBER: "401", ASYNC: "1dr"}
_deploy_ids = itertools.count(1)


def _hooks(ctx: Ctx) -> Automations:
    return automations(ctx.org)


# --- queries ---------------------------------------------------------------------------------------


def run_soql(ctx: Ctx, soql: str | None, *, tooling: bool) -> dict[str, Any]:
    """Compile and run SOQL over the automation records; the Tooling shape adds size/entityTypeName."""
    if soql is None or not soql.strip():
        raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
    hooks = _hooks(ctx)
    try:
        compiled = compile_query(soql, hooks.schema, now=ctx.org.clock.now())
    except SoqlError as exc:
        raise SalesforceError(400, exc.error_code, exc.message) from exc
    cursor = hooks.store.cursor()
    obj = compiled.sobject.name
    if compiled.count_only:
        total = int(cursor.execute(compiled.sql, compiled.params).fetchone()[0])
        records: list[dict[str, Any]] = []
    else:
        table = cursor.execute(compiled.sql, compiled.params).to_arrow_table()
        total = table.num_rows
        wants_metadata = any(c.kind == "field" and len(c.path) == 1 and c.path[0].lower() in META_FIELDS
                             for c in compiled.columns if c.name != "__id")
        if wants_metadata and total > 1:
            raise SalesforceError(400, "MALFORMED_QUERY", ONE_ROW.format(total))
        records = JsonRenderer(compiled, hooks.schema, ctx.version).records(table, cursor)
        for rec in records:
            _fix_record(rec, hooks, compiled.sobject.name, ctx.base, tooling)
    if not tooling:
        return {"totalSize": total, "done": True, "records": records}
    entity = "AggregateResult" if compiled.aggregate else obj
    return {"size": total, "totalSize": total, "done": True, "queryLocator": None, "entityTypeName": entity,
            "records": records}


def _fix_record(rec: dict[str, Any], hooks: Automations, obj_name: str, base: str, tooling: bool) -> None:
    """Tooling URLs, Metadata as JSON, and the real type of nested parents (EntityDefinition ids are
    object names, which carry no key prefix)."""
    attrs = rec.get("attributes")
    if isinstance(attrs, dict) and "url" in attrs:
        attrs["type"] = obj_name
        rid = attrs["url"].rsplit("/", 1)[-1]
        attrs["url"] = f"{base}/{'tooling/' if tooling else ''}sobjects/{obj_name}/{rid}"
    if isinstance(rec.get("Metadata"), str):
        rec["Metadata"] = json.loads(rec["Metadata"])
    obj = hooks.schema.get(obj_name)
    for key, value in rec.items():
        if isinstance(value, dict) and key != "attributes" and obj is not None:
            lookup = obj.relationship(key)
            if lookup is not None:
                _fix_record(value, hooks, lookup.reference_to[0], base, tooling)


def tooling_query(ctx: Ctx) -> Response:
    return json_response(run_soql(ctx, ctx.arg("q"), tooling=True))


def normal_query(ctx: Ctx) -> Response:
    """REST /query and /queryAll: ApexTrigger and DuplicateRule are answered from the automation
    records (Salesforce serves them through the normal API too); everything else goes to REST."""
    soql = ctx.arg("q") or ""
    if ctx.org.schema.get(_from_object(soql) or "") is None and (_from_object(soql) or "").lower() in \
            NORMAL_API_OBJECTS:
        return json_response(run_soql(ctx, soql, tooling=False))
    return run_query(ctx)


def _from_object(soql: str) -> str | None:
    try:
        return parse(soql, ErrorFactory(soql)).sobject
    except SoqlError:
        return None


# --- records ---------------------------------------------------------------------------------------


def _type(ctx: Ctx) -> str:
    """The canonical tooling object name of the URL, or NOT_FOUND."""
    name = ctx.params["type"]
    for deploy in DEPLOY_PREFIXES:
        if deploy.lower() == name.lower():
            return deploy
    obj = _hooks(ctx).schema.get(name)
    if obj is None or obj.name == "EntityDefinition":
        raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
    return obj.name


def _record_id(ctx: Ctx) -> str:
    rid = ctx.params["id"]
    if not is_valid(rid):
        raise not_found()
    return to18(rid)


def get_record(ctx: Ctx) -> Response:
    obj, rid = _type(ctx), _record_id(ctx)
    if obj in DEPLOY_PREFIXES:
        record = _hooks(ctx).deployments.get(rid)
        if record is None or record["attributes"]["type"] != obj:
            raise not_found()
        return json_response(record)
    fields = ", ".join(f.name for f in _hooks(ctx).schema.get(obj).stored_fields)
    result = run_soql(ctx, f"SELECT {fields} FROM {obj} WHERE Id = '{rid}'", tooling=True)
    if not result["records"]:
        raise not_found()
    return json_response(result["records"][0])


def patch_record(ctx: Ctx) -> Response:
    obj, rid = _type(ctx), _record_id(ctx)
    hooks = _hooks(ctx)
    auto = hooks.find(rid)
    if obj in DEPLOY_PREFIXES or auto is None or _kind_of(auto, rid) != obj:
        raise not_found()
    body = ctx.json()
    if not isinstance(body, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    meta = body.get("Metadata") or {}
    if not isinstance(meta, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Metadata must be a JSON object")
    try:
        _apply(ctx, hooks, auto, obj, rid, body, meta)
    except ManagedError:
        raise SalesforceError(400, "CANNOT_MODIFY_MANAGED_OBJECT",
                              f"Cannot modify managed object: entity={obj}, component={rid}, "
                              f"field=Metadata, state=installed") from None
    except (AutomationError, ValueError) as exc:
        raise SalesforceError(400, "FIELD_INTEGRITY_EXCEPTION", str(exc)) from None
    return no_content()


def _kind_of(auto: Automation, rid: str) -> str:
    return "Flow" if auto.kind == "FlowDefinition" and rid != auto.id else auto.kind


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def _apply(ctx: Ctx, hooks: Automations, auto: Automation, obj: str, rid: str, body: dict[str, Any],
           meta: dict[str, Any]) -> None:
    """One Tooling update, with the rules of section 6 of sf_api.md."""
    if auto.managed:
        raise ManagedError(rid)
    if obj == "ApexTrigger":
        if not ctx.org.settings.sandbox:
            raise SalesforceError(400, "ENTITY_IS_LOCKED", LOCKED)
        status = meta.get("status", body.get("Status"))
        if status not in ("Active", "Inactive"):
            raise ValueError("status must be Active or Inactive")
        hooks.set_active(auto, status == "Active")
    elif obj in ("ValidationRule", "WorkflowRule"):
        key = "errorConditionFormula" if obj == "ValidationRule" else "formula"
        spec_key = "formula" if obj == "ValidationRule" else "criteria"
        changes = {spec_key: meta[key]} if meta.get(key) else {}
        for meta_key, spec_key in (("errorMessage", "message"), ("errorDisplayField", "display_field"),
                                   ("description", "description")):
            if meta_key in meta and obj == "ValidationRule":
                changes[spec_key] = meta[meta_key]
        if changes:
            hooks.update_spec(auto, changes)
        if "active" in meta:
            hooks.set_active(auto, _flag(meta["active"], "active"))
    elif obj == "FlowDefinition":
        if "activeVersionNumber" in meta:
            number = meta["activeVersionNumber"] or 0
            if not isinstance(number, int):
                raise ValueError("activeVersionNumber must be a version number")
            hooks.set_flow_version(auto, number)
    elif obj == "Flow":
        number = hooks.flow_versions[rid][1]
        status = meta.get("status")
        if status == "Active":
            hooks.set_flow_version(auto, number)
        elif status in ("Obsolete", "Draft", "InvalidDraft") and auto.active_version == number:
            hooks.set_flow_version(auto, 0)
        elif status is not None and status not in ("Obsolete", "Draft", "InvalidDraft"):
            raise ValueError("status must be Active, Obsolete or Draft")
    elif obj == "DuplicateRule":
        active = meta.get("isActive", body.get("IsActive"))
        if active is not None:
            hooks.set_active(auto, _flag(active, "isActive"))


# --- the ApexTriggerMember deployment flow (sandbox orgs) -----------------------------------------


def create_record(ctx: Ctx) -> Response:
    obj = _type(ctx)
    body = ctx.json()
    if not isinstance(body, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    if obj not in DEPLOY_PREFIXES:
        raise SalesforceError(400, "INVALID_OPERATION",
                              f"Creating {obj} records is not supported by this emulator; "
                              "define automations in the schema YAML")
    hooks = _hooks(ctx)
    rid = make_id(DEPLOY_PREFIXES[obj], next(_deploy_ids))
    record: dict[str, Any] = {"attributes": {"type": obj, "url": f"{ctx.base}/tooling/sobjects/{obj}/{rid}"},
                              "Id": rid}
    if obj == CONTAINER:
        name = body.get("Name")
        if not name:
            raise SalesforceError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]",
                                  ["Name"])
        if any(r.get("Name") == name for r in hooks.deployments.values()
               if r["attributes"]["type"] == CONTAINER):
            raise SalesforceError(400, "DUPLICATE_VALUE", f"duplicate value found: Name duplicates value on "
                                  f"record with id: {name}", ["Name"])
        record["Name"] = name
    elif obj == MEMBER:
        _container(hooks, body.get("MetadataContainerId"))
        target = hooks.find(to18(str(body.get("ContentEntityId") or "")) if is_valid(
            str(body.get("ContentEntityId") or "")) else "")
        if target is None or target.kind != "ApexTrigger":
            raise SalesforceError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id",
                                  ["ContentEntityId"])
        record.update({"MetadataContainerId": to18(body["MetadataContainerId"]), "ContentEntityId": target.id,
                       "Body": body.get("Body"), "Metadata": body.get("Metadata") or {},
                       "FullName": target.full_name})
    else:
        container = _container(hooks, body.get("MetadataContainerId"))
        record.update({"MetadataContainerId": container, "IsCheckOnly": bool(body.get("IsCheckOnly", False)),
                       "IsRunTests": False})
        record.update(_deploy(ctx, hooks, container, record["IsCheckOnly"]))
    hooks.deployments[rid] = record
    return json_response({"id": rid, "success": True, "errors": [], "warnings": [], "infos": []}, 201)


def _container(hooks: Automations, value: Any) -> str:
    rid = to18(str(value)) if value and is_valid(str(value)) else ""
    if rid not in hooks.deployments or hooks.deployments[rid]["attributes"]["type"] != CONTAINER:
        raise SalesforceError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id",
                              ["MetadataContainerId"])
    return rid


def _deploy(ctx: Ctx, hooks: Automations, container: str, check_only: bool) -> dict[str, Any]:
    """Apply the container's trigger members at once (the emulator compiles nothing, so it is quick)."""
    members = [r for r in hooks.deployments.values()
               if r["attributes"]["type"] == MEMBER and r["MetadataContainerId"] == container]
    failures = []
    for m in members:
        auto = hooks.find(m["ContentEntityId"])
        problem = None
        if auto is not None and auto.managed:
            problem = f"Cannot modify managed object: entity=ApexTrigger, component={auto.id}"
        elif not ctx.org.settings.sandbox:
            problem = LOCKED
        elif m["Metadata"].get("status", "Active") not in ("Active", "Inactive"):
            problem = "status must be Active or Inactive"
        if problem:
            failures.append({"componentType": "ApexTrigger", "fileName": f"triggers/{m['FullName']}.trigger",
                             "fullName": m["FullName"], "problem": problem, "problemType": "Error",
                             "success": False})
    if not failures and not check_only:
        for m in members:
            active = m["Metadata"].get("status", "Active") == "Active"
            hooks.set_active(hooks.find(m["ContentEntityId"]), active)
    return {"State": "Failed" if failures else "Completed",
            "ErrorMsg": failures[0]["problem"] if failures else None,
            "DeployDetails": {"allComponentMessages": failures, "componentFailures": failures,
                              "componentSuccesses": [], "runTestResult": None}}


# --- describes -------------------------------------------------------------------------------------


def _tooling_urls(body: dict[str, Any], version: str) -> dict[str, Any]:
    base = f'"/services/data/v{version}/'
    text = json.dumps(body).replace(base + "sobjects", base + "tooling/sobjects")
    return json.loads(text)


def describe_all(ctx: Ctx) -> Response:
    schema = _hooks(ctx).schema
    return json_response(_tooling_urls(describe_global(schema, ctx.version), ctx.version))


def describe_one(ctx: Ctx) -> Response:
    obj = _type(ctx)
    if obj in DEPLOY_PREFIXES:
        raise not_found()
    schema = _hooks(ctx).schema
    return json_response(_tooling_urls(describe_sobject(schema, schema.get(obj), ctx.version), ctx.version))


_TYPE = r"(?P<type>[A-Za-z][A-Za-z0-9_]*)"
_ID = r"(?P<id>[A-Za-z0-9]{1,18})"
ROUTES = [
    route("GET", DATA + r"/(?P<endpoint>query|queryAll)", normal_query),
    route("GET", TOOLING + r"/query", tooling_query, kind="tooling"),
    route("GET", TOOLING + r"/sobjects", describe_all, kind="tooling"),
    route("GET", TOOLING + r"/sobjects/" + _TYPE + r"/describe", describe_one, kind="tooling"),
    route("POST", TOOLING + r"/sobjects/" + _TYPE, create_record, kind="tooling"),
    route("GET", TOOLING + r"/sobjects/" + _TYPE + "/" + _ID, get_record, kind="tooling"),
    route("PATCH", TOOLING + r"/sobjects/" + _TYPE + "/" + _ID, patch_record, kind="tooling"),
]
