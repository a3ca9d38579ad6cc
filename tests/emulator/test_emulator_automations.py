"""Automations (sfemu/dml/automations.py) fired by the real DML engine on an in-process org.

The wire-level behaviour (simple-salesforce, Tooling API, Bulk 2.0, a sandbox process) is covered by
tests/test_emulator_tooling.py; here each kind of automation is exercised directly and quickly.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from sfemu.dml.automations import AutomationError, automations, load_definitions
from sfemu.dml.engine import dml_engine
from sfemu.org import EmulatedOrg, OrgSettings, generate_data
from sfemu.schema import STANDARD_SCHEMA, Schema


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    org = EmulatedOrg(OrgSettings(state_dir=tmp_path_factory.mktemp("automations"), scale=200, files=False))
    generate_data(org)
    yield org
    org.store.close()


@pytest.fixture
def hooks(org: EmulatedOrg):
    """The org's automations, fresh from the YAML for every test (as after a control reset)."""
    org.extensions.pop("automations", None)
    return automations(org)


def insert(org: EmulatedOrg, obj: str, **columns) -> list:
    return dml_engine(org).insert(org.schema.get(obj), pa.table(columns))


def update(org: EmulatedOrg, obj: str, **columns) -> list:
    return dml_engine(org).update(org.schema.get(obj), pa.table(columns))


def one(org: EmulatedOrg, sql: str, params: list | None = None):
    return org.store.cursor().execute(sql, params or []).fetchall()


def by_name(hooks, name: str):
    return next(a for a in hooks.items if a.name == name)


def test_the_demo_org_ships_every_kind(hooks):
    kinds = [(a.kind, a.full_name, a.active) for a in hooks.items]
    assert sum(k == "ValidationRule" for k, _, _ in kinds) >= 2
    assert sum(k == "ApexTrigger" and not n.startswith("acme__") for k, n, _ in kinds) >= 2
    assert ("ApexTrigger", "acme__AccountSync", True) in kinds
    assert ("FlowDefinition", "Opportunity_Won_Followup", True) in kinds
    assert ("WorkflowRule", "Opportunity.Large_Deal_Review", True) in kinds
    assert ("DuplicateRule", "Account_Name_Duplicates", False) in kinds
    assert all(a.id[:3] == {"ValidationRule": "03d", "ApexTrigger": "01q", "FlowDefinition": "300",
                            "WorkflowRule": "01Q", "DuplicateRule": "0Bm"}[a.kind] for a in hooks.items)


def test_validation_rule_rejects_and_can_be_switched_off(org, hooks):
    results = insert(org, "Account", Name=["VR neg", "VR ok"], Credit_Limit__c=[-1.0, 5.0])
    assert not results[0].success and results[1].success
    error = results[0].errors[0]
    assert (error.status_code, error.fields) == ("FIELD_CUSTOM_VALIDATION_EXCEPTION", ["Credit_Limit__c"])
    assert error.message.startswith("Credit limit cannot be negative")
    bad_phone = insert(org, "Contact", LastName=["P"], Phone=["call me maybe"])[0]
    assert bad_phone.errors[0].message.startswith("Phone must contain")
    hooks.set_active(by_name(hooks, "Account_Credit_Terms"), False)
    assert insert(org, "Account", Name=["VR neg 2"], Credit_Limit__c=[-1.0])[0].success


def test_discount_rule_uses_ispickval(org, hooks):
    results = insert(org, "Account", Name=["D1", "D2"], Type=["Customer - Direct", "Prospect"],
                     Discount_Rate__c=[60.0, 60.0])
    assert [r.success for r in results] == [False, True]


def test_reject_trigger_fails_with_apex_style_message(org, hooks):
    results = insert(org, "Opportunity", Name=["Neg", "Pos"], StageName=["Prospecting"] * 2,
                     CloseDate=["2024-06-01"] * 2, Amount=[-5.0, 5.0])
    assert [r.success for r in results] == [False, True]
    assert results[0].errors[0].status_code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
    assert results[0].errors[0].message == ("OpportunityAmountGuard: execution of BeforeInsert caused by: "
                                            "Opportunity amount cannot be negative")
    updated = update(org, "Opportunity", Id=[results[1].id], Amount=[-1.0])[0]
    assert "execution of BeforeUpdate" in updated.errors[0].message
    hooks.set_active(by_name(hooks, "OpportunityAmountGuard"), False)
    assert update(org, "Opportunity", Id=[results[1].id], Amount=[-1.0])[0].success


def test_set_trigger_changes_fields_before_save(org, hooks):
    ids = [r.id for r in insert(org, "Account", Name=["Rich", "Poor", "Rated"],
                                AnnualRevenue=[20e6, 1e3, 20e6], Rating=[None, None, "Cold"])]
    rows = one(org, 'SELECT "Name", "Rating" FROM "Account" WHERE list_contains(?, "Id") ORDER BY "Name"',
               [ids])
    assert rows == [("Poor", None), ("Rated", "Cold"), ("Rich", "Hot")]
    hooks.set_active(by_name(hooks, "AccountRatingTrigger"), False)
    rid = insert(org, "Account", Name=["Rich 2"], AnnualRevenue=[20e6])[0].id
    assert one(org, 'SELECT "Rating" FROM "Account" WHERE "Id" = ?', [rid]) == [(None,)]


