"""Files step against the emulator: bodies land in the blob store, byte-exact, deduplicated, and a
second run with nothing new downloads nothing.

The module starts its own small emulator with more file records than the shared one has: the
generator repeats the bytes of every 10th file, so duplicates only appear from ten files up.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from replicator.config import OrgSettings, PasswordAuth, Secret
from replicator.salesforce.catalog import BLOB_OBJECTS, plan_object
from replicator.salesforce.client import OrgClient
from replicator.sources.files import fetch_files
from replicator.store.blobs import BlobStore
from sfemu.client import emulator_session
from sfemu.launch import start_emulator, stop, wait_ready

KEY = bytes(range(32))
FIELDS = {"ContentVersion": ["ContentSize", "Checksum"], "Attachment": ["BodyLength"],
          "Document": ["BodyLength"]}


@dataclass
class Org:
    info: dict[str, Any]
    http: Any

    def control(self, method: str, path: str) -> Any:
        response = self.http.request(method, f"{self.info['control_url'].rstrip('/')}/{path}", timeout=60)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    state = tmp_path_factory.mktemp("files_org") / "state"
    process, ready = start_emulator(state, 0, 300, 7, ["--count", "Attachment=25", "--count", "Document=12",
                                                       "--count", "ContentDocument=12"])
    try:
        info = wait_ready(process, ready, state / "emulator.log", timeout=180)
        yield Org(info, emulator_session(info["base_url"], info["ca_path"]))
    finally:
        stop(process)


@pytest.fixture(scope="module")
def client(emulator: Org) -> OrgClient:
    info = emulator.info
    settings = OrgSettings(
        name="demo", login_url=info["base_url"], api_version="62.0",
        auth=PasswordAuth(username=info["username"], password=Secret("PW", info["password"]),
                          security_token=Secret("TOKEN", info["security_token"])
                          if info.get("security_token") else None),
        ca_bundle=Path(info["ca_path"]))
    return OrgClient(settings, backoff_seconds=0.01)


@pytest.fixture(scope="module")
def plans(client):
    return [plan_object(client.describe(name), 1) for name in BLOB_OBJECTS]


def build_staging(client: OrgClient, path: Path, schema: str = "main") -> None:
    """A staging file shaped like the extract's: one table per object, blob column = the REST blob URL."""
    con = duckdb.connect(str(path))
    if schema != "main":
        con.execute(f'CREATE SCHEMA "{schema}"')
    for obj, extra in FIELDS.items():
        cols = ["Id", "IsDeleted", *extra, BLOB_OBJECTS[obj]]
        rows = [{c: r[c] for c in cols} for page in client.query_pages(
            f"SELECT {', '.join(cols)} FROM {obj}", include_deleted=True) for r in page]
        table = pa.Table.from_pylist(rows)
        con.register("rows", table)
        con.execute(f'CREATE TABLE "{schema}"."{obj}" AS SELECT * FROM rows')
        con.unregister("rows")
    con.close()


