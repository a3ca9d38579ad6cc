"""The loader's Bulk API 2.0 transport, against the running emulator over HTTPS: an object big enough
that an ingest job costs fewer calls than sObject Collections goes by Bulk, every result row finds its
source record (Salesforce does not keep the uploaded order), and the price equals the ledger's count.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_loader import ACME, account_step, client, rows, run  # noqa: F401  (client: a fixture)

from replicator.sinks.salesforce.bulk import BULK_JOB_CALLS, uses_bulk
from replicator.sinks.salesforce.model import LoadPlan, ObjectStep, Reference
from replicator.sinks.salesforce.price import price
from replicator.store.idmap import StoreIdMap
from replicator.store.snapshot import SnapshotStore

CONTACTS = 1_500  # 8 Collections calls, or one ingest job of 6


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
    assert priced.transport == {"Account": "collections", "Contact": "bulk2"}
    assert priced.per_object["Contact"] == BULK_JOB_CALLS + 1  # 15 relinks: one Collections call
    assert not uses_bulk("Contact", 200) and not uses_bulk("ContentVersion", 100_000)

    id_map = StoreIdMap(store.db, "emu")
    result, outcomes = run(emulator, client, plan, id_map)  # asserts predicted == counted == spent

    assert result.counts["Contact"] == {"inserted": CONTACTS - 1, "failed": 1, "relinked": 15}
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