def test_create_related_trigger_inserts_tasks_after_insert(org, hooks):
    key, plain = (r.id for r in insert(org, "Account", Name=["Key Co", "Plain Co"],
                                       Is_Key_Account__c=[True, False]))
    tasks = one(org, 'SELECT "WhatId", "Subject", "Priority", "OwnerId" IS NOT NULL FROM "Task" '
                     'WHERE "WhatId" IN (?, ?)', [key, plain])
    assert tasks == [(key, "Onboarding call: Key Co", "High", True)]
    hooks.set_active(by_name(hooks, "KeyAccountOnboarding"), False)
    other = insert(org, "Account", Name=["Key Co 2"], Is_Key_Account__c=[True])[0].id
    assert one(org, 'SELECT count(*) FROM "Task" WHERE "WhatId" = ?', [other]) == [(0,)]


def test_managed_trigger_runs_and_refuses_changes(org, hooks):
    rid = insert(org, "Account", Name=["Acme sync"], AccountNumber=["ACME-7"])[0].id
    assert one(org, 'SELECT "Site" FROM "Account" WHERE "Id" = ?', [rid]) == [("Synced by ACME",)]
    managed = by_name(hooks, "AccountSync")
    assert managed.namespace == "acme" and managed.full_name == "acme__AccountSync"
    with pytest.raises(Exception, match=managed.id):
        hooks.set_active(managed, False)
    assert managed.active


def test_workflow_field_update_fires_on_create_and_when_criteria_become_true(org, hooks):
    big, small = (r.id for r in insert(org, "Opportunity", Name=["WF big", "WF small"],
                                       StageName=["Prospecting"] * 2, CloseDate=["2024-06-01"] * 2,
                                       Amount=[2e6, 10.0]))
    step = 'SELECT "NextStep" FROM "Opportunity" WHERE "Id" = ?'
    assert one(org, step, [big]) == [("Executive review required",)]
    assert one(org, step, [small]) == [(None,)]
    update(org, "Opportunity", Id=[big], NextStep=["Call"], Amount=[3e6])  # already met: no re-fire
    assert one(org, step, [big]) == [("Call",)]
    update(org, "Opportunity", Id=[small], Amount=[5e6])  # newly meets the criteria
    assert one(org, step, [small]) == [("Executive review required",)]
    hooks.set_active(by_name(hooks, "Large_Deal_Review"), False)
    off = insert(org, "Opportunity", Name=["WF off"], StageName=["Prospecting"], CloseDate=["2024-06-01"],
                 Amount=[2e6])[0].id
    assert one(org, step, [off]) == [(None,)]


def test_flow_versions_decide_what_runs(org, hooks):
    flow = by_name(hooks, "Opportunity_Won_Followup")
    subjects = 'SELECT "Subject" FROM "Task" WHERE "WhatId" = ? ORDER BY "Subject"'
    won = insert(org, "Opportunity", Name=["Won deal"], StageName=["Closed Won"],
                 CloseDate=["2024-06-01"])[0].id
    assert one(org, subjects, [won]) == [("Send thank-you note for Won deal",)]
    update(org, "Opportunity", Id=[won], Description=["edited"])  # v2: only when the stage changes
    assert len(one(org, subjects, [won])) == 1
    hooks.set_flow_version(flow, 1)  # v1 fires on every save of a won opportunity
    update(org, "Opportunity", Id=[won], Description=["edited again"])
    assert one(org, subjects, [won]) == [("Send thank-you note for Won deal",), ("Thank the customer",)]
    hooks.set_flow_version(flow, 0)
    update(org, "Opportunity", Id=[won], Description=["third edit"])
    assert len(one(org, subjects, [won])) == 2


def test_duplicate_rule_blocks_when_active(org, hooks):
    rule = by_name(hooks, "Account_Name_Duplicates")
    assert insert(org, "Account", Name=["Dup Co"])[0].success
    assert insert(org, "Account", Name=["dup co"])[0].success  # inactive in the demo org
    hooks.set_active(rule, True)
    results = insert(org, "Account", Name=["DUP CO", "Fresh Co", "Fresh co"])
    assert [r.success for r in results] == [False, True, False]
    assert results[0].errors[0].status_code == "DUPLICATES_DETECTED"


def seed_dataset() -> dict[str, pa.Table]:
    """20 accounts with contacts and opportunities, some breaking the demo org's rules."""
    n = 20
    accounts = pa.table({
        "Name": [f"Seed {i}" for i in range(n)],
        "Credit_Limit__c": [-100.0 if i % 5 == 0 else 1000.0 for i in range(n)],
        "AnnualRevenue": [50e6 if i % 4 == 0 else 1e5 for i in range(n)],
        "Is_Key_Account__c": [i % 3 == 0 for i in range(n)],
    })
    contacts = pa.table({"LastName": [f"Seed {i}" for i in range(n)],
                         "Phone": ["n/a" if i % 2 else "+1 555 0100" for i in range(n)]})
    opportunities = pa.table({"Name": [f"Seed deal {i}" for i in range(n)], "StageName": ["Prospecting"] * n,
                              "CloseDate": ["2024-09-30"] * n,
                              "Amount": [-1.0 if i % 4 == 1 else 2e6 for i in range(n)]})
    return {"Account": accounts, "Contact": contacts, "Opportunity": opportunities}


