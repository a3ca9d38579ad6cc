"""End-to-end backups against the running emulator over HTTPS: the store must equal the org's ground truth.

Each test that changes the org (churn, faults, limits) resets it afterwards. Comparisons use the
control API's dump (every stored field, recycle bin included) taken right after a run, against the
store's `<Object>_as_of(run)` macro: the backup must show exactly the live records with the same
SystemModstamp, for several objects including a custom one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from replicator.backup.run import BackupRequest, RunInProgress, run_backup
from replicator.config import load_config
from replicator.store.layout import Layout
from replicator.store.lock import writer_lock
from replicator.store.snapshot import SnapshotStore

OBJECTS = ("Account", "Contact", "Opportunity", "Invoice__c", "Invoice_Line__c", "Case")
# a small job keeps the suite fast: the compared objects plus the three file objects
JOB_OBJECTS = [*OBJECTS, "ContentVersion", "Attachment", "Document", "Task"]
PASSWORD_ENV = "REPLICATOR_E2E_PASSWORD"
SECRET_ENV = "REPLICATOR_E2E_SECRET"


def config_text(emulator: Any, *, cap: int = 90, extra_job: str = "", wait: bool = False,
                password_env: str = PASSWORD_ENV, selection: str | None = None) -> str:
    """The test job's config. `wait`: the product's default wait for the org's change log (modules
    that move the emulator's clock near a minute's end first, see near_minute_end); elsewhere it is
    off, or each incremental run would sleep up to a minute."""
    return f"""
    [storage]
    path = "store"

    [orgs.emu]
    login_url = "{emulator.base_url}"
    auth = "password"
    username = "{emulator.username}"
    password_env = "{password_env}"
    client_id = "{emulator.client_id}"
    client_secret_env = "{SECRET_ENV}"
    ca_bundle = "{emulator.ca_path}"

    [jobs.daily]
    org = "emu"
    api_cap_percent = {cap}
    wait_for_change_log = {"true" if wait else "false"}
    {extra_job}

    [jobs.daily.objects]
    {selection or f"include = {json.dumps(JOB_OBJECTS)}"}
    """


_RUNNING: list[Any] = []  # the emulator of the running test, whose clock backup() moves


@pytest.fixture
def org(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The session emulator, restored (data, faults, limits) after the test."""
    monkeypatch.setenv(PASSWORD_ENV, emulator.password)
    monkeypatch.setenv(SECRET_ENV, emulator.client_secret)
    _RUNNING.append(emulator)
    yield emulator
    _RUNNING.remove(emulator)
    emulator.control("PUT", "faults", {})
    emulator.control("POST", "reset", {})


@pytest.fixture
def job(org: Any, tmp_config: Callable[..., Path]) -> Path:
    return tmp_config(config_text(org, wait=True))


def backup(path: Path, **kwargs: Any) -> Any:
    """One run of the job "daily", the emulator's clock first moved near a minute's end (quick runs)."""
    if _RUNNING:
        near_minute_end(_RUNNING[-1])
    return run_backup(load_config(path), BackupRequest("daily", **kwargs))


def near_minute_end(org: Any, lead: float = 4) -> None:
    """Move the emulator's clock forward to `lead` seconds before a minute's end (unless it is there
    already, give or take 6 s), so a run started now waits only seconds for the org's minute-wide
    change log to pass its start (probe.wait_for_change_log) instead of up to a minute. A run in a
    child process needs a longer lead (its start-up)."""
    now = datetime.fromisoformat(org.control("GET", "clock")["now"])
    second = now.second + now.microsecond / 1e6
    if not 54 - lead <= second <= 57 - lead + 4:
        org.control("POST", "clock", {"advance_seconds": (60 - lead - second) % 60})


def live_truth(emulator: Any, obj: str) -> set[tuple[str, str]]:
    """(Id, SystemModstamp) of the org's live records, from the ground-truth dump."""
    url = f"{emulator.control_url}/dump/{obj}"
    text = emulator.http.get(url, params={"deleted": "true"}, timeout=60).text
    rows = csv.DictReader(io.StringIO(text))
    return {(r["Id"], r["SystemModstamp"]) for r in rows if not r["_DeletedAt"]}


