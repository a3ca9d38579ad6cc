"""The data generator: deterministic, realistic, referentially intact orgs with files and roll-ups."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import numpy as np
import pytest

from sfemu import datagen
from sfemu.clock import Clock
from sfemu.describe import record_type_id
from sfemu.ids import make_id
from sfemu.schema import STANDARD_SCHEMA, Schema
from sfemu.store import Store

START = datetime(2024, 6, 1, 12, 0)

# Objects the standard YAML may not (yet) have, with every feature the generator must honour:
# record types, polymorphic lookups, master-detail with roll-ups, a circular custom pair, files.
ORG_YAML = """\
objects:
  Profile:
    prefix: "00e"
    fields:
      Name: {type: string, length: 255, required: true, name_field: true}
  UserRole:
    prefix: "00E"
    system_fields: none
    fields:
      Name: {type: string, length: 80, required: true, name_field: true}
      ParentRoleId: {type: reference, to: UserRole}
  User:
    prefix: "005"
    fields:
      Username: {type: string, length: 80, required: true, unique: true}
      LastName: {type: string, length: 80, required: true}
      FirstName: {type: string, length: 40}
      Name: {type: string, length: 121, name_field: true, createable: false, updateable: false}
      Email: {type: email, required: true}
      Alias: {type: string, length: 8}
      IsActive: {type: boolean, default: true}
      ProfileId: {type: reference, to: Profile, required: true}
      UserRoleId: {type: reference, to: UserRole}
      ManagerId: {type: reference, to: User, relationship: Manager}
  RecordType:
    prefix: "012"
    fields:
      Name: {type: string, length: 80, name_field: true}
      DeveloperName: {type: string, length: 80}
      SobjectType: {type: picklist, values: [Account, Opportunity]}
      IsActive: {type: boolean}
  Organization:
    prefix: "00D"
    fields:
      Name: {type: string, length: 80, name_field: true}
      IsSandbox: {type: boolean}
      InstanceName: {type: string, length: 5}
      OrganizationType: {type: picklist, values: [Enterprise Edition, Developer Edition]}
  Account:
    prefix: "001"
    owned: true
    record_types: [Customer, Partner]
    fields:
      Name: {type: string, length: 255, required: true, name_field: true}
      ParentId: {type: reference, to: Account, relationship: Parent, child_relationship: ChildAccounts}
      Type: {type: picklist, values: [Prospect, Customer - Direct, Customer - Channel]}
      Industry: {type: multipicklist, values: [Banking, Retail, Energy]}
      BillingAddress: {type: address, prefix: Billing}
      Phone: {type: phone}
      Website: {type: url}
      AnnualRevenue: {type: currency, precision: 18, scale: 0}
      NumberOfEmployees: {type: int}
      External_Key__c: {type: string, length: 40, external_id: true, unique: true}
  Contact:
    prefix: "003"
    owned: true
    fields:
      AccountId: {type: reference, to: Account, relationship: Account, child_relationship: Contacts}
      LastName: {type: string, length: 80, required: true}
      FirstName: {type: string, length: 40}
      Name: {type: string, length: 121, name_field: true, createable: false, updateable: false}
      Email: {type: email}
      MailingAddress: {type: address, prefix: Mailing}
      Birthdate: {type: date}
  Opportunity:
    prefix: "006"
    owned: true
    fields:
      Name: {type: string, length: 120, required: true, name_field: true}
      AccountId: {type: reference, to: Account, child_relationship: Opportunities}
      StageName: {type: picklist, values: [Prospecting, Negotiation, Closed Won, Closed Lost]}
      Amount: {type: currency}
      CloseDate: {type: date}
      IsClosed: {type: boolean, createable: false}
      IsWon: {type: boolean, createable: false}
      Pricebook2Id: {type: reference, to: Pricebook2}
  Product2:
    prefix: "01t"
    fields:
      Name: {type: string, length: 255, name_field: true}
      IsActive: {type: boolean}
  Pricebook2:
    prefix: "01s"
    fields:
      Name: {type: string, length: 255, name_field: true}
      IsStandard: {type: boolean}
      IsActive: {type: boolean}
  PricebookEntry:
    prefix: "01u"
    fields:
      Pricebook2Id: {type: reference, to: Pricebook2, required: true}
      Product2Id: {type: reference, to: Product2, required: true}
      UnitPrice: {type: currency}
      IsActive: {type: boolean}
  OpportunityLineItem:
    prefix: "00k"
    fields:
      OpportunityId: {type: reference, to: Opportunity, master_detail: true,
                      child_relationship: OpportunityLineItems}
      PricebookEntryId: {type: reference, to: PricebookEntry}
      Product2Id: {type: reference, to: Product2}
      Quantity: {type: double}
      UnitPrice: {type: currency}
      TotalPrice: {type: currency}
  Case:
    prefix: "500"
    owned: true
    fields:
      CaseNumber: {type: string, auto_number: true, length: 30}
      AccountId: {type: reference, to: Account, child_relationship: Cases}
      ContactId: {type: reference, to: Contact}
      Status: {type: picklist, values: [New, Working, Closed]}
      IsClosed: {type: boolean}
      Subject: {type: string}
      Description: {type: textarea, length: 32000}
  Task:
    prefix: "00T"
    owned: true
    fields:
      WhoId: {type: reference, to: [Contact, Lead], relationship: Who}
      WhatId: {type: reference, to: [Account, Opportunity, Case], relationship: What}
      Subject: {type: string}
      Status: {type: picklist, values: [Not Started, Completed]}
      ActivityDate: {type: date}
  Lead:
    prefix: "00Q"
    owned: true
    fields:
      LastName: {type: string, length: 80, required: true}
      FirstName: {type: string, length: 40}
      Name: {type: string, length: 121, name_field: true}
      Company: {type: string}
      IsConverted: {type: boolean}
      ConvertedAccountId: {type: reference, to: Account}
  ContentDocument:
    prefix: "069"
    owned: true
    fields:
      Title: {type: string}
      LatestPublishedVersionId: {type: reference, to: ContentVersion}
      FileExtension: {type: string, length: 40}
      ContentSize: {type: int}
  ContentVersion:
    prefix: "068"
    owned: true
    fields:
      ContentDocumentId: {type: reference, to: ContentDocument}
      Title: {type: string}
      PathOnClient: {type: string}
      VersionData: {type: base64}
      ContentSize: {type: int}
      Checksum: {type: string}
      FileExtension: {type: string}
      VersionNumber: {type: string}
      IsLatest: {type: boolean}
  ContentDocumentLink:
    prefix: "06A"
    system_fields: none
    fields:
      ContentDocumentId: {type: reference, to: ContentDocument, required: true}
      LinkedEntityId: {type: reference, to: [Account, Opportunity, User]}
      ShareType: {type: picklist, values: [V, C, I]}
      Visibility: {type: picklist, values: [AllUsers, InternalUsers]}
  Attachment:
    prefix: "00P"
    owned: true
    fields:
      ParentId: {type: reference, to: [Account, Opportunity, Case]}
      Name: {type: string}
      Body: {type: base64}
      BodyLength: {type: int}
      ContentType: {type: string}
  AccountHistory:
    prefix: "017"
    system_fields: created
    fields:
      AccountId: {type: reference, to: Account}
      Field: {type: picklist, values: [Name, Type]}
      OldValue: {type: anyType}
      NewValue: {type: anyType}
  Invoice__c:
    prefix: "a01"
    owned: true
    fields:
      Account__c: {type: reference, to: Account}
      Total__c: {type: currency, rollup: {object: Invoice_Line__c, field: Amount__c, function: SUM}}
      Lines__c: {type: double, rollup: {object: Invoice_Line__c, function: COUNT}}
      Status__c: {type: picklist, values: [Draft, Sent, Paid]}
  Invoice_Line__c:
    prefix: "a02"
    fields:
      Invoice__c: {type: reference, to: Invoice__c, master_detail: true, child_relationship: Lines__r}
      Amount__c: {type: currency, precision: 16, scale: 2}
      Quantity__c: {type: double}
  Project__c:
    prefix: "a03"
    owned: true
    fields:
      Office__c: {type: reference, to: Office__c}
      Code__c: {type: string, external_id: true, unique: true, length: 20}
  Office__c:
    prefix: "a04"
    owned: true
    fields:
      Main_Project__c: {type: reference, to: Project__c}
      Region__c: {type: reference, to: Region__c}
      Location__c: {type: location}
  Region__c:
    prefix: "a05"
    fields:
      Name: {type: string, length: 80}
