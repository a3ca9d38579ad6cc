"""Encryption at rest: with a key the snapshot store is an AES-GCM DuckDB file holding no plain field
value; without the key, or with a wrong one, nothing opens (one line, nothing changed); `store
encrypt` and `store rotate-key` convert an existing store atomically."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from test_backup_cli import assert_sql_reaches_only_the_store
from test_backup_e2e import SECRET_ENV, config_text

from replicator.cli import cli
from replicator.store import encryption
from replicator.store.repository import Repository

KEY_ENV = "REPLICATOR_TEST_STORE_KEY"
NEW_KEY_ENV = "REPLICATOR_TEST_NEW_KEY"
KEY = "k" * 20 + "3Xb9vQ2mL8pR4tW6yZ1aC5eG7hJ0"  # 48 characters
NEW_KEY = "n" * 16 + "Q2mL8pR4tW6yZ1aC5eG7hJ0k3Xb9v"


def invoke(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def keyed(text: str, line: str = f'encryption_key_env = "{KEY_ENV}"') -> str:
    return text.replace('path = "store"', f'path = "store"\n    {line}', 1)


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("REPLICATOR_E2E_PASSWORD", emulator.password)
    monkeypatch.setenv(SECRET_ENV, emulator.client_secret)
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(NEW_KEY_ENV, NEW_KEY)
    return emulator


@pytest.fixture
def plain_store(env: Any, tmp_config: Callable[..., Path]) -> Path:
    """A plain store backed up from the emulator (Account and Contact)."""
    config = tmp_config(config_text(env))
    done = invoke(config, "backup", "run", "--objects", "Account,Contact", "--json")
    assert done.exit_code == 0, done.output
    return config


def values(config: Path) -> list[str]:
    """Distinctive field values of the store (names, emails, phones) read through the product."""
    query = ('SELECT "Name" AS v FROM "Account" UNION ALL SELECT "Email" FROM "Contact" '
             'UNION ALL SELECT "Phone" FROM "Contact"')
    rows = json.loads(invoke(config, "sql", query, "--json").output)
    return sorted({r["v"] for r in rows if r["v"] and len(r["v"]) >= 10})


def found(folder: Path, wanted: list[str]) -> list[str]:
    """The values whose bytes appear in any file of the store (the audit log aside: it holds none)."""
    blobs = [p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "audit.jsonl"
             and "blobs" not in p.parts]
    return [v for v in wanted if any(v.encode() in b for b in blobs)]


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file() and p.name not in ("audit.jsonl", "audit.head", "backup.lock")}


def one_line_error(result: Any, words: str) -> None:
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert result.output.strip().count("\n") == 0 and words in result.output, result.output


def test_a_keyed_backup_leaves_no_plain_value_and_still_answers(env: Any, tmp_config: Callable[..., Path],
                                                               plain_store: Path) -> None:
    known = values(plain_store)
    assert len(known) > 20 and found(plain_store.parent / "store", known)  # the search sees plain values
    (plain_store.parent / "other").mkdir()
    config = tmp_config(keyed(config_text(env)), name="other/config.toml")
    # file bodies too: the files step, like every step of a run, reads the encrypted staging
    done = invoke(config, "backup", "run", "--objects", "Account,Contact,ContentVersion,Attachment", "--json")
    assert done.exit_code == 0 and json.loads(done.output)["status"] == "completed", done.output
    store = config.parent / "store"
    assert encryption.is_encrypted(store / "snapshot.duckdb")
    assert values(config) == known  # reads, analysts' sealed SQL included, go through the key
    assert found(store, known) == []
    # --full: every record id reconciled with the org (the staging-side exactness queries)
    again = invoke(config, "backup", "run", "--objects", "Account,Contact,ContentVersion,Attachment",
                   "--full", "--json")
    assert again.exit_code == 0 and json.loads(again.output)["status"] == "completed", again.output
    assert found(store, known) == []
    some = json.loads(invoke(config, "sql", 'SELECT "Id" FROM "Account" LIMIT 1', "--json").output)[0]["Id"]
    history = invoke(config, "history", "Account", some, "--json")
    assert history.exit_code == 0 and json.loads(history.output)
    checked = invoke(config, "check", "--json")
    assert checked.exit_code == 0 and json.loads(checked.output)["problems"] == []
    assert_sql_reaches_only_the_store(config)  # the key opens the store, and nothing else


def test_no_key_or_a_wrong_key_refuses_and_changes_nothing(env: Any, plain_store: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    text = plain_store.read_text()
    plain_store.write_text(keyed(text))
    one_line_error(invoke(plain_store, "runs"), "is not encrypted: encrypt it")
    assert invoke(plain_store, "store", "encrypt").exit_code == 0
    store = plain_store.parent / "store"
    before = files_of(store)

    plain_store.write_text(text)  # the key left out of the config
    for args in (("runs",), ("sql", "SELECT 1"), ("backup", "run", "--objects", "Account"), ("check",)):
        one_line_error(invoke(plain_store, *args), "is encrypted and no key is configured")
    plain_store.write_text(keyed(text))
    monkeypatch.setenv(KEY_ENV, NEW_KEY)  # a wrong key
    for args in (("runs",), ("backup", "run", "--objects", "Account"), ("store", "encrypt")):
        result = invoke(plain_store, *args)
        assert "wrong key" in result.output or "already encrypted" in result.output, result.output
        one_line_error(result, "")
    monkeypatch.setenv(KEY_ENV, "too short")
    one_line_error(invoke(plain_store, "runs"), "at least 32 characters")
    monkeypatch.delenv(KEY_ENV)
    one_line_error(invoke(plain_store, "runs"), f"environment variable {KEY_ENV} is not set")
    assert files_of(store) == before
    monkeypatch.setenv(KEY_ENV, KEY)
    assert invoke(plain_store, "runs").exit_code == 0


def test_encrypt_then_rotate_the_key(env: Any, plain_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = plain_store.parent / "store"
    known = values(plain_store)
    text = plain_store.read_text()
    one_line_error(invoke(plain_store, "store", "encrypt"), "no key is configured")
    plain_store.write_text(keyed(text))
    Repository(store).blobs()  # as a backup of file bodies does: the generated key lands in the folder
    done = invoke(plain_store, "store", "encrypt", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["encrypted"] is True
    # the file bodies' generated key lies in the folder: the person is told to move it
    assert f"{store / 'blob.key'}, inside the folder" in json.loads(done.output)["next_step"]
    assert found(store, known) == [] and values(plain_store) == known
    assert not list(store.glob("snapshot.duckdb.*"))  # no copy left beside it
    one_line_error(invoke(plain_store, "store", "encrypt"), "already encrypted")

    before = files_of(store)
    one_line_error(invoke(plain_store, "store", "rotate-key", "--new-key-env", KEY_ENV), "is the current key")
    monkeypatch.setenv("SHORT_KEY", "short")
    one_line_error(invoke(plain_store, "store", "rotate-key", "--new-key-env", "SHORT_KEY"),
                   "at least 32 characters")
    one_line_error(invoke(plain_store, "store", "rotate-key"), "exactly one of")
    assert files_of(store) == before

    rotated = invoke(plain_store, "store", "rotate-key", "--new-key-env", NEW_KEY_ENV)
    assert rotated.exit_code == 0 and NEW_KEY_ENV in rotated.output, rotated.output
    one_line_error(invoke(plain_store, "runs"), "wrong key")
    plain_store.write_text(keyed(text, f'encryption_key_env = "{NEW_KEY_ENV}"'))
    assert values(plain_store) == known and found(store, known) == []
    events = json.loads(invoke(plain_store, "audit", "--json").output)
    rotation = next(e for e in events if e["key"] == "store.rotate-key")
    assert rotation["parameters"]["new_key_env"] == NEW_KEY_ENV
    audit_text = (store / "audit.jsonl").read_text()
    assert KEY not in audit_text and NEW_KEY not in audit_text


def test_a_key_file_is_private_and_outside_the_store(env: Any, plain_store: Path) -> None:
    text = plain_store.read_text()
    key_file = plain_store.parent / "store.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o644)
    plain_store.write_text(keyed(text, f'encryption_key_file = "{key_file}"'))
    one_line_error(invoke(plain_store, "runs"), "chmod 600")
    key_file.chmod(0o600)
    assert invoke(plain_store, "store", "encrypt").exit_code == 0
    assert invoke(plain_store, "runs").exit_code == 0
    inside = plain_store.parent / "store" / "my.key"
    shutil.copy(key_file, inside)
    plain_store.write_text(keyed(text, f'encryption_key_file = "{inside}"'))
    one_line_error(invoke(plain_store, "runs"), "inside the storage folder")
    plain_store.write_text(keyed(text, f'encryption_key = "{KEY}"'))
    one_line_error(invoke(plain_store, "runs"), "may not be written in the config file")
    plain_store.write_text(keyed(keyed(text), f'encryption_key_file = "{key_file}"'))
    one_line_error(invoke(plain_store, "runs"), "not both")


def fill(database: Path, key: str | None = None) -> None:
    """A 3,000,000-row table in the store, so that re-writing it takes a while (kills land mid-way)."""
    with duckdb.connect() as con:
        if key:
            encryption.load_httpfs(con)
        con.execute(f"ATTACH '{database}' AS s" + (f" (ENCRYPTION_KEY '{key}')" if key else ""))
        con.execute("CREATE TABLE s.main.filler AS SELECT range AS n, md5(range::VARCHAR) AS s "
                    "FROM range(3000000)")


def kill_while_rewriting(config: Path, *args: str, delay: float = 0.0) -> bool:
    """Run `replicator ARGS` and SIGKILL it `delay` seconds after it starts writing the re-keyed copy;
    True when the kill landed while it was still writing (the process had not finished)."""
    cli_main = "from replicator.cli import main; main()"
    proc = subprocess.Popen([sys.executable, "-c", cli_main, "--config", str(config), *args],
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rekey = config.parent / "store" / "snapshot.duckdb.rekey"
    deadline = time.monotonic() + 60
    while not rekey.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # until the copy under the new key is being written
    time.sleep(delay)
    mid_way = rekey.exists() and proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return mid_way


def filler_rows(config: Path) -> Any:
    done = invoke(config, "sql", "SELECT count(*) AS n FROM main.filler", "--json")
    return json.loads(done.output) if done.exit_code == 0 else done.output


def test_a_killed_encrypt_leaves_the_old_store_or_the_new_one(env: Any, plain_store: Path) -> None:
    """SIGKILL at several moments of `store encrypt` while it writes the encrypted copy (and once
    most likely after it swapped), on a store made big enough to take a while."""
    fill(plain_store.parent / "store" / "snapshot.duckdb")
    plain_store.write_text(keyed(plain_store.read_text()))
    outcomes, killed_mid_way = set(), 0
    for delay in (0.0, 0.3, 0.8, 5.0):
        copy = plain_store.parent / f"copy{delay}"
        shutil.copytree(plain_store.parent / "store", copy / "store")
        config = copy / "config.toml"
        config.write_text(plain_store.read_text())
        killed_mid_way += kill_while_rewriting(config, "store", "encrypt", delay=delay)
        path = copy / "store" / "snapshot.duckdb"
        outcomes.add(encrypted := encryption.is_encrypted(path))
        if not encrypted:  # the old file, whole: it still opens plain and then encrypts
            with duckdb.connect(str(path), read_only=True) as con:
                assert con.execute("SELECT count(*) FROM main.filler").fetchone()[0] == 3000000
            assert invoke(config, "store", "encrypt").exit_code == 0
        assert filler_rows(config) == [{"n": 3000000}]
        assert not list((copy / "store").glob("snapshot.duckdb.*"))
    assert killed_mid_way >= 2 and False in outcomes, (killed_mid_way, outcomes)  # kills landed mid-way


def test_decrypt_leaves_encryption_and_refuses_bad_requests(env: Any, plain_store: Path) -> None:
    store = plain_store.parent / "store"
    known = values(plain_store)
    text = plain_store.read_text()
    one_line_error(invoke(plain_store, "store", "decrypt"), "no key is configured")
    plain_store.write_text(keyed(text))
    one_line_error(invoke(plain_store, "store", "decrypt"), "is not encrypted")
    assert invoke(plain_store, "store", "encrypt").exit_code == 0
    before = files_of(store)
    plain_store.write_text(keyed(text, f'encryption_key_env = "{NEW_KEY_ENV}"'))
    one_line_error(invoke(plain_store, "store", "decrypt"), "wrong key")
    assert files_of(store) == before

    plain_store.write_text(keyed(text))
    (store / "snapshot.duckdb.rewrite").write_bytes(b"what a killed GDPR rewrite left, under the old key")
    done = invoke(plain_store, "store", "decrypt", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["encrypted"] is False and "remove" in json.loads(done.output)["next_step"]
    assert not encryption.is_encrypted(store / "snapshot.duckdb")
    assert not list(store.glob("snapshot.duckdb.*"))
    one_line_error(invoke(plain_store, "runs"), "if it was decrypted, remove")  # the key must go
    plain_store.write_text(text)
    assert values(plain_store) == known and sorted(found(store, known)) == known  # plain again
    assert invoke(plain_store, "check").exit_code == 0


@pytest.mark.parametrize("command", [("store", "rotate-key", "--new-key-env", NEW_KEY_ENV),
                                     ("store", "decrypt")])
def test_a_killed_rotation_or_decrypt_leaves_the_old_store_openable(env: Any, plain_store: Path,
                                                                    command: tuple[str, ...]) -> None:
    """Killed while it writes the copy under the new key (or none): the old store opens with the old
    key, `check` names the half-written copy, and the command run again finishes the job."""
    plain_store.write_text(keyed(plain_store.read_text()))
    assert invoke(plain_store, "store", "encrypt").exit_code == 0
    store = plain_store.parent / "store"
    fill(store / "snapshot.duckdb", KEY)
    assert kill_while_rewriting(plain_store, *command)
    assert encryption.is_encrypted(store / "snapshot.duckdb")
    assert filler_rows(plain_store) == [{"n": 3000000}]  # the old store, under the old key
    checked = json.loads(invoke(plain_store, "check", "--json").output)["problems"]
    assert any("snapshot.duckdb.rekey was left behind by a killed rewrite" in p for p in checked), checked
    assert invoke(plain_store, *command).exit_code == 0
    assert not list(store.glob("snapshot.duckdb.*"))
    if command[1] == "decrypt":
        plain_store.write_text(plain_store.read_text().replace(f'encryption_key_env = "{KEY_ENV}"', ""))
        assert not encryption.is_encrypted(store / "snapshot.duckdb")
    else:
        plain_store.write_text(plain_store.read_text().replace(KEY_ENV, NEW_KEY_ENV))
    assert filler_rows(plain_store) == [{"n": 3000000}]  # the new store, under its new key (or none)


def test_compaction_keeps_the_key_and_a_writer_blocks_re_keying(env: Any, plain_store: Path) -> None:
    from replicator.config import load_config

    plain_store.write_text(keyed(plain_store.read_text()))
    assert invoke(plain_store, "store", "encrypt").exit_code == 0
    known = values(plain_store)
    repository = Repository.for_storage(load_config(plain_store).storage)
    store = repository.open_write("test")
    try:
        store.versions.compact()  # what retention pruning and a GDPR forget rewrite the file with
        before = files_of(plain_store.parent / "store")
        one_line_error(invoke(plain_store, "store", "rotate-key", "--new-key-env", NEW_KEY_ENV), "test")
        assert files_of(plain_store.parent / "store") == before
    finally:
        store.close()
    database = plain_store.parent / "store" / "snapshot.duckdb"
    assert encryption.is_encrypted(database) and not list(database.parent.glob("snapshot.duckdb.*"))
    assert values(plain_store) == known and found(plain_store.parent / "store", known) == []


def test_a_gdpr_forget_keeps_an_encrypted_store_encrypted(env: Any, tmp_config: Callable[..., Path]) -> None:
    """The forget rewrites the database file into a fresh one: that file is encrypted under the
    same key, the subject is gone and every other record still answers."""
    config = tmp_config(keyed(config_text(env)))
    done = invoke(config, "backup", "run", "--objects", "Account,Contact", "--json")
    assert done.exit_code == 0, done.output
    known = values(config)
    rows = json.loads(invoke(config, "sql", 'SELECT "Id", "Email", "Phone" FROM "Contact" '
                             'WHERE "Email" IS NOT NULL ORDER BY "Id" LIMIT 1', "--json").output)
    subject, email, phone = rows[0]["Id"], rows[0]["Email"], rows[0]["Phone"]
    forgot = invoke(config, "gdpr", "forget", "--object", "Contact", "--id", subject, "--json")
    assert forgot.exit_code == 0, forgot.output
    store = config.parent / "store"
    assert encryption.is_encrypted(store / "snapshot.duckdb")
    assert found(store, known) == []
    left = values(config)
    assert email not in left and set(left) == set(known) - {email, phone}


def test_a_keyed_runs_staging_is_encrypted_too(env: Any, tmp_path: Path) -> None:
    """dlt stages through a connection of ours into the encrypted file (REST and Bulk objects),
    stage_ids appends to it, and nothing of the rows is readable in its bytes."""
    from datetime import UTC, datetime

    from test_source_salesforce import OBJECTS, THRESHOLD

    from replicator.config import ObjectSelection, OrgSettings, PasswordAuth, Secret
    from replicator.salesforce.catalog import plan_org
    from replicator.salesforce.client import OrgClient
    from replicator.sources.salesforce import STAGING_DATASET, connect_staging, extract, stage_ids

    auth = PasswordAuth(username=env.username, password=Secret("P", env.password), client_id=env.client_id,
                        client_secret=Secret("S", env.client_secret))
    client = OrgClient(OrgSettings(name="emu", login_url=env.base_url, api_version="62.0", auth=auth,
                                   ca_bundle=Path(env.ca_path)), backoff_seconds=0.01)
    plans = [p for p in plan_org(client, ObjectSelection(include=OBJECTS, recommended=False), THRESHOLD)
             if p.included]
    methods = {p.method for p in plans}
    key = Secret(KEY_ENV, KEY)
    staging = tmp_path / "run" / "staging.duckdb"
    sections = extract(client, plans, {}, staging, run_ts=datetime.now(UTC), key=key)
    assert {s.status for s in sections} == {"ok"} and len(methods) > 1
    account = next(p for p in plans if p.name == "Account")
    ids = [r["Id"] for page in client.query_pages("SELECT Id FROM Account LIMIT 3") for r in page]
    assert stage_ids(client, account, ids, staging, key) == 3
    assert encryption.is_encrypted(staging) and not (tmp_path / "run" / "dlt").exists()
    with connect_staging(staging, key) as con:
        names = [r[0] for r in con.execute(
            f'SELECT "Name" FROM {STAGING_DATASET}."Account" WHERE length("Name") >= 10').fetchall()]
        contacts = con.execute(f'SELECT count(*) FROM {STAGING_DATASET}."Contact"').fetchone()[0]
    assert len(names) > 20 and contacts > 20
    assert found(tmp_path / "run", names) == []
    with pytest.raises(encryption.EncryptionProblem) as refused:
        connect_staging(staging)
    assert "no key is configured" in str(refused.value)