def store_state(path: Path, obj: str, run_id: int) -> set[tuple[str, str]]:
    store = SnapshotStore(path.parent / "store" / "snapshot.duckdb", read_only=True)
    table = store.reads.sql(f'SELECT "Id", "SystemModstamp" FROM "{obj}_as_of"({int(run_id)})', None)
    stamps = [s.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
              for s in table.column(1).to_pylist()]
    store.close()
    return set(zip(table.column(0).to_pylist(), stamps, strict=True))


def assert_matches(emulator: Any, path: Path, run_id: int,
                   truths: dict[str, set] | None = None) -> dict[str, set]:
    truths = truths or {obj: live_truth(emulator, obj) for obj in OBJECTS}
    for obj, truth in truths.items():
        held = store_state(path, obj, run_id)
        extra, missing = len(held - truth), len(truth - held)
        assert held == truth, f"{obj} as of run {run_id}: {extra} extra, {missing} missing"
    return truths


def test_full_then_incremental_runs_equal_ground_truth(org: Any, job: Path) -> None:
    first = backup(job)
    assert first.status == "completed", first.message
    truth1 = assert_matches(org, job, first.run_id)
    report = org.control("POST", "churn", {"days": 1, "rates": {"update": 0.05, "delete": 0.02,
                                                               "undelete": 0.5, "insert": 0.01}})
    assert report["reports"][0]["counts"], "churn changed nothing"
    second = backup(job)
    assert second.status == "completed", second.message
    assert_matches(org, job, second.run_id)
    assert_matches(org, job, first.run_id, truth1)  # the past is unchanged
    org.control("POST", "churn", {"days": 1})  # a second day: undeletes of the first day's deletions
    third = backup(job)
    assert third.status == "completed"
    assert_matches(org, job, third.run_id)


def counted_calls(emulator: Any, since_seq: int) -> int:
    """API calls the org counted (DailyApiRequests) since a ledger position; logins do not count."""
    return emulator.control("GET", f"ledger?since={since_seq}")["summary"]["counted"]


def test_nothing_changed_costs_few_calls_and_any_single_change_is_picked_up(
        org: Any, tmp_config: Callable[..., Path]) -> None:
    path = tmp_config(config_text(org, wait=True, selection="recommended = true"))  # every object
    backup(path)
    org.control("POST", "churn", {"days": 1})
    backup(path)  # learns every object's watermark
    seq = org.control("GET", "ledger")["last_seq"]
    quiet = backup(path)
    assert quiet.status == "completed", quiet.message
    assert len(quiet.sections) >= 30
    # FeedComment (no SystemModstamp) too: its COUNT() and newest CreatedDate/LastEditDate are compared
    assert all(s.status == "ok" and s.items == 0 and s.api_calls == 0 for s in quiet.sections)
    # describeGlobal (304) and every object's probes ride in /composite calls, 25 subrequests each
    assert counted_calls(org, seq) <= 5

    sf = org.sf()
    store = job_store(path)

    def picked_up(obj: str) -> Any:
        """The next run extracts `obj` and ends completed.

        /updated and /deleted answer up to the last whole minute (latestDateCovered): the run waits
        until that minute passes its start (moving the clock near a minute's end keeps that short).
        """
        near_minute_end(org)
        run = backup(path)
        assert run.status == "completed", run.message
        section = next(s for s in run.sections if s.object == obj)
        assert section.status == "ok" and section.items >= 1, section
        return run

    account = sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 1")["records"][0]["Id"]
    sf.Account.update(account, {"Description": "changed once"})
    run = picked_up("Account")
    assert_matches(org, path, run.run_id, {"Account": live_truth(org, "Account")})

    contact = sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 1")["records"][0]["Id"]
    sf.Contact.delete(contact)
    run = picked_up("Contact")
    assert_matches(org, path, run.run_id, {"Contact": live_truth(org, "Contact")})

    item = sf.query("SELECT Id FROM FeedItem ORDER BY Id LIMIT 1")["records"][0]["Id"]
    comment = sf.FeedComment.create({"FeedItemId": item, "CommentBody": "changed once"})["id"]
    run = picked_up("FeedComment")  # no SystemModstamp: its count moved, read whole and compared
    assert comment in store_ids(store, "FeedComment", run.run_id)
    sf.FeedComment.update(comment, {"CommentBody": "edited later"})  # LastEditDate moves, CreatedDate not
    run = picked_up("FeedComment")
    held = SnapshotStore(store, read_only=True)
    body = held.reads.read(f'SELECT "CommentBody" FROM "FeedComment_as_of"({int(run.run_id)}) WHERE "Id" = ?',
                           [comment])
    held.close()
    assert body.column(0).to_pylist() == ["edited later"]

    document = sf.query("SELECT Id FROM ContentDocument ORDER BY Id LIMIT 1")["records"][0]["Id"]
    user = sf.query("SELECT Id FROM User ORDER BY Id LIMIT 1")["records"][0]["Id"]
    link = sf.ContentDocumentLink.create({"ContentDocumentId": document, "LinkedEntityId": user,
                                          "ShareType": "V"})["id"]
    run = picked_up("ContentDocumentLink")  # probed through its parent's ids
    assert link in store_ids(store, "ContentDocumentLink", run.run_id)


