"""The loader's transports, against the running emulator over HTTPS: writes go 1,000 a call (sObject
Collections packed in /composite, each record failing alone); an object big enough that an ingest job
costs fewer calls goes by Bulk API 2.0, every result row finding its source record (Salesforce does not
keep the uploaded order); the price equals the ledger's count every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_loader import ACME, account_step, client, rows, run  # noqa: F401  (client: a fixture)

from replicator.sinks.salesforce.bulk import BULK_JOB_CALLS
from replicator.sinks.salesforce.model import CHANGED, LoadPlan, ObjectStep, Reference
from replicator.sinks.salesforce.price import price
from replicator.sinks.salesforce.transport import insert_transport
from replicator.store.idmap import StoreIdMap
from replicator.store.snapshot import SnapshotStore

CONTACTS = 6_500  # 7 composite calls of 1,000, or one ingest job of 6


@pytest.fixture
def store(tmp_path: Path, emulator) -> Iterator[SnapshotStore]:
    with SnapshotStore(tmp_path / "store.duckdb") as store:
        yield store
    emulator.control("POST", "reset", {})


def test_a_big_object_goes_by_bulk_and_every_result_finds_its_record(emulator, client, store) -> None:  # noqa: F811
    sources = [f"003{n:012d}AAA" for n in range(CONTACTS)]
    names = [f"Bulk {n}" for n in range(CONTACTS)]
    names[10:13] = ["Twin", "Twin", "Twin"]  # the same values: interchangeable, each gets its own record
    phones = ["+1 555 0100"] * CONTACTS
    phones[42] = "call me maybe"  # fails Contact_Phone_Format
    bosses = [sources[0] if n % 100 == 1 else None for n in range(CONTACTS)]  # a self lookup: second pass
    refs = (Reference("AccountId", ("Account",)), Reference("ReportsToId", ("Contact",), deferred=True))
    contacts = ObjectStep("Contact", ("LastName", "AccountId", "Phone", "ReportsToId"), refs,
                          inserts=rows(Id=sources, LastName=names, AccountId=[ACME] * CONTACTS, Phone=phones,
                                       ReportsToId=bosses),
                          insert_count=CONTACTS)
    plan = LoadPlan("emu", (account_step(), contacts))
    priced = price(plan)
    assert priced.transport == {"Account": "composite", "Contact": "bulk2"}
    assert priced.per_object["Contact"] == BULK_JOB_CALLS + 1  # 65 relinks: one composite call
    assert insert_transport("Contact", 6_000) == "composite" and insert_transport("Contact", 6_001) == "bulk2"
    assert insert_transport("ContentVersion", 100_000) == "collections"

    id_map = StoreIdMap(store.db, "emu")
    result, outcomes = run(emulator, client, plan, id_map)  # asserts predicted == counted == spent

    assert result.counts["Contact"] == {"inserted": CONTACTS - 1, "failed": 1, "relinked": 65}
    failed = next(o for o in outcomes if o.status == "failed")
    assert (failed.source_id, failed.error_code) == (sources[42], "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    assert failed.error_message.startswith("Phone must contain")
    mapped = id_map.lookup(sources)
    acme = id_map.lookup([ACME])[ACME]
    boss = mapped[sources[0]]
    soql = f"SELECT Id, LastName, ReportsToId FROM Contact WHERE AccountId = '{acme}'"
    found = [r for page in client.query_pages(soql) for r in page]
    landed = {r["Id"]: r["LastName"] for r in found}
    assert sorted(landed[r["Id"]] for r in found if r["ReportsToId"] == boss) == sorted(
        names[n] for n in range(CONTACTS) if n % 100 == 1)
    assert len(mapped) == len(landed) == CONTACTS - 1 and len(set(mapped.values())) == CONTACTS - 1
    assert all(landed[mapped[s]] == name for s, name in zip(sources, names, strict=True) if s in mapped)


def test_a_failed_ingest_job_fails_each_of_its_records_for_the_price(emulator, client, store) -> None:  # noqa: F811
    sources = [f"003{n:012d}BBB" for n in range(CONTACTS)]
    contacts = ObjectStep("Contact", ("LastName",), inserts=rows(Id=sources, LastName=["Lost"] * CONTACTS),
                          insert_count=CONTACTS)
    emulator.control("PUT", "faults", {"bulk_fail_objects": ["Contact"]})
    try:
        result, outcomes = run(emulator, client, LoadPlan("emu", (contacts,)), StoreIdMap(store.db, "emu"))
    finally:
        emulator.control("PUT", "faults", {})
    assert result.counts == {"Contact": {"failed": CONTACTS}}
    assert {(o.error_code, o.error_message) for o in outcomes} == {
        ("UNPROCESSED", "InternalServerError : the ingest job could not be processed")}
    assert client.count("FROM Contact WHERE LastName = 'Lost'") == 0


def test_mid_size_objects_go_1000_records_a_call_each_failing_alone(emulator, client, store) -> None:  # noqa: F811
    sources = [f"003{n:012d}CCC" for n in range(2_500)]
    phones = ["+1 555 0100"] * 2_500
    phones[1_234] = "call me maybe"  # fails alone, in the second call's third Collection
    contacts = ObjectStep("Contact", ("LastName", "Phone"),
                          inserts=rows(Id=sources, LastName=[f"Mid {n}" for n in range(2_500)], Phone=phones),
                          insert_count=2_500)
    id_map = StoreIdMap(store.db, "emu")
    plan = LoadPlan("emu", (contacts,))
    assert price(plan).transport == {"Contact": "composite"} and price(plan).calls == 3
    result, outcomes = run(emulator, client, plan, id_map)
    assert result.counts == {"Contact": {"inserted": 2_499, "failed": 1}}
    assert [o.source_id for o in outcomes if o.status == "failed"] == [sources[1_234]]

    mapped = id_map.lookup(sources[:1_200])
    targets = [mapped[s] for s in sources[:1_200]]
    updates = ObjectStep("Contact", ("LastName",), updates=rows(
        Id=targets, LastName=[f"Renamed {n}" for n in range(1_200)], **{CHANGED: [["LastName"]] * 1_200}),
        update_count=1_200)
    result, _ = run(emulator, client, LoadPlan("emu", (updates,)), id_map)  # 2 calls, as priced
    assert result.counts == {"Contact": {"updated": 1_200}}
    names = {r["Id"]: r["LastName"] for page in client.query_pages(
        "SELECT Id, LastName FROM Contact WHERE LastName LIKE 'Renamed %'") for r in page}
    assert [names[t] for t in targets] == [f"Renamed {n}" for n in range(1_200)]
