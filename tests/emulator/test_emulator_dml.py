"""The DML engine in-process: conversion, validation, audit, roll-ups, recycle bin, automation hooks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from sfemu.describe import record_type_id
from sfemu.dml.engine import Dml, dml_engine
from sfemu.dml.hooks import SaveContext
from sfemu.dml.results import DmlError
from sfemu.org import EmulatedOrg, OrgSettings, generate_data
from sfemu.schema import STANDARD_SCHEMA

EXTRA_SCHEMA = """
objects:
  Contract_Note__c:
    prefix: "a09"
    fields:
      Account__c: {type: reference, to: Account, restricted_delete: true,
                   child_relationship: Contract_Notes__r}
"""


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    root = tmp_path_factory.mktemp("dml")
    extra = root / "extra.yaml"
    extra.write_text(EXTRA_SCHEMA)
    org = EmulatedOrg(
        OrgSettings(state_dir=root / "state", scale=200, files=False, schema_files=[STANDARD_SCHEMA, extra])
    )
    generate_data(org)
    yield org
    org.store.close()


@pytest.fixture
def dml(org: EmulatedOrg) -> Iterator[Dml]:
    org.extensions.pop("automations", None)
    yield dml_engine(org)
    org.extensions.pop("automations", None)


def row(org: EmulatedOrg, obj: str, rid: str, *fields: str) -> dict[str, Any]:
    cols = ", ".join(f'"{f}"' for f in fields)
    values = org.store.cursor().execute(f'SELECT {cols} FROM "{obj}" WHERE "Id" = ?', [rid]).fetchone()
    return dict(zip(fields, values, strict=True)) if values else {}


def codes(results: list) -> list[str | None]:
    return [r.errors[0].status_code if r.errors else None for r in results]


def insert(org: EmulatedOrg, dml: Dml, obj: str, **cols: list) -> list:
    return dml.insert(org.schema.get(obj), pa.table(cols))


def test_insert_sets_defaults_and_audit_fields(org: EmulatedOrg, dml: Dml) -> None:
    before = org.clock.now().replace(tzinfo=None)
    [acc] = insert(org, dml, "Account", Name=["Acme"])
    assert acc.success and acc.created and acc.id.startswith("001") and len(acc.id) == 18
    got = row(
        org,
        "Account",
        acc.id,
        "OwnerId",
        "CreatedById",
        "LastModifiedById",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
        "Is_Key_Account__c",
        "RecordTypeId",
    )
    admin = org.admin_user()[0]
    assert got["OwnerId"] == got["CreatedById"] == got["LastModifiedById"] == admin
    assert got["CreatedDate"] == got["LastModifiedDate"] == got["SystemModstamp"] >= before
    assert got["IsDeleted"] is False and got["Is_Key_Account__c"] is False
    assert got["RecordTypeId"] == record_type_id("Account", "Business")
    [con] = insert(org, dml, "Contact", FirstName=["Ada"], LastName=["Lovelace"], Salutation=["Dr."])
    assert row(org, "Contact", con.id, "Name")["Name"] == "Ada Lovelace"
    [inv] = insert(org, dml, "Invoice__c", Account__c=[acc.id[:15]], Invoice_Date__c=["2024-02-03"])
    got = row(org, "Invoice__c", inv.id, "Account__c", "Status__c", "Name", "Total__c", "Line_Count__c")
    assert got["Account__c"] == acc.id  # 15-character lookups are stored in the 18-character form
    assert got["Status__c"] == "Draft" and got["Name"].isdigit() and got["Total__c"] == 0


def test_values_convert_from_text(org: EmulatedOrg, dml: Dml) -> None:
    [acc] = insert(
        org,
        dml,
        "Account",
        Name=["Typed"],
        NumberOfEmployees=["42"],
        Is_Key_Account__c=["TRUE"],
        Customer_Since__c=["2021-05-06"],
        Credit_Limit__c=["1234.5"],
    )
    got = row(
        org,
        "Account",
        acc.id,
        "NumberOfEmployees",
        "Is_Key_Account__c",
        "Customer_Since__c",
        "Credit_Limit__c",
    )
    assert got["NumberOfEmployees"] == 42 and got["Is_Key_Account__c"] is True
    assert str(got["Customer_Since__c"]) == "2021-05-06" and float(got["Credit_Limit__c"]) == 1234.5
    [proj] = insert(org, dml, "Project__c", Name=["P"], Kickoff__c=["2024-01-02T03:04:05.678+0200"])
    assert str(row(org, "Project__c", proj.id, "Kickoff__c")["Kickoff__c"]) == "2024-01-02 01:04:05.678000"


def test_validation_errors(org: EmulatedOrg, dml: Dml) -> None:
    account = org.schema.get("Account")
    results = dml.insert(
        account,
        pa.table(
            {
                "Name": [None, "x" * 300, "ok", "ok", "ok"],
                "Support_Email__c": [None, None, "not-an-email", None, None],
                "NumberOfEmployees": [None, None, None, "many", None],
                "ParentId": [None, None, None, None, "001bad"],
            }
        ),
    )
    assert codes(results) == [
        "REQUIRED_FIELD_MISSING",
        "STRING_TOO_LONG",
        "INVALID_EMAIL_ADDRESS",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "MALFORMED_ID",
    ]
    assert results[0].errors[0] == DmlError(
        "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ["Name"]
    )
    assert results[1].errors[0].message.endswith("(max length=255)")
    assert results[2].errors[0].message == "Support Email: invalid email address: not-an-email"
    bad_field = dml.insert(account, pa.table({"Name": ["a"], "Foo": ["b"]}))[0].errors[0]
    assert (bad_field.status_code, bad_field.message) == (
        "INVALID_FIELD",
        "No such column 'Foo' on sobject of type Account",
    )
    locked = dml.insert(account, pa.table({"Name": ["a"], "CreatedDate": ["2020-01-01T00:00:00Z"]}))[
        0
    ].errors[0]
    assert locked.status_code == "INVALID_FIELD_FOR_INSERT_UPDATE" and locked.fields == ["CreatedDate"]
    assert locked.message.startswith("Unable to create/update fields: CreatedDate. Please check the security")
    [inv] = insert(org, dml, "Account", Name=["for invoice"])
    picklist = insert(
        org, dml, "Invoice__c", Account__c=[inv.id], Invoice_Date__c=["2024-01-01"], Status__c=["Bogus"]
    )
    assert codes(picklist) == ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]
    contact = org.store.cursor().execute('SELECT "Id" FROM "Contact" LIMIT 1').fetchone()[0]
    wrong_type = insert(org, dml, "Invoice__c", Account__c=[contact], Invoice_Date__c=["2024-01-01"])
    assert codes(wrong_type) == ["FIELD_INTEGRITY_EXCEPTION"]
    missing = insert(
        org, dml, "Invoice__c", Account__c=["0015J00000zzzzzAAA"], Invoice_Date__c=["2024-01-01"]
    )
    assert codes(missing) == ["INVALID_CROSS_REFERENCE_KEY"]
    no_parent = insert(org, dml, "Invoice__c", Invoice_Date__c=["2024-01-01"])
    assert no_parent[0].errors[0].message == "Required fields are missing: [Account__c]"


def test_unique_values(org: EmulatedOrg, dml: Dml) -> None:
    [first] = insert(org, dml, "Account", Name=["U1"], External_Id__c=["UNIQ-1"])
    results = insert(
        org, dml, "Account", Name=["U2", "U3", "U4"], External_Id__c=["uniq-1", "UNIQ-2", "UNIQ-2"]
    )
    assert codes(results) == ["DUPLICATE_VALUE", None, "DUPLICATE_VALUE"]
    assert results[0].errors[0].message == (
        f"duplicate value found: External_Id__c duplicates value on record with id: {first.id}"
    )


def test_all_or_none(org: EmulatedOrg, dml: Dml) -> None:
    account = org.schema.get("Account")
    before = org.store.count(account)
    results = dml.insert(account, pa.table({"Name": ["good", None]}), all_or_none=True)
    assert codes(results) == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "REQUIRED_FIELD_MISSING"]
    assert org.store.count(account) == before
    partial = dml.insert(account, pa.table({"Name": ["good", None]}))
    assert [r.success for r in partial] == [True, False] and org.store.count(account) == before + 1


def test_update_and_csv_conventions(org: EmulatedOrg, dml: Dml) -> None:
    account = org.schema.get("Account")
    [acc] = dml.insert(account, pa.table({"Name": ["Before"], "Site": ["HQ"], "Phone": ["123"]}))
    created = row(org, "Account", acc.id, "SystemModstamp")["SystemModstamp"]
    [res] = dml.update(
        account,
        pa.table({"Id": [acc.id[:15]], "Name": ["After"], "Site": [""], "Phone": ["#N/A"]}),
        empty_means_unchanged=True,
    )
    assert res.success and res.id == acc.id and not res.created
    got = row(org, "Account", acc.id, "Name", "Site", "Phone", "SystemModstamp", "CreatedDate")
    assert (got["Name"], got["Site"], got["Phone"]) == ("After", "HQ", None)
    assert got["SystemModstamp"] > created == got["CreatedDate"]
    bad = dml.update(
        account, pa.table({"Id": ["001xyz", "0015J00000zzzzzAAA", None], "Name": ["a", "b", "c"]})
    )
    assert codes(bad) == ["MALFORMED_ID", "INVALID_CROSS_REFERENCE_KEY", "MISSING_ARGUMENT"]
    [locked] = dml.update(account, pa.table({"Id": [acc.id], "Name": [None]}))
    assert codes([locked]) == ["REQUIRED_FIELD_MISSING"]


def test_upsert(org: EmulatedOrg, dml: Dml) -> None:
    account = org.schema.get("Account")
    [existing] = dml.insert(account, pa.table({"Name": ["Up"], "External_Id__c": ["UP-1"]}))
    results = dml.upsert(
        account,
        "External_Id__c",
        pa.table(
            {"External_Id__c": ["up-1", "UP-NEW", None, "DUP", "DUP"], "Name": ["Upd", "New", "x", "d", "d"]}
        ),
    )
    assert [(r.success, r.created) for r in results[:2]] == [(True, False), (True, True)]
    assert results[0].id == existing.id and row(org, "Account", existing.id, "Name")["Name"] == "Upd"
    assert codes(results[2:]) == ["MISSING_ARGUMENT", "DUPLICATE_EXTERNAL_ID", "DUPLICATE_EXTERNAL_ID"]
    by_id = dml.upsert(account, "Id", pa.table({"Id": [existing.id, None], "Name": ["ById", "Fresh"]}))
    assert [(r.success, r.created) for r in by_id] == [(True, False), (True, True)]


def test_rollups_and_formulas(org: EmulatedOrg, dml: Dml) -> None:
    lines = org.schema.get("Invoice_Line__c")
    [acc] = insert(org, dml, "Account", Name=["Rollup"])
    [inv] = insert(org, dml, "Invoice__c", Account__c=[acc.id], Invoice_Date__c=["2024-01-01"])
    start = row(org, "Invoice__c", inv.id, "SystemModstamp")["SystemModstamp"]
    added = dml.insert(
        lines,
        pa.table(
            {
                "Invoice__c": [inv.id, inv.id],
                "Quantity__c": ["2", "1"],
                "Unit_Price__c": ["5", "7"],
                "Amount__c": ["10", "7"],
            }
        ),
    )
    got = row(org, "Invoice__c", inv.id, "Total__c", "Line_Count__c", "SystemModstamp", "LastModifiedDate")
    assert (got["Total__c"], got["Line_Count__c"]) == (17, 2) and got["SystemModstamp"] > start
    bumped = got["SystemModstamp"]
    dml.update(lines, pa.table({"Id": [added[0].id], "Description__c": ["no amount change"]}))
    assert row(org, "Invoice__c", inv.id, "SystemModstamp")["SystemModstamp"] == bumped  # roll-up unchanged
    dml.update(lines, pa.table({"Id": [added[0].id], "Quantity__c": ["3"]}))
    total = (
        org.store.cursor()
        .execute(
            'SELECT "Quantity__c" * "Unit_Price__c", "SystemModstamp" FROM "Invoice_Line__c" WHERE "Id" = ?',
            [added[0].id],
        )
        .fetchone()
    )
    assert total[0] == 15  # the formula Line_Total__c reads stored inputs; it is never stored itself
    assert "Line_Total__c" not in [
        c[0] for c in org.store.cursor().execute('DESCRIBE "Invoice_Line__c"').fetchall()
    ]
    dml.delete([added[1].id])
    assert row(org, "Invoice__c", inv.id, "Total__c", "Line_Count__c") == {"Total__c": 10, "Line_Count__c": 1}
    dml.undelete([added[1].id])
    assert row(org, "Invoice__c", inv.id, "Total__c")["Total__c"] == 17


def test_cascade_delete_undelete_and_hard_delete(org: EmulatedOrg, dml: Dml) -> None:
    [acc] = insert(org, dml, "Account", Name=["Cascade"])
    [inv] = insert(org, dml, "Invoice__c", Account__c=[acc.id], Invoice_Date__c=["2024-01-01"])
    [line] = insert(org, dml, "Invoice_Line__c", Invoice__c=[inv.id], Quantity__c=["1"], Unit_Price__c=["1"])
    [res] = dml.delete([acc.id])
    assert res.success and res.id == acc.id
    deleted = [
        row(org, o, i, "IsDeleted", "_DeletedAt")
        for o, i in (("Account", acc.id), ("Invoice__c", inv.id), ("Invoice_Line__c", line.id))
    ]
    assert all(d["IsDeleted"] for d in deleted) and len({d["_DeletedAt"] for d in deleted}) == 1
    assert codes(dml.delete([acc.id])) == ["ENTITY_IS_DELETED"]
    assert codes(dml.update(org.schema.get("Account"), pa.table({"Id": [acc.id], "Name": ["x"]}))) == [
        "ENTITY_IS_DELETED"
    ]
    assert codes(dml.undelete([line.id])) == ["UNDELETE_FAILED"]  # its master is still in the bin
    assert dml.undelete([acc.id])[0].success
    assert not any(
        row(org, o, i, "IsDeleted")["IsDeleted"]
        for o, i in (("Account", acc.id), ("Invoice__c", inv.id), ("Invoice_Line__c", line.id))
    )
    assert codes(dml.undelete([acc.id])) == ["UNDELETE_FAILED"]
    assert dml.delete([inv.id], hard=True)[0].success
    assert row(org, "Invoice__c", inv.id, "Id") == {} and row(org, "Invoice_Line__c", line.id, "Id") == {}


def test_restricted_delete(org: EmulatedOrg, dml: Dml) -> None:
    [acc] = insert(org, dml, "Account", Name=["Restricted"])
    [note] = insert(org, dml, "Contract_Note__c", Name=["n"], Account__c=[acc.id])
    assert codes(dml.delete([acc.id])) == ["DELETE_FAILED"]
    dml.delete([note.id])
    assert dml.delete([acc.id])[0].success


class Hooks:
    """Automations stand-in implementing the hook protocol: fails rows by rule."""

    def __init__(self, before: str | None = None, after: str | None = None) -> None:
        self.before, self.after, self.seen = before, after, []

    def before_save(self, ctx: SaveContext) -> None:
        self.seen.append((ctx.op, ctx.obj.name, "before"))
        if self.before and ctx.obj.name == "Account":
            ctx.cursor.execute(f"UPDATE {ctx.staged} SET \"Site\" = 'from trigger'")
            ctx.fail(self.before, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Name must not be Bad", ["Name"])

    def after_save(self, ctx: SaveContext) -> None:
        self.seen.append((ctx.op, ctx.obj.name, "after"))
        if self.after and ctx.obj.name == "Account":
            ctx.fail(
                self.after, "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "AccountTrigger: execution of AfterInsert"
            )


def test_hooks_validate_and_fail_after_save(org: EmulatedOrg, dml: Dml) -> None:
    account = org.schema.get("Account")
    hooks = Hooks(before="\"Name\" = 'Bad'", after="\"Name\" = 'Boom'")
    org.extensions["automations"] = hooks
    before = org.store.count(account)
    results = dml.insert(account, pa.table({"Name": ["Fine", "Bad", "Boom"]}))
    assert codes(results) == [
        None,
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
    ]
    assert org.store.count(account) == before + 1  # the after-save failure was rolled back, the rest retried
    assert row(org, "Account", results[0].id, "Site")["Site"] == "from trigger"
    assert ("insert", "Account", "after") in hooks.seen
    all_or_none = dml.insert(account, pa.table({"Name": ["Fine", "Boom"]}), all_or_none=True)
    assert codes(all_or_none) == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"]
    assert org.store.count(account) == before + 1


def test_transaction_rolls_back_several_calls(org: EmulatedOrg, dml: Dml) -> None:
    account = org.schema.get("Account")
    before = org.store.count(account)
    with pytest.raises(RuntimeError), dml.transaction():
        assert dml.insert(account, pa.table({"Name": ["in txn"]}))[0].success
        raise RuntimeError("undo")
    assert org.store.count(account) == before


def test_recycle_bin_is_shared() -> None:
    """datagen and churn use the recyclebin module (no copies left behind)."""
    from sfemu import churn, datagen, recyclebin

    assert datagen.soft_delete is recyclebin.soft_delete and churn.undelete is recyclebin.undelete