def job_store(path: Path) -> Path:
    return path.parent / "store" / "snapshot.duckdb"


def store_ids(store_path: Path, obj: str, run_id: int) -> set[str]:
    store = SnapshotStore(store_path, read_only=True)
    try:
        table = store.reads.sql(f'SELECT "Id" FROM "{obj}_as_of"({int(run_id)})', None)
        return set(table.column(0).to_pylist())
    finally:
        store.close()


@pytest.mark.parametrize("faults, statuses", [
    ({"error_rate": 0.2, "error_status": 503, "seed": 1}, {"completed", "partial"}),
    ({"reset_rate": 0.3, "reset_min_bytes": 2000, "seed": 2}, {"completed", "partial"}),
    ({"session_expire_after": 15}, {"completed"}),
    ({"slow_ms": 5}, {"completed"}),
    ({"query_timeout_objects": ["Contact"]}, {"partial", "completed"}),
    ({"bulk_fail_objects": ["Contact", "Task"]}, {"completed"}),
])
def test_faults_end_in_the_right_status_and_the_next_run_converges(
        org: Any, job: Path, faults: dict, statuses: set[str]) -> None:
    backup(job)
    org.control("POST", "churn", {"days": 1})
    org.control("PUT", "faults", faults)
    faulty = backup(job)
    assert faulty.status in statuses, faulty.message
    if "query_timeout_objects" in faults:
        contact = next(s for s in faulty.sections if s.object == "Contact")
        assert contact.status == "failed" and "QUERY_TIMEOUT" in contact.message
    org.control("PUT", "faults", {})
    healed = backup(job)
    assert healed.status == "completed", healed.message
    assert_matches(org, job, healed.run_id)