def staged_shas(path: Path, schema: str = "main", where: str = "true") -> dict[str, dict[str, str | None]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {obj: dict(con.execute(f'SELECT "Id", "{body}" FROM "{schema}"."{obj}" WHERE {where}')
                          .fetchall()) for obj, body in BLOB_OBJECTS.items()}
    finally:
        con.close()


def ground_truth(emulator, obj: str) -> dict[str, bytes]:
    """Bodies straight from the emulator's store (control API dump), by Id."""
    url = f"{emulator.info['control_url'].rstrip('/')}/dump/{obj}?format=jsonl"
    response = emulator.http.get(url, timeout=60)
    response.raise_for_status()
    rows = [json.loads(line) for line in response.text.splitlines() if line]
    return {r["Id"]: base64.b64decode(r[BLOB_OBJECTS[obj]]) for r in rows}


def previous_from(path: Path):
    """A stand-in for the snapshot store's current versions: the previous run's applied staging file."""
    def lookup(obj: str, columns: list[str], ids: pa.Array) -> pa.Table:
        con = duckdb.connect(str(path), read_only=True)
        try:
            cols = ", ".join(f'"{c}"' for c in columns)
            return con.execute(f'SELECT "Id", {cols} FROM "{obj}" WHERE "Id" IN (SELECT unnest(?))',
                               [ids.to_pylist()]).to_arrow_table()
        finally:
            con.close()
    return lookup


BLOB_PATH = re.compile(r"/sobjects/(ContentVersion/[^/]+/VersionData|(Attachment|Document)/[^/]+/Body)$")


def blob_gets(emulator, since: int) -> list[str]:
    """Paths of the blob downloads the org served since a ledger mark."""
    calls = emulator.control("GET", f"ledger?since={since}")["calls"]
    return [c["path"] for c in calls if BLOB_PATH.search(c["path"]) and c["status"] == 200]


def ledger_mark(emulator) -> int:
    return emulator.control("GET", "ledger?since=0")["last_seq"]


def test_fetch_bodies_dedup_and_incremental(emulator, client, plans, tmp_path):
    blobs = BlobStore(tmp_path / "blobs", KEY)
    first = tmp_path / "run1.duckdb"
    build_staging(client, first, schema="demo_dataset")  # dlt keeps tables in its dataset schema
    mark = ledger_mark(emulator)
    stats = fetch_files(client, blobs, first, plans)
    gets = blob_gets(emulator, mark)

    shas = staged_shas(first, "demo_dataset")
    deleted = staged_shas(first, "demo_dataset", where='"IsDeleted"')
    records = 0
    for obj, truth in ((o, ground_truth(emulator, o)) for o in BLOB_OBJECTS):
        st = stats[obj]
        assert st.failed == [] and st.records == len(truth) > 0
        assert st.fetched == len(truth) and st.unchanged == 0
        assert st.bytes_fetched == sum(len(b) for b in truth.values())
        live = {rid: sha for rid, sha in shas[obj].items() if rid not in deleted[obj]}
        # the keyed blob id (a keyed store), not the sha256 anyone holding the file could compute
        assert {rid: blobs.blob_id(hashlib.sha256(body).hexdigest()) for rid, body in truth.items()} == live
        assert all(shas[obj][rid] is None for rid in deleted[obj])  # recycle bin: no download
        for rid, body in truth.items():
            assert blobs.get(shas[obj][rid]) == body
        records += len(truth)
    # every download is one counted API call, seen both by our client and by the org
    assert len(gets) == records == sum(s.api_calls for s in stats.values())
    # the generated org repeats some files: fewer blobs than records
    distinct = {sha for per in shas.values() for sha in per.values() if sha}
    assert blobs.usage().blobs == len(distinct) < records
    assert sum(s.new_blobs for s in stats.values()) == len(distinct)

    # second run, same records re-staged, nothing changed: no downloads, same shas recorded
    snapshot = tmp_path / "snapshot.duckdb"
    shutil.copy(first, snapshot)
    con = duckdb.connect(str(snapshot))
    for obj in BLOB_OBJECTS:
        con.execute(f'CREATE TABLE main."{obj}" AS SELECT * FROM demo_dataset."{obj}"')
    con.close()
    second = tmp_path / "run2.duckdb"
    build_staging(client, second)
    mark = ledger_mark(emulator)
    again = fetch_files(client, blobs, second, plans, previous_from(snapshot))
    assert blob_gets(emulator, mark) == []
    assert all(s.fetched == 0 and s.api_calls == 0 and s.unchanged == s.records for s in again.values())
    assert staged_shas(second) == shas

    # what counts as changed: an Attachment whose size differs, a blob lost from the store; a
    # ContentVersion's body never changes under the same Id, so its size is not even compared
    con = duckdb.connect(str(snapshot))
    attachment = con.execute('SELECT min("Id") FROM "Attachment"').fetchone()[0]
    con.execute('UPDATE "Attachment" SET "BodyLength" = "BodyLength" + 1 WHERE "Id" = ?', [attachment])
    con.execute('UPDATE "ContentVersion" SET "ContentSize" = "ContentSize" + 1')
    document = con.execute('SELECT min("Id") FROM "Document"').fetchone()[0]
    con.close()
    lost = shas["Document"][document]
    blobs.delete(lost)
    third = tmp_path / "run3.duckdb"
    build_staging(client, third)
    mark = ledger_mark(emulator)
    changed = fetch_files(client, blobs, third, plans, previous_from(snapshot))
    assert sorted(p.rsplit("/", 2)[1] for p in blob_gets(emulator, mark)) == sorted([attachment, document])
    assert [changed[o].fetched for o in ("Attachment", "Document", "ContentVersion")] == [1, 1, 0]
    assert blobs.verify(lost)
    assert staged_shas(third) == shas


def test_deleted_bad_and_failed_rows(emulator, client, plans, tmp_path):
    """Deleted rows are skipped, a wrong Checksum or a vanished record is one failure, not a failed run."""
    blobs = BlobStore(tmp_path / "blobs", None)
    staging = tmp_path / "staging.duckdb"
    build_staging(client, staging)
    con = duckdb.connect(str(staging))
    cv = [r[0] for r in con.execute('SELECT "Id" FROM "ContentVersion" ORDER BY "Id" LIMIT 2').fetchall()]
    con.execute('UPDATE "ContentVersion" SET "Checksum" = ? WHERE "Id" = ?', ["0" * 32, cv[0]])
    con.execute('UPDATE "ContentVersion" SET "IsDeleted" = true WHERE "Id" = ?', [cv[1]])
    att = con.execute('SELECT "Id" FROM "Attachment" ORDER BY "Id" LIMIT 1').fetchone()[0]
    gone = att[:9] + "ZZZZZZ"  # well-formed 15-char Id of no record
    con.execute('INSERT INTO "Attachment" ("Id", "IsDeleted", "BodyLength") VALUES (?, false, 10)', [gone])
    con.execute('UPDATE "Document" SET "BodyLength" = 0')  # a Url document has no body: nothing to fetch
    con.close()
    stats = fetch_files(client, blobs, staging, plans)
    shas = staged_shas(staging)

    failed = stats["ContentVersion"].failed
    assert [f.id for f in failed] == [cv[0]] and "Checksum" in failed[0].message
    assert shas["ContentVersion"][cv[0]] is None and shas["ContentVersion"][cv[1]] is None
    assert [f.id for f in stats["Attachment"].failed] == [gone]
    assert "NOT_FOUND" in stats["Attachment"].failed[0].message
    assert stats["Attachment"].problem().startswith(f"1 of {stats['Attachment'].records} file bodies")
    assert gone in stats["Attachment"].problem() and stats["Document"].problem() is None
    assert stats["Attachment"].fetched == stats["Attachment"].records - 1 > 0
    assert shas["Attachment"][gone] is None and shas["Attachment"][att] is not None
    assert stats["Document"].no_body == stats["Document"].records and stats["Document"].api_calls == 0
    assert set(shas["Document"].values()) == {None}


def test_unknown_size_is_fetched_only_zero_means_no_body(emulator, client, plans, tmp_path):
    """A NULL size is unknown, not empty (REST inserts can leave it unset): the body is still fetched."""
    blobs = BlobStore(tmp_path / "blobs", None)
    staging = tmp_path / "staging.duckdb"
    build_staging(client, staging)
    con = duckdb.connect(str(staging))
    con.execute('UPDATE "ContentVersion" SET "ContentSize" = NULL')
    con.execute('UPDATE "Attachment" SET "BodyLength" = NULL')
    con.close()
    stats = fetch_files(client, blobs, staging, plans)
    shas = staged_shas(staging)
    deleted = staged_shas(staging, where='"IsDeleted"')
    for obj in ("ContentVersion", "Attachment"):
        truth = ground_truth(emulator, obj)
        assert stats[obj].failed == [] and stats[obj].no_body == 0 and stats[obj].fetched == len(truth) > 0
        assert stats[obj].problem() is None
        live = {rid: sha for rid, sha in shas[obj].items() if rid not in deleted[obj]}
        assert live == {rid: hashlib.sha256(body).hexdigest() for rid, body in truth.items()}
