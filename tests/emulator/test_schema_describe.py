"""The standard org schema and the describe responses built from it (shapes from sf_api.md 2.3/2.4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sfemu import describe
from sfemu.clock import Clock
from sfemu.ids import is_valid
from sfemu.schema import STANDARD_SCHEMA, Schema, SchemaError
from sfemu.store import Store

API = "59.0"

PREFIXES = {
    "Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006", "OpportunityLineItem": "00k",
    "Product2": "01t", "Pricebook2": "01s", "PricebookEntry": "01u", "Case": "500", "CaseComment": "00a",
    "Task": "00T", "Event": "00U", "Campaign": "701", "CampaignMember": "00v", "User": "005",
    "UserRole": "00E", "Profile": "00e", "RecordType": "012", "Organization": "00D", "Note": "002",
    "Attachment": "00P", "Document": "015", "ContentVersion": "068", "ContentDocument": "069",
    "ContentDocumentLink": "06A", "FeedItem": "0D5", "FeedComment": "0D7", "AccountHistory": "017",
    "AccountShare": "00r",
}
ALSO_PRESENT = ["OpportunityFieldHistory", "LoginIp", "Knowledge__kav", "External__x", "Invoice__c",
                "Invoice_Line__c", "Project__c", "Region__c", "Office__c"]

# Key lists copied from sf_api.md 2.3 / 2.4 (real Salesforce responses).
GLOBAL_KEYS = {
    "activateable", "associateEntityType", "associateParentEntity", "createable", "custom", "customSetting",
    "deepCloneable", "deletable", "deprecatedAndHidden", "feedEnabled", "hasSubtypes", "isInterface",
    "isSubtype", "keyPrefix", "label", "labelPlural", "layoutable", "mergeable", "mruEnabled", "name",
    "queryable", "replicateable", "retrieveable", "searchable", "triggerable", "undeletable", "updateable",
    "urls"}
GLOBAL_URL_KEYS = {"compactLayouts", "rowTemplate", "approvalLayouts", "listviews", "describe",
                   "quickActions", "layouts", "sobject"}
DESCRIBE_KEYS = {
    "actionOverrides", "activateable", "childRelationships", "compactLayoutable", "createable", "custom",
    "customSetting", "deepCloneable", "defaultImplementation", "deletable", "deprecatedAndHidden",
    "extendedBy", "extendsInterfaces", "feedEnabled", "fields", "hasSubtypes", "implementedBy",
    "implementsInterfaces", "isInterface", "isSubtype", "keyPrefix", "label", "labelPlural", "layoutable",
    "listviewable", "lookupLayoutable", "mergeable", "mruEnabled", "name", "namedLayoutInfos",
    "networkScopeFieldName", "queryable", "recordTypeInfos", "replicateable", "retrieveable",
    "searchLayoutable", "searchable", "supportedScopes", "triggerable", "undeletable", "updateable", "urls"}
PARENT_ID_EXAMPLE = json.loads("""
{"aggregatable":true,"aiPredictionField":false,"autoNumber":false,"byteLength":18,"calculated":false,
 "calculatedFormula":null,"cascadeDelete":false,"caseSensitive":false,"compoundFieldName":null,
 "controllerName":null,"createable":true,"custom":false,"defaultValue":null,"defaultValueFormula":null,
 "defaultedOnCreate":false,"dependentPicklist":false,"deprecatedAndHidden":false,"digits":0,
 "displayLocationInDecimal":false,"encrypted":false,"externalId":false,"extraTypeInfo":null,"filterable":true,
 "filteredLookupInfo":null,"formulaTreatNullNumberAsZero":false,"groupable":true,"highScaleNumber":false,
 "htmlFormatted":false,"idLookup":false,"inlineHelpText":null,"label":"Parent Account ID","length":18,
 "mask":null,"maskType":null,"name":"ParentId","nameField":false,"namePointing":false,"nillable":true,
 "permissionable":true,"picklistValues":[],"polymorphicForeignKey":false,"precision":0,"queryByDistance":false,
 "referenceTargetField":null,"referenceTo":["Account"],"relationshipName":"Parent","relationshipOrder":null,
 "restrictedDelete":false,"restrictedPicklist":false,"scale":0,"searchPrefilterable":true,"soapType":"tns:ID",
 "sortable":true,"type":"reference","unique":false,"updateable":true,"writeRequiresMasterRead":false}
