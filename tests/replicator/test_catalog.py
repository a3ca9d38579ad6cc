"""The backup plan from describe: what is backed up, how, and why the rest is not."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from replicator.cli import cli
from replicator.config import ObjectSelection, OrgSettings, PasswordAuth, Secret
from replicator.salesforce.catalog import (
    FieldPlan,
    ObjectPlan,
    arrow_schema,
    arrow_type,
    build_plan,
    plan_org,
    select,
)
from replicator.salesforce.client import OrgClient


def org_settings(emulator, monkeypatch) -> OrgSettings:
    monkeypatch.setenv("CATALOG_TEST_PASSWORD", emulator.password)
    monkeypatch.setenv("CATALOG_TEST_SECRET", emulator.client_secret)
    return OrgSettings(
        name="emu", login_url=emulator.base_url, api_version="62.0", ca_bundle=Path(emulator.ca_path),
        auth=PasswordAuth(username=emulator.username,
                          password=Secret("CATALOG_TEST_PASSWORD", os.environ["CATALOG_TEST_PASSWORD"]),
                          client_id=emulator.client_id,
                          client_secret=Secret("CATALOG_TEST_SECRET", os.environ["CATALOG_TEST_SECRET"])))


@pytest.fixture(scope="module")
def plans(emulator) -> list[ObjectPlan]:
    mp = pytest.MonkeyPatch()
    try:
        client = OrgClient(org_settings(emulator, mp))
        return plan_org(client, ObjectSelection(), 150)
    finally:
        mp.undo()


def by_name(plans: list[ObjectPlan]) -> dict[str, ObjectPlan]:
    return {p.name: p for p in plans}


def test_every_object_of_the_org_is_planned_with_a_decision(emulator, plans):
    names = {e["name"] for e in emulator.sf().describe()["sobjects"]}
    assert {p.name for p in plans} == names
    for plan in plans:
        assert plan.included or plan.reason, plan.name


def test_skip_reasons_from_the_emulator(plans):
    p = by_name(plans)
    assert "history" in p["AccountHistory"].reason and not p["AccountHistory"].included
    assert "history" in p["OpportunityFieldHistory"].reason
    assert "sharing" in p["AccountShare"].reason
    assert "knowledge" in p["Knowledge__kav"].reason
    assert "external" in p["External__x"].reason
    assert not p["LoginIp"].included
    assert p["Organization"].reason == "not replicateable"


def test_content_document_link_is_included_with_a_parent_filter(plans):
    link = by_name(plans)["ContentDocumentLink"]
    assert link.included and link.filter_by == ("ContentDocumentId", "ContentDocument")
    assert link.method == "rest"


def test_formula_and_compound_fields(plans):
    account = by_name(plans)["Account"]
    fields = {f.name: f for f in account.fields}
    assert not fields["BillingAddress"].included and "compound" in fields["BillingAddress"].reason
    assert fields["BillingCity"].included and fields["BillingLatitude"].included
    schema = arrow_schema(account)
    assert "BillingAddress" not in schema.names and "BillingStreet" in schema.names
    opportunity = {f.name: f for f in by_name(plans)["Opportunity"].fields}
    assert not opportunity["ExpectedRevenue"].included
    assert opportunity["ExpectedRevenue"].reason.startswith("formula field")
    assert opportunity["Amount"].included
    assert "ExpectedRevenue" not in arrow_schema(by_name(plans)["Opportunity"]).names


def test_blob_field_is_a_column_for_the_files_step(plans):
    version = by_name(plans)["ContentVersion"]
    body = next(f for f in version.fields if f.name == "VersionData")
    assert body.included and "blob store" in body.reason
    assert arrow_schema(version).field("VersionData").type == pa.string()


def test_bulk_or_rest_by_count_and_threshold(plans):
    p = by_name(plans)
    assert p["Account"].records >= 150 and p["Account"].method == "bulk"
    assert p["Invoice__c"].records < 150 and p["Invoice__c"].method == "rest"
    assert p["Attachment"].method == "rest"  # Bulk refuses it on real orgs


def test_named_skips_and_empty_objects():
    names = ["Account", "LoginIp", "ClientBrowser", "Vote", "UserProfileFeed", "UserRecordAccess",
             "KnowledgeArticleVersion", "FAQ__kav", "Ext__x", "CaseHistory", "CaseShare", "Hidden", "Odd"]
    entries = [{"name": n, "queryable": n != "Hidden", "replicateable": n != "Odd"} for n in names]
    wanted, skipped = select({"sobjects": entries}, ObjectSelection())
    assert wanted == ["Account"]
    reasons = {p.name: p.reason for p in skipped}
    assert reasons["Hidden"] == "not queryable" and reasons["Odd"] == "not replicateable"
    assert all(reasons[n] for n in names[1:])
    describe = {"name": "Account", "custom": False, "fields": [
        {"name": "Id", "type": "id"}, {"name": "SystemModstamp", "type": "datetime"}]}
    empty = build_plan([describe], {"Account": 0}, skipped)
    account = by_name(empty)["Account"]
    assert not account.included and account.reason == "no records"
    kept = by_name(build_plan([describe], {"Account": 0}, [], keep={"Account"}))["Account"]
    assert kept.included and kept.method == "rest"


def test_selection_include_exclude():
    entries = [{"name": n, "queryable": True, "replicateable": True} for n in ("Account", "Contact", "Lead")]
    wanted, skipped = select({"sobjects": entries}, ObjectSelection(include=("contact",), recommended=False))
    assert wanted == ["Contact"]
    assert {p.reason for p in skipped} == {"not in the job's include list"}
    wanted, skipped = select({"sobjects": entries}, ObjectSelection(exclude=("Lead",)))
    assert wanted == ["Account", "Contact"] and skipped[0].reason == "excluded by the job"
    with pytest.raises(ValueError, match="Nope"):
        select({"sobjects": entries}, ObjectSelection(include=("Nope",), recommended=False))


@pytest.mark.parametrize(("ftype", "extra", "expected"), [
    ("id", {}, pa.string()), ("reference", {}, pa.string()), ("picklist", {}, pa.string()),
    ("boolean", {}, pa.bool_()), ("int", {}, pa.int32()), ("long", {}, pa.int64()),
    ("double", {}, pa.float64()), ("percent", {}, pa.float64()),
    ("currency", {"precision": 18, "scale": 2}, pa.decimal128(18, 2)), ("currency", {}, pa.float64()),
    ("date", {}, pa.date32()), ("datetime", {}, pa.timestamp("ms", tz="UTC")), ("time", {}, pa.time32("ms")),
    ("base64", {}, pa.string()), ("anyType", {}, pa.string()),
])
def test_arrow_types(ftype, extra, expected):
    assert arrow_type(FieldPlan(name="X", type=ftype, included=True, **extra)) == expected


def test_catalog_command(emulator, tmp_config, monkeypatch):
    monkeypatch.setenv("CATALOG_CLI_PASSWORD", emulator.password)
    monkeypatch.setenv("CATALOG_CLI_SECRET", emulator.client_secret)
    path = tmp_config(f"""
        [storage]
        path = "store"
        [orgs.emu]
        login_url = "{emulator.base_url}"
        auth = "password"
        username = "{emulator.username}"
        password_env = "CATALOG_CLI_PASSWORD"
        client_id = "{emulator.client_id}"
        client_secret_env = "CATALOG_CLI_SECRET"
        ca_bundle = "{emulator.ca_path}"
        [jobs.few]
        org = "emu"
        objects = {{ include = ["Account", "Invoice__c"] }}
        """)
    runner = CliRunner()
    text = runner.invoke(cli, ["--config", str(path), "catalog", "--org", "emu"])
    assert text.exit_code == 0, text.output
    assert "+ Account:" in text.output and "- AccountHistory: skipped" in text.output
    assert "- BillingAddress address (compound field" in text.output
    out = runner.invoke(cli, ["--config", str(path), "catalog", "--org", "emu", "--job", "few", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    included = {o["name"] for o in data["objects"] if o["included"]}
    assert included == {"Account", "Invoice__c"}
    assert emulator.password not in text.output + out.output
    bad = runner.invoke(cli, ["--config", str(path), "catalog", "--org", "nope"])
    assert bad.exit_code == 1 and "no org 'nope'" in bad.output
