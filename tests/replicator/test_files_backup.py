"""File bodies through whole backup runs against the session emulator: a body replaced in place is
backed up again, and a body that cannot be downloaded fails its object (never a silent `completed`)
until a later run gets it.

The job backs up Attachment and Document only, so each run is a few seconds; every test resets the
org (data and faults) afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_backup_e2e import backup, config_text
from test_backup_e2e import org as restored_org  # noqa: F401 (a fixture: env set, org reset after)

from replicator.config import load_config
from replicator.store.repository import Repository
from replicator.store.snapshot import SnapshotStore

SELECTION = f"include = {json.dumps(['Attachment', 'Document'])}"
BIG = 1_500_000  # bytes of a body larger than any other answer of the org, so a fault can cut only it
pytestmark = pytest.mark.usefixtures("restored_org")


@pytest.fixture
def job(emulator: Any, tmp_config: Callable[..., Path]) -> Path:
    return tmp_config(config_text(emulator, wait=True, selection=SELECTION))




def blob_id(job: Path, data: bytes) -> str:
    """The id the store names a body by: the keyed name of its sha256, never the sha256 itself."""
    blobs = Repository.for_storage(load_config(job).storage).blobs()
    sha = hashlib.sha256(data).hexdigest()
    assert blobs.blob_id(sha) != sha
    return blobs.blob_id(sha)


def stored_body(job: Path, rid: str) -> tuple[str | None, bytes | None]:
    """The blob id the store's current Attachment version of `rid` names, and that blob's bytes."""
    config = load_config(job)
    store = SnapshotStore(job.parent / "store" / "snapshot.duckdb", read_only=True)
    try:
        rows = store.reads.sql(f"SELECT \"Body\" FROM \"Attachment\" WHERE \"Id\" = '{rid}'", None)
    finally:
        store.close()
    if rows.num_rows == 0:
        return None, None
    sha = rows.column(0)[0].as_py()
    blobs = Repository.for_storage(config.storage).blobs()
    return sha, blobs.get(sha) if sha else None


def body_downloads(org: Any, since: int, rid: str = "") -> int:
    """Attachment bodies the org served since a ledger mark (of one record, or of any)."""
    calls = org.control("GET", f"ledger?since={since}")["calls"]
    return sum(1 for c in calls if c["status"] == 200 and "/Attachment/" in c["path"]
               and c["path"].endswith(f"{rid}/Body"))


def ledger_mark(org: Any) -> int:
    return org.control("GET", "ledger?since=0")["last_seq"]


def test_a_body_replaced_by_one_of_the_same_length_is_backed_up_again(emulator: Any, job: Path) -> None:
    first = backup(job)
    assert first.status == "completed", first.message
    sf = emulator.sf()
    record = sf.query("SELECT Id, BodyLength FROM Attachment ORDER BY Id LIMIT 1")["records"][0]
    rid, size = record["Id"], record["BodyLength"]
    old_sha, old_bytes = stored_body(job, rid)
    assert old_bytes is not None and len(old_bytes) == size
    new_bytes = bytes(255 - b for b in old_bytes)  # same length, other bytes
    sf.Attachment.update(rid, {"Body": base64.b64encode(new_bytes).decode()})
    assert sf.Attachment.get(rid)["BodyLength"] == size

    mark = ledger_mark(emulator)
    second = backup(job)
    assert second.status == "completed", second.message
    new_sha, stored = stored_body(job, rid)
    assert new_sha == blob_id(job, new_bytes) != old_sha
    assert stored == new_bytes
    assert body_downloads(emulator, mark) == body_downloads(emulator, mark, rid) == 1

    mark = ledger_mark(emulator)  # a full run re-reads every record, and their stamps match the store's
    assert backup(job, full=True).status == "completed"
    assert body_downloads(emulator, mark) == 0


def test_a_body_that_cannot_be_fetched_fails_its_object_until_a_run_gets_it(emulator: Any, job: Path) -> None:
    assert backup(job).status == "completed"
    sf = emulator.sf()
    parent = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    data = hashlib.shake_256(b"big attachment").digest(BIG)
    rid = sf.Attachment.create({"Name": "big.bin", "ParentId": parent,
                                "Body": base64.b64encode(data).decode()})["id"]
    emulator.control("PUT", "faults", {"reset_rate": 1.0, "reset_min_bytes": BIG - 1000})

    faulty = backup(job)
    assert faulty.status != "completed", faulty.message
    section = next(s for s in faulty.sections if s.object == "Attachment")
    assert section.status == "failed"
    assert section.message.startswith("1 of ") and rid in section.message and "\n" not in section.message
    assert next(s for s in faulty.sections if s.object == "Document").status == "ok"
    assert stored_body(job, rid) == (None, None)  # the object was not applied: its cursor did not move

    emulator.control("PUT", "faults", {})
    healed = backup(job)
    assert healed.status == "completed", healed.message
    assert stored_body(job, rid) == (blob_id(job, data), data)
