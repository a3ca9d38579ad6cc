"""`replicator check` against stores written by real backups of the emulator: it passes on a healthy
store without changing a byte, and names the problem when a test breaks one invariant of a copy."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from test_backup_e2e import PASSWORD_ENV, SECRET_ENV, config_text, near_minute_end

from replicator.backup.run import BackupRequest, run_backup
from replicator.check import CheckRequest, CheckResult, check
from replicator.cli import cli
from replicator.config import load_config
from replicator.errors import Locked
from replicator.store.layout import Layout
from replicator.store.lock import writer_lock
from replicator.store.repository import Repository


@pytest.fixture(scope="module")
def backed_up(emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A storage folder after two real backups (a day of churn between them); tests check copies."""
    folder = tmp_path_factory.mktemp("checked")
    config = folder / "config.toml"
    config.write_text(config_text(emulator, wait=True))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(PASSWORD_ENV, emulator.password)
        env.setenv(SECRET_ENV, emulator.client_secret)
        try:
            for day in (0, 1):
                if day:
                    emulator.control("POST", "churn", {"days": 1})
                    near_minute_end(emulator)  # the incremental run's wait for the change log: seconds
                assert run_backup(load_config(config), BackupRequest("daily")).status == "completed"
            yield folder / "store"
        finally:
            emulator.control("POST", "reset", {})


@pytest.fixture
def copy(backed_up: Path, tmp_path: Path, emulator: Any) -> Path:
    """A config over a private copy of the backed-up store (its folder is `<config>/../store`)."""
    shutil.copytree(backed_up, tmp_path / "store")
    config = tmp_path / "config.toml"
    config.write_text(config_text(emulator, wait=True))
    return config


def checked(config: Path, read_blobs: bool = False) -> CheckResult:
    return check(load_config(config), CheckRequest(read_blobs=read_blobs))


def corrupt(config: Path, sql: str) -> None:
    """Write into the copied store behind the product's back (what a bug or a bad restore could do)."""
    with duckdb.connect(str(Layout(config.parent / "store").database)) as con:
        con.execute(sql)


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file but the audit log and its head (they record the check itself: replicator/audit.py)."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file() and p.name not in ("audit.jsonl", "audit.head")}


def test_a_healthy_store_passes_and_is_left_unchanged(copy: Path) -> None:
    before = files_of(copy.parent / "store")
    result = checked(copy, read_blobs=True)
    assert result.problems == [] and result.exit_code == 0
    assert result.objects >= 6 and result.versions > 0 and result.runs == 2
    assert result.blobs > 0 and result.blobs_read == result.blobs
    assert result.text().startswith("no problems found (")
    done = CliRunner().invoke(cli, ["--config", str(copy), "check", "--read-blobs", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["problems"] == [] and json.loads(done.output)["blobs_read"] > 0
    assert files_of(copy.parent / "store") == before


def test_an_overlapping_version_is_named(copy: Path) -> None:
    corrupt(copy, 'INSERT INTO hist."Account" '
                  'SELECT * REPLACE (_valid_from - INTERVAL 1 HOUR AS _valid_from) FROM hist."Account" '
                  'WHERE _valid_to IS NULL AND NOT _deleted ORDER BY "Id" LIMIT 1')
    result = checked(copy)
    assert result.exit_code == 1
    assert any(p.startswith("Account ") and "overlaps the next version" in p for p in result.problems)
    assert any(p.startswith("Account ") and "2 current versions (exactly one expected)" in p
               for p in result.problems)
    done = CliRunner().invoke(cli, ["--config", str(copy), "check"])
    assert done.exit_code == 1 and "problems found" in done.output and "overlaps" in done.output


def test_a_missing_blob_is_named(copy: Path) -> None:
    with duckdb.connect(str(Layout(copy.parent / "store").database), read_only=True) as con:
        sha = con.execute('SELECT min("VersionData") FROM hist."ContentVersion"').fetchone()[0]
    Repository(copy.parent / "store").blobs().file_of(sha).unlink()
    assert f"ContentVersion: blob {sha} is referenced but missing" in checked(copy).problems


def test_a_blob_that_no_longer_decrypts_fails_only_when_blobs_are_read(copy: Path) -> None:
    with duckdb.connect(str(Layout(copy.parent / "store").database), read_only=True) as con:
        sha = con.execute('SELECT min("VersionData") FROM hist."ContentVersion"').fetchone()[0]
    path = Repository(copy.parent / "store").blobs().file_of(sha)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert checked(copy).problems == []
    assert f"ContentVersion: blob {sha} does not decrypt or match its sha256" in checked(copy, True).problems


def test_a_dangling_run_id_is_named(copy: Path) -> None:
    corrupt(copy, 'UPDATE hist."Contact" SET _run_id = 99 '
                  'WHERE "Id" = (SELECT min("Id") FROM hist."Contact")')
    assert any(p.startswith("Contact: ") and "run 99, which is not in the run ledger" in p
               for p in checked(copy).problems)


def test_open_ledger_rows_and_leftover_run_folders_are_named(copy: Path) -> None:
    corrupt(copy, "UPDATE main.runs SET status = 'running' WHERE run_id = 2")
    (copy.parent / "store" / "runs" / "3").mkdir(parents=True)
    problems = checked(copy).problems
    assert any(p.startswith("run 2 (job daily") and "still 'running'" in p for p in problems)
    assert any(p.startswith("run folder ") and p.endswith("(it holds raw records)") for p in problems)
    assert any("versions written by run 2, which is running, not committed" in p for p in problems)


def test_check_refuses_while_a_writer_holds_the_store(copy: Path) -> None:
    with writer_lock(Layout(copy.parent / "store"), "backup", "daily"), pytest.raises(Locked, match="backup"):
        checked(copy)


def test_an_edited_audit_event_is_named_by_check(copy: Path) -> None:
    """One command proves the store whole: the audit chain is verified with the data, and the first
    event that was altered is named."""
    for _ in range(3):  # each command through the CLI appends one event
        assert CliRunner().invoke(cli, ["--config", str(copy), "check"]).exit_code == 0
    result = checked(copy)
    assert result.problems == [] and result.audit_events == 3 and "3 audit events" in result.text()
    log = Layout(copy.parent / "store").audit
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    events[1]["user_email"] = "someone-else@example.org"
    log.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    assert checked(copy).problems == [
        "audit log audit.jsonl broken at event 2: event 2 was altered (its content does not match its hash)"]
    done = CliRunner().invoke(cli, ["--config", str(copy), "check"])
    assert done.exit_code == 1 and "broken at event 2" in done.output
