"""Blob names that do not give the content away, and a blob key kept away from the blobs (issue 13).

Before, a blob's file name was the plain sha256 of its content, so anyone holding the folder could
confirm that a file they know is backed up; and the key sat in `<storage>/blob.key`, beside the
blobs it protects. Now names are HMAC-SHA256 under a key derived from the blob key, the key can
come from an environment variable or a file elsewhere, and stores written with the old names are
read as they are and renamed by the next backup.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner
from test_backup_e2e import PASSWORD_ENV, SECRET_ENV, config_text
from test_config_hostile import BASE

from replicator.backup.run import BackupRequest, run_backup
from replicator.check import CheckRequest, check
from replicator.cli import cli
from replicator.config import load_config
from replicator.store.blobs import BlobCorrupt, BlobKeyError, BlobStore, load_key
from replicator.store.layout import Layout
from replicator.store.repository import Repository
from replicator.store.snapshot import SnapshotStore

KEY = bytes(range(32))
KNOWN = b"a contract the attacker already holds " * 100


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts)


def to_old_names(store: BlobStore, shas: list[str]) -> None:
    """Rename blobs to <root>/ab/cd/<sha256>, as stores written before keyed names hold them."""
    for sha in shas:
        old = store.root / sha[:2] / sha[2:4] / sha
        old.parent.mkdir(parents=True, exist_ok=True)
        os.replace(store.path(sha), old)
    for folder in sorted((p for p in store.root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def test_blob_file_names_do_not_reveal_the_content_hash(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", KEY)
    sha = store.put(KNOWN)
    assert sha == hashlib.sha256(KNOWN).hexdigest()
    [only] = blob_files(store.root)
    relative = str(only.relative_to(store.root))
    assert sha not in relative and sha[:4] not in relative.replace("/", "")[:4]
    assert only.name.endswith(".blob") and len(only.name) == 64 + len(".blob")
    # the name depends on the key: the same content under another key is named otherwise
    other = BlobStore(tmp_path / "other", bytes(32))
    other.put(KNOWN)
    assert blob_files(other.root)[0].name != only.name
    assert store.get(sha) == KNOWN and store.has(sha)


def test_a_store_with_old_names_is_read_as_it_is_and_migrated_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", KEY)
    shas = [store.put(KNOWN), store.put(b"second file"), store.put(os.urandom(3 << 20))]
    to_old_names(store, shas)
    assert sorted(p.name for p in blob_files(store.root)) == sorted(shas)
    before = {p: p.stat().st_mtime_ns for p in blob_files(store.root)}
    reader = BlobStore(tmp_path / "blobs", KEY)
    assert all(reader.has(sha) and reader.verify(sha) for sha in shas)
    assert reader.get(shas[0]) == KNOWN
    assert reader.write(KNOWN).new is False  # dedup sees the old name too
    assert {p: p.stat().st_mtime_ns for p in blob_files(store.root)} == before  # reading renamed nothing

    assert reader.migrate_names() == 3
    names = blob_files(store.root)
    assert len(names) == 3 and all(p.name.endswith(".blob") for p in names)
    assert not any(sha[:2] == p.parent.parent.name and sha[2:4] == p.parent.name
                   for sha in shas for p in names)  # old fan-out folders removed with their names
    assert [reader.get(sha) for sha in shas[:2]] == [KNOWN, b"second file"]
    assert reader.migrate_names() == 0
    assert reader.usage().blobs == 3


def test_an_interrupted_migration_is_finished_by_the_next_one(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", KEY)
    shas = [store.put(bytes([n]) * 1000) for n in range(5)]
    to_old_names(store, shas)
    first = store.root / shas[0][:2] / shas[0][2:4] / shas[0]
    store.path(shas[0]).parent.mkdir(parents=True)
    os.replace(first, store.path(shas[0]))  # one blob renamed, then the process died
    assert store.migrate_names() == 4
    assert all(store.verify(sha) for sha in shas) and store.usage().blobs == 5


def test_delete_removes_the_blob_under_either_name(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", KEY)
    sha = store.put(KNOWN)
    to_old_names(store, [sha])
    assert store.delete(sha) and not store.has(sha) and blob_files(store.root) == []


def test_a_blob_is_read_verified_and_deleted_by_its_id(tmp_path: Path) -> None:
    """The id (what body columns hold) is the keyed name: it finds the blob, and the content must still
    hash to it, so a blob file swapped for another one of the store is caught."""
    store = BlobStore(tmp_path / "blobs", KEY)
    stored, other = store.write(KNOWN), store.write(b"another file of the store")
    assert stored.blob_id != stored.sha256 and store.is_id(stored.blob_id) and not store.is_id(stored.sha256)
    assert store.get(stored.blob_id) == KNOWN == store.get(stored.sha256)  # an old store's sha256 too
    path = store.file_of(stored.blob_id)
    assert path is not None and path.name == f"{stored.blob_id}.blob"
    assert store.verify(stored.blob_id) and store.size(stored.blob_id) == len(KNOWN)
    other_path = store.file_of(other.blob_id)
    assert other_path is not None
    path.write_bytes(other_path.read_bytes())
    assert not store.verify(stored.blob_id)
    assert store.delete(stored.blob_id) and not store.has(stored.blob_id) and not store.has(stored.sha256)
    assert BlobStore(tmp_path / "plain", None).write(KNOWN).blob_id == stored.sha256  # keyless: id = sha256


def test_the_wrong_key_is_named_not_reported_as_missing(tmp_path: Path) -> None:
    sha = BlobStore(tmp_path / "blobs", KEY).put(KNOWN)
    with pytest.raises(BlobCorrupt, match="encrypted with a different key"):
        BlobStore(tmp_path / "blobs", bytes(32)).get(sha)


# --- where the key comes from -------------------------------------------------------------------------


def test_a_key_file_elsewhere_is_used_and_never_created(tmp_path: Path) -> None:
    storage, key_file = tmp_path / "store", tmp_path / "secrets" / "blob.key"
    with pytest.raises(BlobKeyError, match=r"blob key file .* \(storage.blob_key_file\) does not exist; "
                                           r"create one with"):
        load_key(storage, None, {}, key_file=key_file)
    assert not key_file.exists() and not storage.exists()
    key_file.parent.mkdir()
    key_file.write_text(base64.b64encode(KEY).decode() + "\n")
    key_file.chmod(0o600)
    assert load_key(storage, None, {}, key_file=key_file) == KEY
    assert not Layout(storage).blob_key.exists()
    with pytest.raises(BlobKeyError, match=r"blob_key_env or by storage\.blob_key_file, not both"):
        load_key(storage, "BLOB_KEY", {"BLOB_KEY": KEY.hex()}, key_file=key_file)


def test_a_read_only_listing_never_creates_a_key(tmp_path: Path) -> None:
    listing = Repository(tmp_path / "store").blob_listing(environ={})
    assert not listing.encrypted and not Layout(tmp_path / "store").blob_key.exists()


def test_the_configured_key_reaches_the_listing_that_checks_and_erases(tmp_path: Path) -> None:
    """`check` asks the listing which blobs exist and GDPR erasure deletes through it: with keyed
    names it must use the configured key, or it would find none and erase none."""
    repository, environ = Repository(tmp_path / "store", blob_key_env="BK"), {"BK": KEY.hex()}
    sha = repository.blobs(environ).put(KNOWN)
    listing = repository.blob_listing(environ)
    assert listing.has(sha) and listing.delete(sha) and not repository.blobs(environ).has(sha)
    assert not Layout(tmp_path / "store").blob_key.exists()


def test_config_check_names_a_missing_key_file_and_touches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BASE.replace('path = "var"', 'path = "var"\nblob_key_file = "keys/blob.key"'))
    before = sorted(tmp_path.rglob("*"))
    done = CliRunner().invoke(cli, ["--config", str(path), "config", "check"], catch_exceptions=False)
    assert done.exit_code != 0 and "Traceback" not in done.output
    assert done.output.strip() == (f"Error: {path}: storage.blob_key_file: {tmp_path / 'keys' / 'blob.key'} "
                                   "does not exist")
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("storage, words", [
    ('blob_key_env = "REPLICATOR_HOSTILE_UNSET_KEY"',
     "environment variable REPLICATOR_HOSTILE_UNSET_KEY (storage.blob_key_env) is not set or empty"),
    ('blob_key_env = "REPLICATOR_HOSTILE_SHORT_KEY"',
     "environment variable REPLICATOR_HOSTILE_SHORT_KEY: a blob key must be 32 bytes"),
    ('blob_key_file = "nowhere/blob.key"', "(storage.blob_key_file) does not exist; create one with"),
], ids=["unset variable", "short key", "missing file"])
def test_a_backup_with_a_bad_blob_key_is_one_line_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: str, words: str) -> None:
    monkeypatch.delenv("REPLICATOR_HOSTILE_UNSET_KEY", raising=False)
    monkeypatch.setenv("REPLICATOR_HOSTILE_SHORT_KEY", base64.b64encode(b"short").decode())
    path = tmp_path / "config.toml"
    path.write_text(BASE.replace('path = "var"', f'path = "var"\n{storage}'))
    before = sorted(tmp_path.rglob("*"))
    done = CliRunner().invoke(cli, ["--config", str(path), "backup", "run"], catch_exceptions=False)
    assert done.exit_code != 0 and "Traceback" not in done.output
    assert len(done.output.strip().splitlines()) == 1 and words in done.output
    assert base64.b64encode(b"short").decode() not in done.output  # the value is never echoed
    assert sorted(tmp_path.rglob("*")) == before


# --- against real backups of the emulator --------------------------------------------------------------

JOB_OBJECTS = ["Account", "ContentVersion", "Attachment", "Document"]


@pytest.fixture
def job(emulator: Any, tmp_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PASSWORD_ENV, emulator.password)
    monkeypatch.setenv(SECRET_ENV, emulator.client_secret)
    key_file = tmp_config(base64.b64encode(KEY).decode(), name="blob.key")  # beside the config, not the store
    key_file.chmod(0o600)
    text = config_text(emulator, selection=f"include = {json.dumps(JOB_OBJECTS)}")
    return tmp_config(text.replace('path = "store"', 'path = "store"\n    blob_key_file = "blob.key"'))


def test_a_backup_keys_its_blob_names_and_ids_and_migrates_an_old_store(job: Path) -> None:
    config = load_config(job)
    store_dir = job.parent / "store"
    first = run_backup(config, BackupRequest("daily"))
    assert first.status == "completed", first.message
    assert not Layout(store_dir).blob_key.exists()  # the key stays where the config says
    blobs = Repository.for_storage(config.storage).blobs()
    files = blob_files(blobs.root)
    assert files and all(p.name.endswith(".blob") for p in files)

    ids = body_refs(store_dir)  # the store names each body by its keyed blob id, not its sha256
    assert len(ids) == len(files) and all(blobs.is_id(i) for i in ids)
    shas = {i: hashlib.sha256(blobs.get(i)).hexdigest() for i in ids}
    assert not set(shas.values()) & set(ids)
    to_old_store(store_dir, blobs, shas)  # the store as the previous version wrote it
    assert body_refs(store_dir) == sorted(shas.values())
    database = store_dir / "snapshot.duckdb"
    assert all(sha.encode() in database.read_bytes() for sha in shas.values())  # what a byte search finds
    assert check(config, CheckRequest(read_blobs=True)).problems == []  # read as it is

    second = run_backup(config, BackupRequest("daily"))
    assert second.status == "completed", second.message
    renamed = blob_files(blobs.root)
    assert len(renamed) == len(files) and all(p.name.endswith(".blob") for p in renamed)
    assert body_refs(store_dir) == ids  # the body columns rewritten, in a fresh file: no sha256 is left
    assert not [sha for sha in shas.values() if sha.encode() in database.read_bytes()]
    assert check(config, CheckRequest(read_blobs=True)).problems == []
    third = run_backup(config, BackupRequest("daily", full=True))  # once: the store is not rewritten again
    assert third.status == "completed" and body_refs(store_dir) == ids


BODY_COLUMNS = {"ContentVersion": "VersionData", "Attachment": "Body", "Document": "Body"}


def body_refs(store_dir: Path) -> list[str]:
    """Every file body the snapshot store references, as its body columns name them."""
    store = SnapshotStore(store_dir / "snapshot.duckdb", read_only=True)
    try:
        union = " UNION ".join(f'SELECT "{col}" FROM hist."{obj}" WHERE "{col}" IS NOT NULL'
                               for obj, col in BODY_COLUMNS.items())
        table = store.reads.sql(f"SELECT * FROM ({union}) ORDER BY 1", None)
    finally:
        store.close()
    return table.column(0).to_pylist()


def to_old_store(store_dir: Path, blobs: BlobStore, shas: dict[str, str]) -> None:
    """Blob files under their plain sha256 names and body columns holding the sha256s, as stores
    written before keyed names and ids hold them."""
    to_old_names(blobs, list(shas.values()))
    with duckdb.connect(str(store_dir / "snapshot.duckdb")) as con:
        con.register("ids", pa.table({"id": list(shas), "sha": list(shas.values())}))
        for obj, col in BODY_COLUMNS.items():
            con.execute(f'UPDATE hist."{obj}" t SET "{col}" = ids.sha FROM ids WHERE t."{col}" = ids.id')
        con.execute("DELETE FROM main.store_info WHERE key = 'body_refs'")
