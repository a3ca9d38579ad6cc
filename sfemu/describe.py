"""describeGlobal, sObject metadata and describe, as JSON-ready dicts shaped exactly like Salesforce's.

Clients read these responses strictly: dlt indexes `compoundFieldName` on every field, tap and
airbyte raise on unknown field types, CumulusCI caches on `Last-Modified`. So every key of the
real responses is emitted (null when it does not apply) and only describe's documented field
types come out. Everything here is a pure function of the schema; the server adds HTTP.
"""

from __future__ import annotations

import hashlib
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from sfemu.ids import make_id
from sfemu.schema import COMPOUND_TYPES, TEXT_TYPES, Field, Schema, SObject

MASTER_RECORD_TYPE_ID = "012000000000000AAA"
RECORD_TYPE_PREFIX = "012"
_RECORD_TYPE_SPACE = 62**7  # counters stay short, like the ids of a real org's record types

_BYTES_PER_CHAR = 3  # byteLength of text fields: UTF-8 worst case, as Salesforce reports it


def record_type_id(obj_name: str, developer_name: str) -> str:
    """The deterministic 18-character id of a record type, shared by describe and the data generator."""
    key = f"{obj_name.lower()}.{developer_name.lower()}".encode()
    counter = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % _RECORD_TYPE_SPACE
    return make_id(RECORD_TYPE_PREFIX, counter)


def record_type_label(developer_name: str) -> str:
    """The record type's Name (label) for a developer name, e.g. `New_Business` -> "New Business"."""
    return developer_name.replace("_", " ")


def last_modified(schema: Schema) -> str:
    """RFC 1123 date of the schema's last metadata change (the Last-Modified header of describes)."""
    return format_datetime(schema.last_modified, usegmt=True)


def not_modified_since(schema: Schema, if_modified_since: str | None) -> bool:
    """True when an If-Modified-Since header allows a 304: the metadata has not changed since then."""
    if not if_modified_since:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unparseable date is ignored, as HTTP servers do
    if since.tzinfo is None:
        return False
    return schema.last_modified.replace(microsecond=0) <= since


# --- describeGlobal and GET /sobjects/X ------------------------------------------------------------


def _base(version: str) -> str:
    return f"/services/data/v{version.removeprefix('v')}"


def _object_urls(obj: SObject, api_version: str) -> dict[str, str]:
    root = f"{_base(api_version)}/sobjects/{obj.name}"
    urls = {"rowTemplate": f"{root}/{{ID}}", "describe": f"{root}/describe", "sobject": root}
    if obj.layoutable:
        urls.update({
            "compactLayouts": f"{root}/describe/compactLayouts",
            "approvalLayouts": f"{root}/describe/approvalLayouts",
            "listviews": f"{root}/listviews",
            "quickActions": f"{root}/quickActions",
            "layouts": f"{root}/describe/layouts",
        })
    return urls


def _global_entry(obj: SObject, api_version: str) -> dict[str, Any]:
    return {
        "activateable": False,
        "associateEntityType": obj.associate_entity_type,
        "associateParentEntity": obj.associate_parent_entity,
        "createable": obj.createable,
        "custom": obj.custom,
        "customSetting": obj.custom_setting,
        "deepCloneable": False,
        "deletable": obj.deletable,
        "deprecatedAndHidden": False,
        "feedEnabled": obj.feed_enabled,
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "layoutable": obj.layoutable,
        "mergeable": obj.mergeable,
        "mruEnabled": obj.mru_enabled,
        "name": obj.name,
        "queryable": obj.queryable,
        "replicateable": obj.replicateable,
        "retrieveable": obj.retrieveable,
        "searchable": obj.searchable,
        "triggerable": obj.triggerable,
        "undeletable": obj.undeletable,
        "updateable": obj.updateable,
        "urls": _object_urls(obj, api_version),
    }


def describe_global(schema: Schema, api_version: str) -> dict[str, Any]:
    """GET /sobjects: every object's summary, sorted by name as Salesforce lists them."""
    objects = sorted(schema, key=lambda o: o.name.lower())
    return {"encoding": "UTF-8", "maxBatchSize": 200,
            "sobjects": [_global_entry(o, api_version) for o in objects]}