"""


@pytest.fixture(scope="session")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    extra = tmp_path_factory.mktemp("schema") / "org.yaml"
    extra.write_text(ORG_YAML)
    return Schema.load(STANDARD_SCHEMA, extra)


def build(schema: Schema, seed: int = 11, scale: int = 3000, **kw) -> Store:
    store = Store(schema, Clock(START))
    datagen.generate(store, seed=seed, scale=scale, start=START, **kw)
    return store


def dump(store: Store) -> dict[str, list[tuple]]:
    cur = store.cursor()
    return {o.name: cur.execute(f"SELECT * FROM {store.table(o)} ORDER BY \"Id\"").fetchall()
            for o in store.schema if o.key_prefix}


def dangling(store: Store) -> dict[str, int]:
    """References (field -> count) that point at no record of an allowed type."""
    cur = store.cursor()
    out = {}
    for obj in store.schema:
        for f in obj.stored_fields:
            targets = [store.schema.get(t) for t in f.reference_to]
            if f.type != "reference" or not targets or not obj.key_prefix:
                continue
            union = " UNION ALL ".join(f"SELECT \"Id\" FROM {store.table(t)}" for t in targets)
            n = cur.execute(f"SELECT count(*) FROM {store.table(obj)} c "
                            f"WHERE c.{store.column(f)} IS NOT NULL "
                            f"AND c.{store.column(f)} NOT IN ({union})").fetchone()[0]
            if n:
                out[f"{obj.name}.{f.name}"] = n
    return out


def one(store: Store, sql: str, params: list | None = None):
    return store.cursor().execute(sql, params or []).fetchone()[0]


@pytest.fixture(scope="module")
def org(schema: Schema) -> Store:
    return build(schema)


def test_same_seed_gives_identical_org_and_other_seed_differs(schema: Schema) -> None:
    a, b, c = build(schema, scale=800), build(schema, scale=800), build(schema, seed=12, scale=800)
    assert dump(a) == dump(b)
    assert dump(a)["Account"] != dump(c)["Account"]


def test_vectorised_ids_equal_make_id() -> None:
    counters = np.array([1, 61, 62, 3843, 10**6, 62**9, 62**10 - 1])
    got = datagen.id_array(datagen.id_matrix("001", counters)).to_pylist()
    assert got == [make_id("001", int(c)) for c in counters]


def test_every_reference_points_at_a_record_of_an_allowed_type(org: Store) -> None:
    assert dangling(org) == {}
    polymorphic = one(org, 'SELECT count(DISTINCT substr("WhatId", 1, 3)) FROM "Task"')
    assert polymorphic >= 2


def test_counts_follow_scale_ratios_and_fixed_objects(org: Store, schema: Schema) -> None:
    counts = {o.name: org.count(o, include_deleted=True) for o in schema if o.key_prefix}
    assert 2700 <= sum(counts.values()) <= 3300
    assert counts["Organization"] == 1
    assert counts["User"] == 5
    assert counts["RecordType"] == len(datagen.record_types(schema))
    assert 1.8 <= counts["Contact"] / counts["Account"] <= 2.2
    assert counts["AccountHistory"] >= datagen.MIN_ROWS  # skipped by backups, present anyway
    assert counts["ContentVersion"] == counts["ContentDocument"]
    assert counts["PricebookEntry"] == counts["Product2"] * counts["Pricebook2"]


def test_counts_override_one_object_and_keep_the_others(schema: Schema) -> None:
    plan = datagen.plan_counts(schema, 3000, {"account": 50_000})
    assert plan["Account"] == 50_000
    assert plan["Contact"] == datagen.plan_counts(schema, 3000)["Contact"]
    with pytest.raises(ValueError):
        datagen.plan_counts(schema, 3000, {"Nope": 1})


def test_audit_fields_are_ordered_millisecond_user_stamped(org: Store) -> None:
    for name in ("Account", "Contact", "Task", "Invoice_Line__c"):
        t = f'"{name}"'
        bad = one(org, f'SELECT count(*) FROM {t} WHERE NOT ("CreatedDate" <= "LastModifiedDate" '
                       f'AND "LastModifiedDate" <= "SystemModstamp" AND "SystemModstamp" <= ?)', [START])
        assert bad == 0
        assert one(org, f'SELECT count(*) FROM {t} WHERE epoch_us("SystemModstamp") % 1000 <> 0') == 0
        assert one(org, f'SELECT min("CreatedDate") FROM {t}') >= START - timedelta(days=731)
    owners = one(org, 'SELECT count(*) FROM "Account" WHERE "OwnerId" NOT LIKE \'005%\' OR "OwnerId" IS NULL')
    assert owners == 0


def test_a_few_records_sit_in_the_recycle_bin(org: Store) -> None:
    for name in datagen.RECYCLE_OBJECTS:
        n, oldest = org.cursor().execute(
            f'SELECT count(*), min("_DeletedAt") FROM "{name}" WHERE "IsDeleted"').fetchone()
        assert 2 <= n <= org.count(org.schema.get(name), include_deleted=True) // 50
        assert oldest >= START - timedelta(days=10)
    for obj in org.schema:
        if obj.key_prefix and obj.field("IsDeleted"):
            assert one(org, f'SELECT count(*) FROM {org.table(obj)} '
                            f'WHERE "IsDeleted" <> ("_DeletedAt" IS NOT NULL)') == 0


def test_people_names_picklists_and_unique_external_ids(org: Store, schema: Schema) -> None:
    for name in ("Contact", "Lead", "User"):
        full = '"FirstName" || \' \' || "LastName"'
        assert one(org, f'SELECT count(*) FROM "{name}" WHERE "Name" <> {full}') == 0
    assert one(org, 'SELECT count(*) FROM "Contact" WHERE "Email" NOT LIKE \'%_@_%._%\'') == 0
    stages = {r[0] for r in org.cursor().execute('SELECT DISTINCT "StageName" FROM "Opportunity"').fetchall()}
    assert stages == set(schema.get("Opportunity").field("StageName").picklist_values)
    assert one(org, 'SELECT count(*) FROM "Opportunity" WHERE "IsWon" <> ("StageName" = \'Closed Won\')') == 0
    industries = org.cursor().execute('SELECT "Industry" FROM "Account"').fetchall()
    parts = {p for (v,) in industries for p in v.split(";")}
    assert parts == {"Banking", "Retail", "Energy"}
    assert one(org, 'SELECT count(*) FROM "Account" WHERE "Industry" LIKE \'%;%\'') > 0
    for name, field in (("Account", "External_Key__c"), ("Project__c", "Code__c"), ("User", "Username")):
        assert one(org, f'SELECT count(*) - count(DISTINCT "{field}") FROM "{name}"') == 0


def test_self_lookups_are_shallow_and_circular_pair_is_set(org: Store) -> None:
    share = one(org, 'SELECT avg(("ParentId" IS NOT NULL)::INT) FROM "Account"')
    assert 0.05 <= share <= 0.2
    assert one(org, 'SELECT count(*) FROM "Account" a JOIN "Account" p ON a."ParentId" = p."Id" '
                    'WHERE p."ParentId" IS NOT NULL') == 0
    both = one(org, 'SELECT count(*) FROM "Project__c" p JOIN "Office__c" o ON p."Office__c" = o."Id" '
                    'WHERE o."Main_Project__c" IS NOT NULL')
    assert both > 0


def test_record_types_and_organization(org: Store, schema: Schema) -> None:
    rows = org.cursor().execute('SELECT "Id", "SobjectType", "Name", "DeveloperName", "IsActive" '
                                'FROM "RecordType" ORDER BY "DeveloperName"').fetchall()
    assert [r[1:] for r in rows] == [("Account", "Customer", "Customer", True),
                                     ("Account", "Partner", "Partner", True)]
    # the same ids that describe's recordTypeInfos report
    expected_ids = [record_type_id("Account", "Customer"), record_type_id("Account", "Partner")]
    assert [r[0] for r in rows] == expected_ids
    assert one(org, 'SELECT count(*) FROM "Account" WHERE "RecordTypeId" NOT IN '
                    '(SELECT "Id" FROM "RecordType" WHERE "SobjectType" = \'Account\')') == 0
    assert org.cursor().execute('SELECT "IsSandbox", "OrganizationType" FROM "Organization"').fetchall() == [
        (False, "Enterprise Edition")]
    sandbox = build(schema, scale=200, sandbox=True, files=False)
    assert one(sandbox, 'SELECT "IsSandbox" FROM "Organization"') is True


def test_files_have_bytes_md5_sizes_and_duplicates(org: Store) -> None:
    rows = org.cursor().execute('SELECT "VersionData", "Checksum", "ContentSize", "FileExtension", '
                                '"PathOnClient" '
                                'FROM "ContentVersion"').fetchall()
    for data, checksum, size, ext, path in rows:
        assert hashlib.md5(data).hexdigest() == checksum
        assert len(data) == size and 100 <= size <= 200_000
        assert path.endswith("." + ext)
    bodies = org.cursor().execute('SELECT "Body", "BodyLength" FROM "Attachment"').fetchall()
    assert all(len(b) == n for b, n in bodies)
    assert len({b for b, _ in bodies}) < len(bodies)  # some duplicates for content-addressed dedupe
    assert one(org, 'SELECT count(*) FROM "ContentDocument" d JOIN "ContentVersion" v '
                    'ON v."ContentDocumentId" = d."Id" WHERE d."LatestPublishedVersionId" = v."Id" '
                    'AND d."ContentSize" = v."ContentSize"') == len(rows)
    unlinked = one(org, 'SELECT count(*) FROM "ContentDocument" WHERE "Id" NOT IN '
                        '(SELECT "ContentDocumentId" FROM "ContentDocumentLink")')
    assert unlinked == 0


def test_files_false_leaves_bodies_out(schema: Schema) -> None:
    store = build(schema, scale=500, files=False)
    assert one(store, 'SELECT count("VersionData") FROM "ContentVersion"') == 0
    assert one(store, 'SELECT count(*) FROM "ContentVersion"') > 0


def test_rollups_equal_their_children(org: Store) -> None:
    assert rollup_mismatches(org) == 0
    assert one(org, 'SELECT count(*) FROM "Invoice__c" WHERE "Total__c" > 0') > 0


def rollup_mismatches(store: Store) -> int:
    return one(store, 'SELECT count(*) FROM "Invoice__c" i WHERE "Total__c" <> coalesce((SELECT '
                      'sum("Amount__c") FROM "Invoice_Line__c" l WHERE l."Invoice__c" = i."Id" '
                      'AND l."_DeletedAt" IS NULL), 0) '
                      'OR "Lines__c" <> (SELECT count(*) FROM "Invoice_Line__c" l '
                      'WHERE l."Invoice__c" = i."Id" AND l."_DeletedAt" IS NULL)')
