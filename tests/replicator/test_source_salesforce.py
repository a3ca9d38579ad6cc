"""The Salesforce source against the emulator: staged tables equal the org's ground truth."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from replicator.config import ObjectSelection, OrgSettings, PasswordAuth, Secret
from replicator.salesforce.catalog import ObjectPlan, arrow_schema, plan_org
from replicator.salesforce.client import OrgClient
from replicator.sources.records import csv_table
from replicator.sources.salesforce import DELETED_SUFFIX, STAGING_DATASET, extract

OBJECTS = ("Account", "Contact", "Opportunity", "Invoice__c", "Event", "Attachment", "ContentDocument",
           "ContentDocumentLink")
THRESHOLD = 150  # Account, Contact and Opportunity go through Bulk at scale 2000


@pytest.fixture
def client(emulator, monkeypatch) -> OrgClient:
    monkeypatch.setenv("SOURCE_TEST_PASSWORD", emulator.password)
    monkeypatch.setenv("SOURCE_TEST_SECRET", emulator.client_secret)
    auth = PasswordAuth(username=emulator.username,
                        password=Secret("SOURCE_TEST_PASSWORD", os.environ["SOURCE_TEST_PASSWORD"]),
                        client_id=emulator.client_id,
                        client_secret=Secret("SOURCE_TEST_SECRET", os.environ["SOURCE_TEST_SECRET"]))
    return OrgClient(OrgSettings(name="emu", login_url=emulator.base_url, api_version="62.0", auth=auth,
                                 ca_bundle=Path(emulator.ca_path)), backoff_seconds=0.01)


@pytest.fixture
def plans(client) -> dict[str, ObjectPlan]:
    selection = ObjectSelection(include=OBJECTS, recommended=False)
    return {p.name: p for p in plan_org(client, selection, THRESHOLD) if p.included}


@pytest.fixture
def faults(emulator):
    def put(**config):
        emulator.control("PUT", "faults", config)
    yield put
    emulator.control("PUT", "faults", {})


def org_now(emulator) -> datetime:
    return datetime.fromisoformat(emulator.control("GET", "clock")["now"])


def staged(staging: Path, table: str) -> pa.Table | None:
    con = duckdb.connect(str(staging), read_only=True)
    try:
        found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                            "AND table_name = ?", [STAGING_DATASET, table]).fetchone()[0]
        if not found:
            return None
        return con.sql(f'SELECT * FROM {STAGING_DATASET}."{table}"').to_arrow_table()
    finally:
        con.close()


def comparable(plan: ObjectPlan) -> pa.Schema:
    """The staged schema minus the file body (the files step fills it, the source leaves it null)."""
    schema = arrow_schema(plan)
    return schema.remove(schema.get_field_index(plan.blob_field)) if plan.blob_field else schema


def staged_rows(staging: Path, plan: ObjectPlan) -> pa.Table:
    table = staged(staging, plan.name)
    assert table is not None, f"{plan.name} not staged"
    schema = comparable(plan)
    return table.select(schema.names).cast(schema).sort_by("Id")


def truth(emulator, plan: ObjectPlan) -> pa.Table:
    """Every record of the object in the org, the recycle bin included, typed like the stage."""
    response = emulator.http.get(f"{emulator.control_url}/dump/{plan.name}", params={"deleted": "true"},
                                 timeout=60)
    response.raise_for_status()
    return csv_table(response.content, comparable(plan)).sort_by("Id")


def since(table: pa.Table, cursor: datetime) -> pa.Table:
    stamp = table["SystemModstamp"]
    return table.filter(pc.greater_equal(stamp, pa.scalar(cursor, stamp.type)))


def run(client, plans, tmp_path: Path, name: str, cursors=None, **kwargs):
    staging = tmp_path / name / "staging.duckdb"
    kwargs.setdefault("run_ts", datetime.now(UTC))
    sections = extract(client, list(plans), cursors or {}, staging, **kwargs)
    return staging, {s.object: s for s in sections}


def test_first_extract_equals_ground_truth(emulator, client, plans, tmp_path):
    staging, sections = run(client, plans.values(), tmp_path, "first")
    assert set(sections) == set(OBJECTS)
    for name, plan in plans.items():
        section = sections[name]
        assert section.status == "ok", section
        got = staged_rows(staging, plan)
        assert got.equals(truth(emulator, plan)), name
        assert section.items == got.num_rows and section.api_calls >= 1
    assert sections["Account"].method == "bulk" and sections["Account"].bulk_batches == 1
    assert sections["Invoice__c"].method == "rest" and sections["Invoice__c"].bulk_batches == 0
    assert not (tmp_path / "first" / "dlt").exists()  # dlt's load packages (raw rows) are gone
    deleted = staged_rows(staging, plans["Account"]).filter(pc.field("IsDeleted"))
    assert deleted.num_rows > 0  # the recycle bin comes through queryAll


def test_bulk_and_rest_stage_identical_tables(client, plans, tmp_path):
    account = plans["Account"]
    assert account.method == "bulk"
    bulk, _ = run(client, [account], tmp_path, "bulk")
    account.method = "rest"
    rest, sections = run(client, [account], tmp_path, "rest")
    assert sections["Account"].bulk_batches == 0
    assert staged(bulk, "Account").sort_by("Id").equals(staged(rest, "Account").sort_by("Id"))


def test_ties_at_the_cursor_are_read_again(client, plans, tmp_path):
    wanted = [plans["Account"], plans["Invoice__c"]]
    first, _ = run(client, wanted, tmp_path, "first")
    cursors = {p.name: pc.max(staged(first, p.name)["SystemModstamp"]).as_py() for p in wanted}
    second, sections = run(client, wanted, tmp_path, "second", cursors)
    for plan in wanted:
        rows = staged(second, plan.name)
        assert rows.num_rows >= 1 and sections[plan.name].items == rows.num_rows
        assert pc.all(pc.equal(rows["SystemModstamp"], pa.scalar(cursors[plan.name]))).as_py()


def test_incremental_extract_after_churn(emulator, client, plans, tmp_path):
    wanted = [plans[n] for n in ("Account", "Contact", "Invoice__c", "ContentDocumentLink")]
    first, _ = run(client, wanted, tmp_path, "first")
    cursors = {p.name: pc.max(staged(first, p.name)["SystemModstamp"]).as_py() for p in wanted}
    try:
        emulator.control("POST", "churn", {"days": 1})
        second, sections = run(client, wanted, tmp_path, "second", cursors, run_ts=org_now(emulator))
        changed = 0
        for plan in wanted:
            expected = since(truth(emulator, plan), cursors[plan.name])
            got = staged_rows(second, plan)
            assert got.equals(expected), plan.name
            changed += got.num_rows
            assert sections[plan.name].items == got.num_rows
        assert changed > 10
        account = staged_rows(second, plans["Account"])
        gone = account.filter(pc.field("IsDeleted"))["Id"].to_pylist()
        if gone:  # /deleted lists them too, with the deletion time
            deleted = staged(second, "Account" + DELETED_SUFFIX)
            assert set(gone) <= set(deleted["Id"].to_pylist())
            assert sections["Account"].deleted_ids == deleted.num_rows
    finally:
        emulator.control("POST", "reset", {})


def test_query_timeout_fails_only_that_object(client, plans, tmp_path, faults):
    faults(query_timeout_objects=["Contact"])
    staging, sections = run(client, [plans["Account"], plans["Contact"]], tmp_path, "timeout")
    contact = sections["Contact"]
    assert contact.status == "failed" and contact.message.startswith("QUERY_TIMEOUT")
    assert contact.api_calls > 6 * 2  # the window was split in halves before giving up
    assert staged(staging, "Contact") is None
    assert sections["Account"].status == "ok" and staged(staging, "Account").num_rows > 0


def test_bulk_refusals_fall_back_to_rest(emulator, client, plans, tmp_path, faults):
    attachment, invoice = plans["Attachment"], plans["Invoice__c"]
    attachment.method = invoice.method = "bulk"  # Bulk refuses Attachment; Invoice__c jobs will fail
    faults(bulk_fail_objects=["Invoice__c"])
    staging, sections = run(client, [attachment, invoice], tmp_path, "fallback")
    assert "INVALIDENTITY" in sections["Attachment"].message
    assert "BULK_JOB_FAILED" in sections["Invoice__c"].message
    for plan in (attachment, invoice):
        assert sections[plan.name].status == "ok" and sections[plan.name].method == "rest"
        assert staged_rows(staging, plan).equals(truth(emulator, plan))


def test_budget_cap_stops_the_remaining_objects(emulator, client, plans, tmp_path):
    client.api_cap_percent = 50
    client.limits()
    try:
        emulator.control("POST", "limits", {"max": client.ledger.used + 1})
        client.limits()
        _, sections = run(client, [plans["Invoice__c"], plans["Event"]], tmp_path, "capped")
    finally:
        emulator.control("POST", "limits", {"max": 15000})
    assert sections["Invoice__c"].status == "failed"
    assert sections["Invoice__c"].message.startswith("API_CAP_REACHED")
    assert sections["Event"].status == "skipped"


def test_nothing_to_read_still_leaves_a_staging_file(client, tmp_path):
    staging, sections = run(client, [], tmp_path, "empty")
    assert sections == {} and staging.exists()
