"""The loader into an org, against the running emulator over HTTPS.

Plans are built by hand from small Arrow tables (the loader's real interface); the org is read back
through simple-salesforce, and every load's price is compared with the calls the emulator counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from test_org_client import oauth_auth, settings

from replicator.salesforce.client import OrgClient
from replicator.sinks.salesforce.load import LoadResult, load
from replicator.sinks.salesforce.model import CHANGED, LoadPlan, ObjectStep, Outcome, Reference
from replicator.sinks.salesforce.price import price
from replicator.store.blobs import BlobStore
from replicator.store.idmap import StoreIdMap
from replicator.store.snapshot import SnapshotStore

# Source Ids: shaped like Salesforce's, but not in the org (as records of a backup deleted since).
ACME, ACME_EU = "001000000000AAAAA1", "001000000000AAAAA2"
ANN, BOB = "003000000000AAAAA1", "003000000000AAAAA2"
DEAL = "006000000000AAAAA1"
CALL = "00T000000000AAAAA1"


def rows(**columns: list[Any]) -> Any:
    table = pa.table(columns)
    return lambda: iter(table.to_batches(max_chunksize=2))


@pytest.fixture
def client(emulator, monkeypatch) -> OrgClient:
    client = OrgClient(settings(emulator, oauth_auth(emulator, monkeypatch)), backoff_seconds=0.01)
    client.login()
    return client


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SnapshotStore]:
    with SnapshotStore(tmp_path / "store.duckdb") as store:
        yield store


def run(emulator, client: OrgClient, plan: LoadPlan, id_map: StoreIdMap) -> tuple[LoadResult, list[Outcome]]:
    """Load `plan`; assert the emulator counted exactly the predicted calls."""
    predicted = price(plan).calls
    since = emulator.control("GET", "ledger")["last_seq"]
    outcomes: list[Outcome] = []
    result = load(client, plan, id_map, record=outcomes.extend)
    counted = emulator.control("GET", f"ledger?since={since}")["summary"]["counted"]
    assert counted == predicted == result.api_calls
    return result, outcomes


def account_step(**extra: Any) -> ObjectStep:
    return ObjectStep("Account", ("Name", "ParentId", "Phone"),
                      (Reference("ParentId", ("Account",), deferred=True),),
                      inserts=rows(Id=[ACME, ACME_EU], Name=["Acme", "Acme EU"], ParentId=[ACME_EU, ACME],
                                   Phone=["+1 555 0100", None]),
                      insert_count=2, **extra)


def test_a_hierarchy_lands_with_every_reference_remapped_and_a_failure_kept(emulator, client, store) -> None:
    sf = emulator.sf()
    contacts = ObjectStep("Contact", ("LastName", "AccountId", "Phone"),
                          (Reference("AccountId", ("Account",)),),
                          inserts=rows(Id=[ANN, BOB], LastName=["Ann", "Bob"], AccountId=[ACME, ACME_EU],
                                       Phone=["+1 555 0101", "call me maybe"]),  # Bob fails a validation rule
                          insert_count=2)
    deals = ObjectStep("Opportunity", ("Name", "AccountId", "StageName", "CloseDate"),
                       (Reference("AccountId", ("Account",)),),
                       inserts=rows(Id=[DEAL], Name=["Big deal"], AccountId=[ACME], StageName=["Prospecting"],
                                    CloseDate=pa.array([19000], pa.date32()).to_pylist()),
                       insert_count=1)
    polymorphic = (Reference("WhatId", ("Opportunity", "Account")), Reference("WhoId", ("Contact", "Lead")))
    tasks = ObjectStep("Task", ("Subject", "WhatId", "WhoId"), polymorphic,
                       inserts=rows(Id=[CALL], Subject=["Call Ann"], WhatId=[DEAL], WhoId=[ANN]),
                       insert_count=1)
    plan = LoadPlan("emu", (account_step(), contacts, deals, tasks))
    id_map = StoreIdMap(store.db, "emu")
    result, outcomes = run(emulator, client, plan, id_map)

    assert result.counts["Account"] == {"inserted": 2, "relinked": 2}
    assert result.counts["Contact"] == {"inserted": 1, "failed": 1}
    failed = next(o for o in outcomes if o.status == "failed")
    assert (failed.source_id, failed.error_code) == (BOB, "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    assert failed.error_message.startswith("Phone must contain")
    new = id_map.lookup([ACME, ACME_EU, ANN, DEAL, CALL])
    assert set(new) == {ACME, ACME_EU, ANN, DEAL, CALL} and not set(new) & set(new.values())
    acme = sf.Account.get(new[ACME])
    assert (acme["Name"], acme["ParentId"], acme["Phone"]) == ("Acme", new[ACME_EU], "+1 555 0100")
    assert sf.Account.get(new[ACME_EU])["ParentId"] == new[ACME]  # the cycle, closed by the second pass
    assert sf.Contact.get(new[ANN])["AccountId"] == new[ACME]
    assert str(sf.Opportunity.get(new[DEAL])["CloseDate"]) == "2022-01-08"
    task = sf.Task.get(new[CALL])
    assert (task["WhatId"], task["WhoId"]) == (new[DEAL], new[ANN])


def test_updates_send_only_changed_fields_and_the_id_map_is_reused(emulator, client, store) -> None:
    sf = emulator.sf()
    id_map = StoreIdMap(store.db, "emu")
    run(emulator, client, LoadPlan("emu", (account_step(),)), id_map)
    target = id_map.lookup([ACME])[ACME]
    sf.Account.update(target, {"Name": "Acme (renamed)", "Phone": "+1 555 0199"})
    update = ObjectStep("Account", ("Name", "Phone"),
                        updates=rows(Id=[target], Name=["Acme"], Phone=[None], **{CHANGED: [["Name"]]}),
                        update_count=1)
    contacts = ObjectStep("Contact", ("LastName", "AccountId"), (Reference("AccountId", ("Account",)),),
                          inserts=rows(Id=[ANN], LastName=["Ann"], AccountId=[ACME]), insert_count=1)
    result, _ = run(emulator, client, LoadPlan("emu", (update, contacts)), id_map)
    assert result.counts == {"Account": {"updated": 1}, "Contact": {"inserted": 1}}
    account = sf.Account.get(target)
    assert (account["Name"], account["Phone"]) == ("Acme", "+1 555 0199")  # Phone was not in CHANGED
    assert sf.Contact.get(id_map.lookup([ANN])[ANN])["AccountId"] == target  # mapped by the first load
    assert id_map.count() == 3


def test_files_come_back_with_their_bodies_and_links(emulator, client, store, tmp_path) -> None:
    sf = emulator.sf()
    blobs = BlobStore(tmp_path / "blobs", None)
    pdf, note = b"%PDF-1.4 restored report\n", b"plain attachment body"
    pdf_sha, note_sha = blobs.put(pdf), blobs.put(note)
    doc, version, link, attachment = "069000000000AAAAA1", "068000000000AAAAA1", "06A000000000AAAAA1", \
        "00P000000000AAAAA1"
    steps = (
        account_step(),
        ObjectStep("ContentVersion", ("Title", "PathOnClient", "VersionData", "ContentDocumentId"),
                   (Reference("ContentDocumentId", ("ContentDocument",)),),
                   inserts=rows(Id=[version], Title=["Report"], PathOnClient=["report.pdf"],
                                VersionData=[pdf_sha], ContentDocumentId=[doc]), insert_count=1),
        ObjectStep("ContentDocumentLink", ("ContentDocumentId", "LinkedEntityId", "ShareType"),
                   (Reference("ContentDocumentId", ("ContentDocument",)),
                    Reference("LinkedEntityId", ("Account",))),
                   inserts=rows(Id=[link], ContentDocumentId=[doc], LinkedEntityId=[ACME], ShareType=["V"]),
                   insert_count=1),
        ObjectStep("Attachment", ("Name", "Body", "ParentId"), (Reference("ParentId", ("Account",)),),
                   inserts=rows(Id=[attachment], Name=["note.txt"], Body=[note_sha], ParentId=[ACME]),
                   insert_count=1),
    )
    id_map = StoreIdMap(store.db, "emu")
    _, outcomes = run(emulator, client, LoadPlan("emu", steps, bodies=blobs), id_map)
    assert all(o.status == "ok" for o in outcomes), [o for o in outcomes if o.status != "ok"]
    new = id_map.lookup([ACME, doc, version, attachment])
    assert new[doc].startswith("069") and new[doc] != doc
    links = sf.query(f"SELECT LinkedEntityId FROM ContentDocumentLink WHERE ContentDocumentId = '{new[doc]}'")
    assert new[ACME] in {r["LinkedEntityId"] for r in links["records"]}
    body = sf.session.get(f"{sf.base_url}sobjects/ContentVersion/{new[version]}/VersionData",
                          headers=sf.headers).content
    assert body == pdf
    stored = sf.Attachment.get(new[attachment])
    assert stored["ParentId"] == new[ACME] and stored["BodyLength"] == len(note)
    assert sf.session.get(f"{sf.base_url}sobjects/Attachment/{new[attachment]}/Body",
                          headers=sf.headers).content == note