""")
CHILD_KEYS = {"cascadeDelete", "childSObject", "deprecatedAndHidden", "field", "junctionIdListNames",
              "junctionReferenceTo", "relationshipName", "restrictedDelete"}
RECORD_TYPE_KEYS = {"active", "available", "defaultRecordTypeMapping", "developerName", "master", "name",
                    "recordTypeId", "urls"}
PICKLIST_KEYS = {"active", "defaultValue", "label", "validFor", "value"}
ALLOWED_TYPES = {"id", "string", "textarea", "phone", "url", "email", "picklist", "multipicklist", "combobox",
                 "encryptedstring", "reference", "boolean", "int", "long", "double", "currency", "percent",
                 "date", "datetime", "time", "base64", "address", "location", "anyType"}


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema.load()


def fields_of(schema: Schema, name: str) -> dict[str, dict]:
    return {f["name"]: f for f in describe.describe_sobject(schema, schema.get(name), API)["fields"]}


def test_every_listed_object_has_its_real_key_prefix(schema):
    for name, prefix in PREFIXES.items():
        assert schema.get(name).key_prefix == prefix, name
        assert schema.object_of_id(prefix + "5J0000000001AAA").name == name
    for name in ALSO_PRESENT:
        assert schema.get(name) is not None, name
    assert schema.get("account").name == "Account"


def test_the_store_creates_a_table_for_every_object(schema):
    store = Store(schema, Clock())
    try:
        assert set(store.counts()) == {o.name for o in schema}
    finally:
        store.close()


def test_describe_global_entries_have_every_key_and_versioned_urls(schema):
    body = describe.describe_global(schema, API)
    assert body["encoding"] == "UTF-8" and body["maxBatchSize"] == 200
    names = [e["name"] for e in body["sobjects"]]
    assert names == sorted(names, key=str.lower) and len(names) == len(list(schema))
    for entry in body["sobjects"]:
        assert set(entry) == GLOBAL_KEYS, entry["name"]
    account = next(e for e in body["sobjects"] if e["name"] == "Account")
    assert set(account["urls"]) == GLOBAL_URL_KEYS
    assert account["urls"]["rowTemplate"] == "/services/data/v59.0/sobjects/Account/{ID}"
    assert account["keyPrefix"] == "001" and account["mergeable"] and account["feedEnabled"]
    history = next(e for e in body["sobjects"] if e["name"] == "AccountHistory")
    assert (history["associateEntityType"], history["associateParentEntity"]) == ("History", "Account")
    assert not history["replicateable"] and not history["createable"]


def test_sobject_metadata_wraps_the_global_entry(schema):
    recent = [{"attributes": {"type": "Account"}, "Id": "001", "Name": "Acme"}]
    body = describe.sobject_metadata(schema, schema.get("Account"), API, recent)
    assert set(body) == {"objectDescribe", "recentItems"}
    assert set(body["objectDescribe"]) == GLOBAL_KEYS and body["recentItems"] == recent


def test_describe_has_every_top_level_and_field_key_for_every_object(schema):
    for obj in schema:
        body = describe.describe_sobject(schema, obj, API)
        assert set(body) == DESCRIBE_KEYS, obj.name
        json.dumps(body)  # JSON-ready
        for f in body["fields"]:
            assert set(f) == set(PARENT_ID_EXAMPLE), f"{obj.name}.{f['name']}"
            assert f["type"] in ALLOWED_TYPES
            for value in f["picklistValues"]:
                assert set(value) == PICKLIST_KEYS
        for rel in body["childRelationships"]:
            assert set(rel) == CHILD_KEYS
        for info in body["recordTypeInfos"]:
            assert set(info) == RECORD_TYPE_KEYS


def test_account_parent_id_matches_the_real_describe_entry(schema):
    assert fields_of(schema, "Account")["ParentId"] == PARENT_ID_EXAMPLE


def test_field_details(schema):
    account = fields_of(schema, "Account")
    assert account["Name"]["byteLength"] == 765 and account["Name"]["nameField"]
    assert account["Id"]["type"] == "id" and account["Id"]["idLookup"] and not account["Id"]["createable"]
    ext = account["External_Id__c"]
    assert ext["externalId"] and ext["idLookup"] and ext["unique"] and ext["custom"]
    regions = account["Regions__c"]
    assert regions["type"] == "multipicklist" and [v["value"] for v in regions["picklistValues"]][:2] == [
        "North America", "Latin America"]
    assert account["IsDeleted"]["type"] == "boolean" and account["IsDeleted"]["defaultValue"] is False
    assert not account["IsDeleted"]["nillable"]
    assert account["AnnualRevenue"]["soapType"] == "xsd:double"
    assert (account["AnnualRevenue"]["precision"], account["AnnualRevenue"]["scale"]) == (18, 0)
    assert account["NumberOfEmployees"]["type"] == "int" and account["NumberOfEmployees"]["digits"] == 8
    assert account["Notes__c"]["length"] == 32768 and not account["Notes__c"]["filterable"]
    assert account["CreatedDate"]["defaultedOnCreate"] and not account["CreatedDate"]["updateable"]
    lead_status = fields_of(schema, "Lead")["Status"]
    assert lead_status["defaultValue"] is None and lead_status["defaultedOnCreate"]
    defaults = [v["value"] for v in lead_status["picklistValues"] if v["defaultValue"]]
    assert defaults == ["Open - Not Contacted"]
    types = {f["type"] for obj in schema for f in describe.describe_sobject(schema, obj, API)["fields"]}
    for needed in ("currency", "percent", "date", "datetime", "time", "boolean", "textarea", "email", "phone",
                   "url", "int", "double", "base64", "anyType", "location", "address", "multipicklist"):
        assert needed in types


def test_formula_and_rollup_fields(schema):
    line = fields_of(schema, "Invoice_Line__c")["Line_Total__c"]
    assert line["calculated"] and line["calculatedFormula"] == "Quantity__c * Unit_Price__c"
    assert not line["createable"] and not line["updateable"]
    assert not schema.get("Invoice_Line__c").field("Line_Total__c").stored
    total = schema.get("Invoice__c").field("Total__c")
    assert total.stored
    assert total.rollup == {"object": "Invoice_Line__c", "field": "Amount__c", "function": "SUM"}
    assert fields_of(schema, "Invoice__c")["Total__c"]["calculated"]


def test_compound_address_location_and_name_components(schema):
    account = fields_of(schema, "Account")
    billing = account["BillingAddress"]
    assert billing["type"] == "address" and billing["soapType"] == "urn:address"
    assert account["BillingCity"]["compoundFieldName"] == "BillingAddress"
    assert account["ShippingPostalCode"]["compoundFieldName"] == "ShippingAddress"
    lead = fields_of(schema, "Lead")
    assert lead["Address"]["type"] == "address" and lead["Street"]["compoundFieldName"] == "Address"
    assert fields_of(schema, "Contact")["MailingCountry"]["compoundFieldName"] == "MailingAddress"
    office = fields_of(schema, "Office__c")
    assert office["Location__c"]["type"] == "location"
    assert office["Location__Latitude__s"]["compoundFieldName"] == "Location__c"
    assert office["Opens_At__c"]["type"] == "time" and office["Opens_At__c"]["soapType"] == "xsd:time"
    for name in ("Contact", "Lead"):
        f = fields_of(schema, name)
        assert f["FirstName"]["compoundFieldName"] == "Name" and f["LastName"]["compoundFieldName"] == "Name"
        assert f["Salutation"]["compoundFieldName"] == "Name"
        assert f["Name"]["type"] == "string" and f["Name"]["compoundFieldName"] is None
        assert f["Name"]["nameField"] and not f["Name"]["createable"]
        assert schema.get(name).field("Name").stored
    contact = schema.get("Contact")
    ada = {"Salutation": "Dr.", "FirstName": "Ada", "LastName": "Lovelace"}
    assert contact.compose_name(ada) == "Ada Lovelace"
    assert contact.compose_name({"FirstName": None, "LastName": "Lovelace"}) == "Lovelace"


def _children(schema: Schema, parent: str) -> dict[tuple[str, str], dict]:
    body = describe.describe_sobject(schema, schema.get(parent), API)
    return {(r["childSObject"], r["field"]): r for r in body["childRelationships"]}


def test_child_relationships(schema):
    account = _children(schema, "Account")
    assert account[("Contact", "AccountId")]["relationshipName"] == "Contacts"
    assert account[("Contact", "AccountId")]["cascadeDelete"]  # Salesforce's describe says so
    assert account[("Opportunity", "AccountId")]["cascadeDelete"]
    assert account[("Case", "AccountId")]["restrictedDelete"]
    assert not account[("Case", "AccountId")]["cascadeDelete"]
    assert account[("Account", "ParentId")]["relationshipName"] == "ChildAccounts"
    assert account[("Invoice__c", "Account__c")]["cascadeDelete"]
    assert account[("Task", "WhatId")]["relationshipName"] == "Tasks"
    assert account[("Task", "AccountId")]["relationshipName"] is None
    lines = _children(schema, "Invoice__c")[("Invoice_Line__c", "Invoice__c")]
    assert lines["relationshipName"] == "Invoice_Lines__r" and lines["cascadeDelete"]
    assert _children(schema, "Project__c")[("Project__c", "Parent_Project__c")]["relationshipName"] == \
        "Sub_Projects__r"
    assert _children(schema, "Contact")[("Task", "WhoId")]["relationshipName"] == "Tasks"
    assert schema.child_relationship("account", "contacts").child.name == "Contact"


def test_circular_lookups_between_custom_objects(schema):
    region, office = schema.get("Region__c"), schema.get("Office__c")
    assert region.field("Primary_Office__c").reference_to == ["Office__c"]
    assert office.field("Region__c").reference_to == ["Region__c"]
    assert office.relationship("Region__r").name == "Region__c"


def test_polymorphic_what_and_who(schema):
    for name in ("Task", "Event"):
        f = fields_of(schema, name)
        what, who = f["WhatId"], f["WhoId"]
        assert what["relationshipName"] == "What" and who["relationshipName"] == "Who"
        assert {"Account", "Opportunity", "Case", "Campaign", "Invoice__c"} <= set(what["referenceTo"])
        assert who["referenceTo"] == ["Contact", "Lead"]
        assert what["polymorphicForeignKey"] and what["namePointing"] and who["polymorphicForeignKey"]
        assert schema.get(name).relationship("what").polymorphic
    link = schema.get("ContentDocumentLink").field("LinkedEntityId")
    assert link.polymorphic and link.relationship_name == "LinkedEntity"


def test_record_types_are_deterministic_real_looking_ids(schema):
    infos = describe.describe_sobject(schema, schema.get("Account"), API)["recordTypeInfos"]
    assert [i["developerName"] for i in infos] == ["Business", "Partner", "Master"]
    master = infos[-1]
    assert master["recordTypeId"] == "012000000000000AAA" and master["master"]
    layout = "/services/data/v59.0/sobjects/Account/describe/layouts/012000000000000AAA"
    assert master["urls"]["layout"] == layout
    assert infos[0]["defaultRecordTypeMapping"] and not master["defaultRecordTypeMapping"]
    rt = describe.record_type_id("Account", "Business")
    assert infos[0]["recordTypeId"] == rt == describe.record_type_id("account", "business")
    assert rt.startswith("012") and len(rt) == 18 and is_valid(rt)
    ids = {describe.record_type_id(o.name, r) for o in schema for r in o.record_types}
    assert len(ids) == sum(len(o.record_types) for o in schema) == 6
    user = describe.describe_sobject(schema, schema.get("User"), API)["recordTypeInfos"]
    assert [(i["developerName"], i["defaultRecordTypeMapping"]) for i in user] == [("Master", True)]
    for name in ("Opportunity", "Case"):
        assert schema.get(name).field("RecordTypeId").reference_to == ["RecordType"]


def test_objects_a_backup_must_skip(schema):
    share = schema.get("AccountShare")
    assert not share.replicateable and not share.triggerable
    history = schema.get("AccountHistory")
    assert history.field("CreatedDate") and history.field("CreatedById")
    assert history.field("LastModifiedDate") is None and history.field("SystemModstamp") is None
    assert history.field("OldValue").type == "anyType"
    external = schema.get("External__x")
    assert external.custom and not external.replicateable and not external.bulk_supported
    assert not schema.get("Attachment").bulk_supported and not schema.get("Knowledge__kav").bulk_supported
    link = schema.get("ContentDocumentLink")
    assert link.query_requires_filter.startswith("Implementation restriction: ContentDocumentLink requires "
                                                 "a filter by a single Id on ContentDocumentId")
    assert link.query_requires_filter.endswith("multiple Id's using the IN operator.")
    assert link.query_filter_fields == ["Id", "ContentDocumentId", "LinkedEntityId"]
    assert [f.name for f in link.fields.values() if f.system] == ["Id", "IsDeleted", "SystemModstamp"]


def test_organization_and_files(schema):
    org = fields_of(schema, "Organization")
    for name in ("IsSandbox", "InstanceName", "Name", "OrganizationType"):
        assert name in org
    assert org["IsSandbox"]["type"] == "boolean"
    assert fields_of(schema, "ContentVersion")["VersionData"]["type"] == "base64"
    assert fields_of(schema, "Attachment")["Body"]["soapType"] == "xsd:base64Binary"
    assert fields_of(schema, "Document")["Body"]["type"] == "base64"
    version = schema.get("ContentVersion")
    for name in ("Title", "PathOnClient", "ContentDocumentId", "ContentSize", "FileExtension", "Checksum",
                 "VersionNumber", "IsLatest", "FirstPublishLocationId"):
        assert version.field(name) is not None, name


def test_last_modified_and_if_modified_since(schema, tmp_path):
    stamp = describe.last_modified(schema)
    assert stamp.endswith(" GMT") and stamp == "Mon, 15 Jan 2024 08:00:00 GMT"
    assert describe.not_modified_since(schema, stamp)
    assert describe.not_modified_since(schema, "Tue, 16 Jan 2024 00:00:00 GMT")
    assert not describe.not_modified_since(schema, "Sun, 14 Jan 2024 00:00:00 GMT")
    assert not describe.not_modified_since(schema, "garbage")
    assert not describe.not_modified_since(schema, None)
    newer = tmp_path / "newer.yaml"
    newer.write_text("last_modified: 2025-03-01T12:00:00Z\nobjects: {}\n")
    assert describe.last_modified(Schema.load(STANDARD_SCHEMA, newer)) == "Sat, 01 Mar 2025 12:00:00 GMT"


def test_user_schema_file_extends_the_standard_org(tmp_path):
    extra = tmp_path / "org.yaml"
    extra.write_text(
        "objects:\n"
        "  Shipment__c:\n"
        "    prefix: a0Z\n"
        "    fields:\n"
        "      Account__c: {type: reference, to: Account, child_relationship: Shipments__r}\n"
        "      Weight__c: {type: double, precision: 10, scale: 3}\n")
    schema = Schema.load(STANDARD_SCHEMA, extra)
    assert schema.get("Shipment__c").custom and schema.get("Shipment__c").field("Name").name_field
    assert schema.child_relationship("Account", "Shipments__r").field.name == "Account__c"


W = "  Widget__c:\n    prefix: a0W\n    fields:\n      "  # a custom object with one field to follow


def test_the_documented_example_loads(tmp_path):
    doc = (Path(__file__).parents[2] / "docs" / "emulator-schema.md").read_text()
    example = doc.split("## A complete example")[1].split("```yaml\n")[1].split("```")[0]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    schema = Schema.load(STANDARD_SCHEMA, path)
    shipment = schema.get("Shipment__c")
    assert shipment.field("Destination__Latitude__s").compound_field_name == "Destination__c"
    assert schema.child_relationship("Invoice__c", "Shipments__r").cascade_delete


def _bad(tmp_path: Path, body: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text("objects:\n" + body)
    with pytest.raises(SchemaError) as err:
        Schema.load(STANDARD_SCHEMA, path)
    return str(err.value)


@pytest.mark.parametrize(("body", "expected"), [
    (W + "Size__c: {type: bigint}\n",
     "Widget__c.Size__c: unknown field type 'bigint'"),
    (W + "Size__c: {type: string, lenght: 10}\n",
     "Widget__c.Size__c: unknown field keys ['lenght']"),
    (W + "Owner__c: {type: reference, to: Nope__c}\n",
     "Widget__c.Owner__c references unknown object Nope__c"),
    (W + "Owner__c: {type: reference}\n",
     "Widget__c.Owner__c: a reference field needs 'to'"),
    (W + "Kind__c: {type: picklist}\n",
     "Widget__c.Kind__c: a picklist field needs 'values'"),
    (W + "T__c: {type: double, formula: A__c * 2, sql: '{t}.\"A__c\" * 2'}\n",
     "Widget__c.T__c: formula sql uses 'A__c'"),
    (W + "T__c: {type: double, rollup: {object: Widget__c, function: SUM}}\n",
     "Widget__c.T__c: a SUM rollup needs 'field', a field of Widget__c"),
    (W + "T__c: {type: double, rollup: {object: Contact, function: COUNT}}\n",
     "Widget__c.T__c: rollup needs a master-detail from Contact to Widget__c"),
    ("  Widget__c:\n    prefix: a0W\n    fieldz: {}\n", "Widget__c: unknown object keys ['fieldz']"),
    ("  Widget__c:\n    prefix: 1\n", "Widget__c: prefix must be a 3-character string"),
    ("  Widget__c: {prefix: a0W}\n  Gadget__c: {prefix: a0W}\n", "Gadget__c: key prefix a0W is already used"),
    ("  Widget__c: {prefix: a0W, system_fields: [CreatedDate, Modstamp]}\n",
     "Widget__c: system_fields ['Modstamp'] are not among"),
    (W + "Kind__c: {type: picklist, values: [A], default: B}\n",
     "Widget__c.Kind__c: default 'B' is not one of its values"),
])
def test_bad_schema_files_name_the_object_and_field(tmp_path, body, expected):
    assert expected in _bad(tmp_path, body)


def test_schema_last_modified_is_aware_utc(schema):
    assert schema.last_modified == datetime(2024, 1, 15, 8, 0, tzinfo=UTC)