def load_seed(org: EmulatedOrg) -> dict[str, list]:
    dml = dml_engine(org)
    return {name: dml.insert(org.schema.get(name), rows) for name, rows in seed_dataset().items()}


def test_seed_data_fails_and_changes_with_automations_and_loads_cleanly_without(org, hooks):
    results = load_seed(org)
    failed = {name: sum(not r.success for r in rs) for name, rs in results.items()}
    assert failed == {"Account": 4, "Contact": 10, "Opportunity": 5}
    ok_ids = [r.id for r in results["Account"] if r.success]
    assert one(org, 'SELECT count(*) FROM "Account" WHERE list_contains(?, "Id") AND "Rating" = \'Hot\'',
               [ok_ids]) == [(4,)]
    assert one(org, 'SELECT count(*) FROM "Task" WHERE list_contains(?, "WhatId")', [ok_ids]) == [(5,)]

    for auto in hooks.items:  # what a seeding tool does first (the managed trigger cannot be switched off)
        if not auto.managed:
            if auto.kind == "FlowDefinition":
                hooks.set_flow_version(auto, 0)
            else:
                hooks.set_active(auto, False)
    results = load_seed(org)
    assert all(r.success for rs in results.values() for r in rs)
    ids = [r.id for r in results["Account"]]
    assert one(org, 'SELECT count(*) FROM "Account" WHERE list_contains(?, "Id") AND "Rating" IS NOT NULL',
               [ids]) == [(0,)]
    assert one(org, 'SELECT count(*) FROM "Task" WHERE list_contains(?, "WhatId")', [ids]) == [(0,)]
    opp_ids = [r.id for r in results["Opportunity"]]
    assert one(org, 'SELECT count(*) FROM "Opportunity" WHERE list_contains(?, "Id") '
                    'AND "NextStep" IS NOT NULL', [opp_ids]) == [(0,)]


def write_custom(tmp_path: Path, automations_yaml: str) -> Path:
    path = tmp_path / "my-org.yaml"
    path.write_text(textwrap.dedent("""
        objects:
          Widget__c:
            prefix: "a0W"
            fields:
              Size__c: {type: double, precision: 6, scale: 0}
              Color__c: {type: picklist, values: [Red, Blue]}
        automations:
        """) + textwrap.indent(textwrap.dedent(automations_yaml), "  "))
    return path


def test_custom_schema_and_automations_load_from_a_file(tmp_path):
    path = write_custom(tmp_path, """
        validation_rules:
          - name: Widget_Size
            object: Widget__c
            formula: AND(ISPICKVAL(Color__c, "Red"), Size__c > 10)
            message: Red widgets are small.
        """)
    org = EmulatedOrg(OrgSettings(state_dir=tmp_path / "org", scale=50, files=False,
                                  schema_files=[STANDARD_SCHEMA, path]))
    try:
        automations(org)
        results = insert(org, "Widget__c", Name=["a", "b"], Color__c=["Red", "Blue"], Size__c=[20.0, 20.0])
        assert [r.success for r in results] == [False, True]
        assert results[0].errors[0].message == "Red widgets are small."
    finally:
        org.store.close()


@pytest.mark.parametrize("definition, message", [
    ("""
     validation_rules:
       - {name: Broken, object: Widget__c, formula: "Size__c >", message: m}
     """, "validation_rules Broken: Syntax error"),
    ("""
     validation_rules:
       - {name: Typo, object: Widget__c, formula: "Sise__c > 1", message: m}
     """, "validation_rules Typo: Field Sise__c does not exist"),
    ("""
     triggers:
       - {name: T, object: Widget__c, events: [before insert], action: explode}
     """, "triggers T: action must be one of"),
    ("""
     triggers:
       - {name: T, object: Widget__c, events: [after insert], action: set, set: {Size__c: "1"}}
     """, "triggers T: a set trigger needs 'set' and before events only"),
    ("""
     workflow_rules:
       - {name: W, object: Widget__c, criteria: "TRUE", field_updates: {Id: "1"}}
     """, "workflow_rules W: Widget__c.Id is not a field an automation can set"),
    ("""
     flows:
       - {name: F, object: Nope__c, condition: "TRUE", set: {Size__c: "1"}}
     """, "flows F: unknown object Nope__c"),
    ("""
     sharing_rules: []
     """, "unknown kinds ['sharing_rules']"),
])
def test_bad_definitions_are_refused_naming_the_automation(tmp_path, definition, message):
    schema = Schema.load(STANDARD_SCHEMA, write_custom(tmp_path, definition))
    with pytest.raises(AutomationError) as info:
        load_definitions(schema)
    assert message in str(info.value)