def test_expired_credentials_disable_the_job(org: Any, tmp_config: Callable[..., Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRONG_PASSWORD", "not-the-password")
    path = tmp_config(config_text(org, wait=True, password_env="WRONG_PASSWORD"))
    result = backup(path)
    assert result.status == "disabled"
    assert "credentials" in result.message


def test_api_cap_stops_the_run_and_the_next_one_resumes(org: Any, tmp_config: Callable[..., Path]) -> None:
    path = tmp_config(config_text(org, wait=True, cap=50))
    org.control("POST", "limits", {"max": 40})  # the plan takes ~12 calls: the cap (20) hits mid-extract
    stopped = backup(path)
    assert stopped.status == "partial", stopped.message
    skipped = [s for s in stopped.sections if s.status == "skipped"]
    assert skipped and all("API cap" in s.message for s in skipped)
    assert any(s.status == "ok" for s in stopped.sections)
    org.control("POST", "limits", {"max": 100000})
    resumed = backup(path)
    assert resumed.status == "completed", resumed.message
    assert_matches(org, path, resumed.run_id)


def test_files_are_deduplicated_and_fetched_once(org: Any, job: Path) -> None:
    first = backup(job)
    blobs = job.parent / "store" / "blobs"
    files = sorted(p for p in blobs.rglob("*") if p.is_file())
    store = SnapshotStore(job.parent / "store" / "snapshot.duckdb", read_only=True)
    shas = store.reads.sql('SELECT "VersionData" AS sha FROM "ContentVersion" '
                           'WHERE "VersionData" IS NOT NULL '
                           'UNION SELECT "Body" FROM "Attachment" WHERE "Body" IS NOT NULL '
                           'UNION SELECT "Body" FROM "Document" WHERE "Body" IS NOT NULL', None)
    store.close()
    assert first.status == "completed"
    assert shas.num_rows > 0
    assert len(files) == shas.num_rows  # one blob per distinct content
    second = backup(job)
    assert second.status == "completed"
    assert sorted(p for p in blobs.rglob("*") if p.is_file()) == files


def test_full_reconcile_finds_deletions_that_left_the_recycle_bin(org: Any, job: Path) -> None:
    first = backup(job)
    org.control("POST", "churn", {"days": 1, "rates": {"delete": 0.05, "update": 0, "insert": 0,
                                                       "undelete": 0}})
    org.control("POST", "churn", {"days": 16, "rates": {"delete": 0, "update": 0, "insert": 0,
                                                        "undelete": 0}})  # the bin is emptied after 15 days
    full = backup(job, full=True)
    assert full.status == "completed", full.message
    assert_matches(org, job, full.run_id)
    assert store_state(job, "Account", first.run_id) != store_state(job, "Account", full.run_id)


def test_bad_objects_and_concurrent_runs_are_refused(org: Any, job: Path) -> None:
    from replicator.backup.run import BackupError

    result = backup(job, objects=["Account", "NoSuchThing__c"])
    assert result.status == "failed" and "NoSuchThing__c" in result.message
    holder = rf"pid {os.getpid()}"
    held = writer_lock(Layout(job.parent / "store"), "backup", "other")
    with held, pytest.raises(RunInProgress, match=holder):
        backup(job)
    assert issubclass(RunInProgress, BackupError)


def _cli(path: Path, *args: str, pause: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "REPLICATOR_TEST_PAUSE_AT": pause or ""}
    command = [str(Path(sys.executable).parent / "replicator"), "--config", str(path), "backup", "run", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_marker(proc: subprocess.Popen, phase: str, timeout: float = 120) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        if f"REPLICATOR_PAUSED_AT {phase}" in line:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"backup exited {proc.returncode} before {phase}")
    raise AssertionError(f"no pause marker for {phase}")


@pytest.mark.parametrize("phase", ["planned", "extracted", "applying", "applied"])
def test_sigkill_at_any_phase_leaves_a_consistent_store(org: Any, job: Path, phase: str) -> None:
    first = backup(job)
    truth1 = assert_matches(org, job, first.run_id)
    org.control("POST", "churn", {"days": 1})
    near_minute_end(org, lead=20)  # the child process starts up first
    proc = _cli(job, pause=phase)
    try:
        _wait_marker(proc, phase)
        running = _cli(job)  # a second run meanwhile is refused, naming the holder
        _out, err = running.communicate(timeout=60)
        assert running.returncode == 1 and f"pid {proc.pid}" in err.decode()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    store = SnapshotStore(job.parent / "store" / "snapshot.duckdb", read_only=True)
    assert_matches(org, job, first.run_id, truth1)
    visible = [r for r in store.ledger.runs() if r["status"] in ("completed", "partial")]
    store.close()
    resumed = backup(job)
    assert resumed.status == "completed", resumed.message
    assert_matches(org, job, resumed.run_id)
    assert not (job.parent / "store" / "runs").exists() or not any((job.parent / "store" / "runs").iterdir())
    assert visible  # the first run stayed visible throughout