def sobject_metadata(schema: Schema, obj: SObject, api_version: str,
                     recent_items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """GET /sobjects/X: the object's describeGlobal entry plus its recently viewed records."""
    return {"objectDescribe": _global_entry(obj, api_version), "recentItems": list(recent_items or [])}


# --- full describe -------------------------------------------------------------------------------


def _picklist_values(f: Field) -> list[dict[str, Any]]:
    default = None if f.default_value is None else str(f.default_value)
    return [{"active": True, "defaultValue": v == default, "label": v, "validFor": None, "value": v}
            for v in f.picklist_values]


def _byte_length(f: Field) -> int:
    if f.type in ("id", "reference"):
        return f.length
    return f.length * _BYTES_PER_CHAR if f.type in TEXT_TYPES else 0


def _default_value(f: Field) -> Any:
    """Field-level defaultValue: booleans carry theirs; picklists mark it in picklistValues instead."""
    if f.type in ("picklist", "multipicklist") or f.default_value is None:
        return None
    return f.default_value


def _permissionable(f: Field) -> bool:
    """Field-level security applies to optional, non-system fields only."""
    return not (f.system or f.name_field or f.required or f.master_detail or not f.nillable
                or f.type in COMPOUND_TYPES)


def describe_field(f: Field) -> dict[str, Any]:
    """One entry of describe's `fields`, with every key Salesforce sends.

    The schema loader admits only the types describe documents (schema.SOAP_TYPES), so tools
    that raise on unknown types never see one.
    """
    reference = f.type == "reference"
    return {
        "aggregatable": f.aggregatable,
        "aiPredictionField": False,
        "autoNumber": f.auto_number,
        "byteLength": _byte_length(f),
        "calculated": f.calculated,
        "calculatedFormula": f.formula,
        "cascadeDelete": f.cascade_delete,
        "caseSensitive": f.case_sensitive,
        "compoundFieldName": f.compound_field_name,
        "controllerName": None,
        "createable": f.createable,
        "custom": f.custom,
        "defaultValue": _default_value(f),
        "defaultValueFormula": None,
        "defaultedOnCreate": f.defaulted_on_create,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": f.digits,
        "displayLocationInDecimal": f.type == "location",
        "encrypted": f.type == "encryptedstring",
        "externalId": f.external_id,
        "extraTypeInfo": f.extra_type_info,
        "filterable": f.filterable,
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": f.groupable,
        "highScaleNumber": False,
        "htmlFormatted": f.html_formatted,
        "idLookup": f.id_lookup,
        "inlineHelpText": f.inline_help_text,
        "label": f.label,
        "length": f.length,
        "mask": None,
        "maskType": None,
        "name": f.name,
        "nameField": f.name_field,
        "namePointing": f.polymorphic,
        "nillable": f.nillable,
        "permissionable": _permissionable(f),
        "picklistValues": _picklist_values(f),
        "polymorphicForeignKey": f.polymorphic,
        "precision": f.precision,
        "queryByDistance": f.type == "location",
        "referenceTargetField": None,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "relationshipOrder": 0 if f.master_detail and reference else None,
        "restrictedDelete": f.restricted_delete,
        "restrictedPicklist": f.restricted_picklist,
        "scale": f.scale,
        "searchPrefilterable": reference,
        "soapType": f.soap_type,
        "sortable": f.sortable,
        "type": f.type,
        "unique": f.unique,
        "updateable": f.updateable,
        "writeRequiresMasterRead": False,
    }


def _child_relationships(schema: Schema, obj: SObject) -> list[dict[str, Any]]:
    rels = sorted(schema.children(obj.name), key=lambda r: (r.child.name.lower(), r.field.name.lower()))
    return [{"cascadeDelete": r.cascade_delete, "childSObject": r.child.name, "deprecatedAndHidden": False,
             "field": r.field.name, "junctionIdListNames": [], "junctionReferenceTo": [],
             "relationshipName": r.relationship_name, "restrictedDelete": r.restricted_delete}
            for r in rels]


def _record_type_info(obj: SObject, api_version: str, rt_id: str, developer_name: str, *,
                      master: bool, default: bool) -> dict[str, Any]:
    layout = f"{_base(api_version)}/sobjects/{obj.name}/describe/layouts/{rt_id}"
    return {"active": True, "available": default or not master, "defaultRecordTypeMapping": default,
            "developerName": developer_name, "master": master,
            "name": record_type_label(developer_name), "recordTypeId": rt_id, "urls": {"layout": layout}}


def record_type_infos(obj: SObject, api_version: str) -> list[dict[str, Any]]:
    """The object's record types: its own (the first is the default) and always Master, listed last."""
    if not obj.layoutable:
        return []
    infos = [_record_type_info(obj, api_version, record_type_id(obj.name, rt), rt, master=False,
                               default=i == 0)
             for i, rt in enumerate(obj.record_types)]
    infos.append(_record_type_info(obj, api_version, MASTER_RECORD_TYPE_ID, "Master", master=True,
                                   default=not obj.record_types))
    return infos


def _supported_scopes(obj: SObject) -> list[dict[str, str]]:
    plural = obj.label_plural.lower()
    scopes = [{"label": f"All {plural}", "name": "everything"}]
    if obj.owned:
        scopes.append({"label": f"My {plural}", "name": "mine"})
    return scopes


def describe_sobject(schema: Schema, obj: SObject, api_version: str) -> dict[str, Any]:
    """GET /sobjects/X/describe: flags, every field, child relationships, record types and urls.

    The object-level flags are describeGlobal's (minus its associate* keys), so the two never disagree;
    keys come back in alphabetical order, as Salesforce sends them.
    """
    entry = {k: v for k, v in _global_entry(obj, api_version).items() if not k.startswith("associate")}
    entry.update({
        "actionOverrides": [],
        "childRelationships": _child_relationships(schema, obj),
        "compactLayoutable": obj.layoutable,
        "defaultImplementation": None,
        "extendedBy": None,
        "extendsInterfaces": None,
        "fields": [describe_field(f) for f in obj.fields.values()],
        "implementedBy": None,
        "implementsInterfaces": None,
        "listviewable": None,
        "lookupLayoutable": None,
        "namedLayoutInfos": [],
        "networkScopeFieldName": None,
        "recordTypeInfos": record_type_infos(obj, api_version),
        "searchLayoutable": obj.searchable,
        "supportedScopes": _supported_scopes(obj),
    })
    return dict(sorted(entry.items()))

