"""GDPR search, forget, rectify and requests against a store backed up from the session emulator.

One module-scoped history (built once, a few backups of a churned org with exports, a change-file
download and a SQL export) serves the tests in order: search, forget, rectify, bad input. A person's
values are unique markers, so "gone" is checked the strict way: a byte search of every file under
the storage folder and the export folders.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner
from test_backup_e2e import PASSWORD_ENV, SECRET_ENV, config_text, near_minute_end

from replicator.backup.run import BackupRequest, run_backup
from replicator.cli import cli
from replicator.config import load_config
from replicator.export import DiffRequest, ExportRequest, run_diff, run_export
from replicator.store.forgotten import Forgotten
from replicator.store.repository import Repository
from replicator.store.snapshot import SnapshotStore

OBJECTS = ["Account", "Contact", "Case", "Attachment", "ContentDocument", "ContentVersion",
           "ContentDocumentLink"]
SELECTION = f"include = {json.dumps(OBJECTS)}"
EMAILS = ["zyx.forget.one@example.org", "zyx.forget.two@example.org"]
PHONES = ["+1 555 0199 7001", "+1 555 0199 7002", "+1 555 0199 7003"]
LAST = "Zyxforgetname"
BODY = b"ZYX-SECRET-BODY of the forgotten person's file"
CONTROL_LAST = "Keepcontrolname"


@dataclass
class History:
    """The backed-up org: config, the person to forget, a control person, and the export folders."""

    config: Path
    root: Path
    person: str
    attachment: str
    case: str
    control: str
    exports: dict[str, Path] = field(default_factory=dict)
    runs: list[int] = field(default_factory=list)
    emulator: Any = field(default=None, repr=False)  # its clock is moved near a minute's end per run

    @property
    def store(self) -> Path:
        return self.root / "store"


def backup(h: History) -> int:
    if h.emulator is not None:
        near_minute_end(h.emulator)  # the run's wait for the org's change log: seconds
    result = run_backup(load_config(h.config), BackupRequest("daily"))
    assert result.status == "completed", result.message
    h.runs.append(result.run_id)
    return result.run_id


def cli_run(h: History, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(h.config), *args])


def hits(folders: list[Path], needles: list[bytes]) -> dict[str, list[str]]:
    """Needle -> files under the folders whose bytes contain it (the byte search of the brief)."""
    found: dict[str, list[str]] = {}
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for needle in needles:
                    if needle in data:
                        found.setdefault(needle.decode(), []).append(str(path))
    return found


def csv_ids(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [row["Id"] for row in csv.DictReader(fh)]


def count(h: History, table: str, rid: str) -> int:
    """Rows of `table` (a history table or an as-of call) with that Id."""
    return read(h, f"SELECT count(*) AS n FROM {table} WHERE \"Id\" = '{rid}'")[0]["n"]


def read(h: History, sql: str) -> list[dict[str, Any]]:
    store = SnapshotStore(h.store / "snapshot.duckdb", read_only=True)
    try:
        return store.reads.sql(sql).to_pylist()
    finally:
        store.close()


@pytest.fixture(scope="module")
def history(emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """Three backups with churn, the person's email and phone changing between them, an Attachment
    and a Case of theirs, a CSV export with attachments, a change file and a SQL export."""
    saved = {k: os.environ.get(k) for k in (PASSWORD_ENV, SECRET_ENV)}
    os.environ[PASSWORD_ENV], os.environ[SECRET_ENV] = emulator.password, emulator.client_secret
    root = tmp_path_factory.mktemp("gdpr")
    config = root / "config.toml"
    config.write_text(config_text(emulator, wait=True, selection=SELECTION), encoding="utf-8")
    sf = emulator.sf()
    contacts = sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 2")["records"]
    person, control = contacts[0]["Id"], contacts[1]["Id"]
    sf.Contact.update(person, {"LastName": LAST, "FirstName": "Zyxfirst", "Email": EMAILS[0],
                               "Phone": PHONES[0]})
    sf.Contact.update(control, {"LastName": CONTROL_LAST})
    attachment = sf.Attachment.create({"Name": "zyx.txt", "ParentId": person,
                                       "Body": base64.b64encode(BODY).decode()})["id"]
    case = sf.Case.create({"Subject": "Zyx case subject", "ContactId": person})["id"]
    h = History(config, root, person, attachment, case, control, emulator=emulator)
    try:
        backup(h)
        cfg = load_config(config)
        h.exports["csv"] = root / "exp_csv"
        run_export(cfg, ExportRequest(out=h.exports["csv"], include_attachments=True))
        sf = emulator.sf()  # a backup's login ends earlier sessions
        sf.Contact.update(person, {"Email": EMAILS[1], "Phone": PHONES[1]})
        backup(h)
        h.exports["diff"] = root / "exp_diff"
        run_diff(cfg, DiffRequest(str(h.runs[0]), h.exports["diff"]))
        h.exports["sql"] = root / "exp_sql"
        run_export(cfg, ExportRequest(out=h.exports["sql"], format="sql", dialect="postgresql"))
        sf = emulator.sf()
        sf.Contact.update(person, {"Phone": PHONES[2]})
        sf.Contact.update(control, {"Title": "Keep title two"})
        # churn last: it moves the emulator's clock a day on, and later REST edits are stamped by the
        # wall clock again (behind the churned stamps, so an incremental run would not see them)
        emulator.control("POST", "churn", {"days": 1, "rates": {"update": 0.05, "insert": 0.01}})
        backup(h)
        yield h
    finally:
        emulator.control("POST", "reset", {})
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_search_finds_every_version_and_export_holding_the_value(history: History) -> None:
    result = cli_run(history, "gdpr", "search", "--email", EMAILS[0].upper(), "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert [(m["object"], m["id"], m["fields"]) for m in found["matches"]] == [
        ("Contact", history.person, ["Email"])]
    assert [v["run_id"] for v in found["matches"][0]["versions"]] == [history.runs[0]]
    # the first export (as of run 1) and the change file (1 -> 2, the email changed) copied it
    assert {e["kind"] for e in found["exports"]} == {"export", "diff"}
    by_phone = json.loads(cli_run(history, "gdpr", "search", "--phone", "15550199 7002", "--json").output)
    assert [m["id"] for m in by_phone["matches"]] == [history.person]
    by_name = json.loads(cli_run(history, "gdpr", "search", "--name", f"zyxfirst {LAST}", "--json").output)
    assert by_name["matches"][0]["fields"] == ["FirstName LastName", "Name"]
    assert len(by_name["matches"][0]["versions"]) == 3
    nothing = cli_run(history, "gdpr", "search", "--email", "nobody.zyx@example.org")
    assert nothing.exit_code == 0 and "no record" in nothing.output


def test_search_refuses_bad_input(history: History) -> None:
    for args in (["--phone", "abc"], ["--email", "x", "--name", "y"], [], ["--email", "no-at-sign"]):
        result = cli_run(history, "gdpr", "search", *args)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1


WAL_MARK = "zyx-wal-mark"


def leave_a_wal(database: Path, person: str) -> None:
    """A write of the person's values left in the store's WAL, as a writer killed before its
    checkpoint leaves it (the forget must erase the WAL's copy too)."""
    script = ("import duckdb, os, sys\n"
              "con = duckdb.connect(sys.argv[1])\n"
              "con.execute(\"SET checkpoint_threshold = '1GB'\")\n"
              "con.execute('PRAGMA disable_checkpoint_on_shutdown')\n"
              "con.execute('UPDATE hist.\"Contact\" SET \"Title\" = ? || \"Email\" WHERE \"Id\" = ?', "
              "[sys.argv[2], sys.argv[3]])\n"
              "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script, str(database), WAL_MARK, person], check=True)


def test_forget_erases_every_copy_and_later_backups_do_not_bring_it_back(history: History) -> None:
    sha = hashlib.sha256(BODY).hexdigest()  # the file's hash and its blob id must go with it too
    blob_id = Repository(history.store).blobs().blob_id(sha)
    leave_a_wal(history.store / "snapshot.duckdb", history.person)
    needles = [e.encode() for e in EMAILS] + [p.encode() for p in PHONES] + [LAST.encode(), BODY[:20],
                                                                              sha.encode(), blob_id.encode(),
                                                                              WAL_MARK.encode()]
    folders = [history.store, *history.exports.values()]
    before = hits(folders, needles)
    assert set(before) >= {EMAILS[0], EMAILS[1], LAST, BODY[:20].decode()}, before
    assert any(path.endswith("snapshot.duckdb.wal") for path in before[WAL_MARK]), before
    assert sha not in before  # no file names a body by its plain hash: the store keeps its blob id
    control_before = read(history, f"SELECT * FROM \"Contact_history\"('{history.control}')")
    others_before = read(history, f"SELECT count(*) FROM hist.\"Contact\" WHERE \"Id\" <> '{history.person}'")

    killed_run = history.store / "runs" / "99"  # what a killed backup leaves: its raw staged rows
    killed_run.mkdir(parents=True)
    (killed_run / "rows.jsonl").write_text(json.dumps({"Email": EMAILS[1]}), encoding="utf-8")
    result = cli_run(history, "gdpr", "forget", "--object", "contact", "--id", history.person[:15],
                     "--comment", "ticket 42", "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.output)
    assert done["records"] == {"Attachment": 1, "Contact": 1}  # its file goes with it, the Case stays
    assert done["versions"] >= 4 and done["blobs_removed"] == 1
    assert len(done["copies"]["removed"]) == 1  # files/Attachment/<Id>.txt of the CSV export

    assert hits(folders, needles) == {} and not killed_run.exists()
    audit = history.store / "audit.jsonl"  # the audit log names the request, never the record
    assert audit.exists() and history.person not in audit.read_text(encoding="utf-8")
    assert not list(history.store.glob("snapshot.duckdb.*"))  # no rewrite leftovers, no WAL
    # everyone else's history is unchanged, and time travel still answers
    assert read(history, f"SELECT * FROM \"Contact_history\"('{history.control}')") == control_before
    assert read(history, f"SELECT count(*) FROM hist.\"Contact\" WHERE \"Id\" <> '{history.person}'") \
        == others_before
    for run in history.runs:
        assert count(history, f'"Contact_as_of"({run})', history.person) == 0
        assert count(history, f'"Case_as_of"({run})', history.case) == 1
    exported = csv_ids(history.exports["csv"] / "Contact.csv")
    assert history.control in exported and history.person not in exported and len(exported) > 300

    # the next backup (the record still lives in the org, and changes there) does not bring it back
    from_org = load_config(history.config)
    assert from_org.storage.path == history.store
    backup(history)
    run_backup(from_org, BackupRequest("daily", full=True))
    assert count(history, 'hist."Contact"', history.person) == 0
    assert count(history, 'hist."Attachment"', history.attachment) == 0
    assert hits([history.store], needles) == {}

    # restore, replicate and seed drop it from what they write
    store = Repository(history.store).open_read()
    try:
        forgotten = Forgotten.of(store.db, Repository(history.store).blob_key)
        batch = pa.RecordBatch.from_pylist([{"Id": history.person, "LastName": LAST},
                                            {"Id": history.control, "LastName": CONTROL_LAST}])
        assert forgotten.drop("Contact", batch).column("Id").to_pylist() == [history.control]
        assert forgotten.is_forgotten(history.person) and not forgotten.is_forgotten(history.control)
    finally:
        store.close()
    # a second forget of the same record: it is no longer in the store
    again = cli_run(history, "gdpr", "forget", "--object", "Contact", "--id", history.person)
    assert again.exit_code == 1 and "not in the store" in again.output

    listed = json.loads(cli_run(history, "gdpr", "requests", "--json").output)
    assert listed[0] | {"created_at": None, "finished_at": None, "details": None, "user": None} == {
        "id": 1, "type": "forget", "table_name": "Contact", "record_id": listed[0]["record_id"],
        "field": None, "comment": "ticket 42", "user": None, "created_at": None, "finished_at": None,
        "status": "completed", "versions": done["versions"], "records": 2, "details": None}
    assert listed[0]["record_id"].startswith("subject:") and history.person not in json.dumps(listed)


def test_a_lifted_forget_lets_the_next_full_backup_read_the_record_again(history: History) -> None:
    for bad, message in (("99", "no GDPR request 99"), ("x", "not a valid integer")):
        refused = cli_run(history, "gdpr", "lift", "--request", bad)
        assert refused.exit_code != 0 and message in refused.output
    result = cli_run(history, "gdpr", "lift", "--request", "1", "--comment", "sent in error")
    assert result.exit_code == 0, result.output
    assert "lifted forget request 1" in result.output
    again = cli_run(history, "gdpr", "lift", "--request", "1")
    assert again.exit_code == 1 and "not a forget request in force" in again.output
    run_backup(load_config(history.config), BackupRequest("daily", full=True))
    assert count(history, 'hist."Contact"', history.person) == 1  # read again from the org
    listed = json.loads(cli_run(history, "gdpr", "requests", "--json").output)
    assert [(r["id"], r["type"], r["status"]) for r in listed] == [(1, "forget", "lifted"),
                                                                     (2, "lift", "completed")]


def test_rectify_changes_that_field_in_every_version_and_nothing_else(history: History) -> None:
    before = read(history, f"SELECT * FROM \"Contact_history\"('{history.control}')")
    assert len(before) >= 2
    result = cli_run(history, "gdpr", "rectify", "--object", "Contact", "--id", history.control,
                     "--field", "lastname", "--value", "Rectifiedname")
    assert result.exit_code == 0, result.output
    after = read(history, f"SELECT * FROM \"Contact_history\"('{history.control}')")
    assert [r["LastName"] for r in after] == ["Rectifiedname"] * len(before)
    # the compound Name repeats the last name: it follows; every other field of every version is as it was
    assert [r["Name"] for r in after] == [r["Name"].replace(CONTROL_LAST, "Rectifiedname") for r in before]
    assert [{**r, "LastName": None, "Name": None} for r in after] == \
        [{**r, "LastName": None, "Name": None} for r in before]
    assert hits([history.store, *history.exports.values()], [CONTROL_LAST.encode()]) == {}
    assert "Rectifiedname" in (history.exports["csv"] / "Contact.csv").read_text(encoding="utf-8")
    assert "Rectifiedname" in (history.exports["sql"] / "Contact.sql").read_text(encoding="utf-8")
    listed = json.loads(cli_run(history, "gdpr", "requests", "--json").output)
    assert (listed[-1]["type"], listed[-1]["record_id"], listed[-1]["field"]) == ("rectify", history.control,
                                                                                  "LastName")


def test_a_rectified_last_name_changes_only_that_word_of_the_compound_name(history: History) -> None:
    first = read(history, f"SELECT \"FirstName\" FROM \"Contact\" WHERE \"Id\" = '{history.control}'")[0][
        "FirstName"]
    for last in (first[:-1], "Smith"):  # a last name the first name starts with, then another
        done = cli_run(history, "gdpr", "rectify", "--object", "Contact", "--id", history.control,
                       "--field", "LastName", "--value", last)
        assert done.exit_code == 0, done.output
    names = read(history, f"SELECT DISTINCT \"Name\" FROM hist.\"Contact\" "
                          f"WHERE \"Id\" = '{history.control}'")
    assert names == [{"Name": f"{first} Smith"}]
    with open(history.exports["csv"] / "Contact.csv", encoding="utf-8", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["Id"] == history.control)
    assert (row["FirstName"], row["LastName"], row["Name"]) == (first, "Smith", f"{first} Smith")


RECTIFY = ["rectify", "--object", "Contact", "--id", "{control}", "--field"]


@pytest.mark.parametrize("args, message", [
    (["forget", "--object", "Nope__c", "--id", "003000000000001AAA"], "not in the backup"),
    (["forget", "--object", "Contact", "--id", "003'; DROP TABLE x"], "not a Salesforce record Id"),
    (["forget", "--object", "Contact", "--id", "003000000000000AAA"], "not in the store"),
    ([*RECTIFY, "Nofield", "--value", "x"], "no field"),
    ([*RECTIFY, "Email", "--value", "not-an-email"], "not an email"),
    ([*RECTIFY, "Birthdate", "--value", "yesterday"], "not a valid"),
    ([*RECTIFY, "Id", "--value", "x"], "cannot be rectified"),
    ([*RECTIFY, "LastName", "--value", "x" * 81], "at most 80 characters"),
])
def test_bad_requests_are_one_line_and_change_nothing(history: History, args: list[str],
                                                      message: str) -> None:
    files = {p: p.read_bytes() for p in history.root.rglob("*") if p.is_file()}
    result = cli_run(history, "gdpr", *[a.format(control=history.control) for a in args])
    assert result.exit_code == 1, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in history.root.rglob("*") if p.is_file()} == files


@pytest.mark.parametrize("phase", ["copying", "rewritten", "swapped"])
def test_a_forget_killed_mid_way_leaves_the_store_wholly_before_or_after(history: History, tmp_path: Path,
                                                                         phase: str) -> None:
    """A copy of the store killed at each phase; the next GDPR command finishes or drops the request."""
    copy, _ = copy_of(history, tmp_path)
    versions = count(copy, 'hist."Contact"', copy.person)
    earlier = len(json.loads(cli_run(copy, "gdpr", "requests", "--json").output))
    env = {**os.environ, "REPLICATOR_TEST_PAUSE_AT": phase}
    command = [sys.executable, "-c", "from replicator.cli import main; main()", "--config", str(copy.config),
               "gdpr", "forget", "--object", "Contact", "--id", copy.person]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert proc.stderr is not None
    said = []
    for line in proc.stderr:
        said.append(line)
        if f"REPLICATOR_PAUSED_AT {phase}" in line:
            break
    else:
        raise AssertionError(f"the forget never paused at {phase}: {''.join(said)}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = count(copy, 'hist."Contact"', copy.person)
    before = json.loads(cli_run(copy, "gdpr", "requests", "--json").output)
    if phase == "swapped":
        assert left == 0 and before[-1]["type"] == "forget" and before[-1]["status"] == "erased"
    else:
        assert left == versions and len(before) == earlier
    # the next GDPR command first finishes the request (or drops its plan), then does its own work
    again = cli_run(copy, "gdpr", "forget", "--object", "Contact", "--id", copy.person)
    assert sorted(p.name for p in copy.store.glob("snapshot.duckdb*")) == ["snapshot.duckdb"]
    assert not (copy.store / "gdpr.pending.json").exists()
    after = json.loads(cli_run(copy, "gdpr", "requests", "--json").output)
    if phase == "swapped":
        assert again.exit_code == 1 and "not in the store" in again.output
        assert [r["status"] for r in after] == [r["status"] for r in before[:-1]] + ["completed"]
    else:
        assert again.exit_code == 0, again.output
        assert len(after) == earlier + 1 and after[-1]["status"] == "completed"
    assert count(copy, 'hist."Contact"', copy.person) == 0


def test_forget_with_related_takes_every_record_whose_lookup_names_it(history: History) -> None:
    account = read(history, 'SELECT "AccountId" AS a, count(*) AS n FROM "Contact" '
                            'WHERE "AccountId" IS NOT NULL GROUP BY 1 ORDER BY n DESC, a LIMIT 1')[0]["a"]
    pointing = {obj: {r["Id"] for r in read(history, f'SELECT DISTINCT "Id" FROM hist."{obj}" '
                                                     f"WHERE \"AccountId\" = '{account}'")}
                for obj in ("Contact", "Case")}
    assert pointing["Contact"]
    result = cli_run(history, "gdpr", "forget", "--object", "Account", "--id", account, "--with-related",
                     "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)["records"]
    assert records["Contact"] == len(pointing["Contact"]) and records.get("Case", 0) == len(pointing["Case"])
    for obj, ids in pointing.items():
        assert not set(csv_ids(history.exports["csv"] / f"{obj}.csv")) & ids
        assert all(count(history, f'hist."{obj}"', rid) == 0 for rid in ids)
    assert count(history, 'hist."Account"', account) == 0


def test_a_document_linked_only_to_the_record_goes_with_it_a_shared_one_stays(history: History) -> None:
    links = read(history, 'SELECT DISTINCT l."LinkedEntityId" AS e, l."ContentDocumentId" AS d, s.shares '
                          'FROM hist."ContentDocumentLink" l JOIN (SELECT "ContentDocumentId", '
                          'count(DISTINCT "LinkedEntityId") AS shares FROM hist."ContentDocumentLink" '
                          'GROUP BY 1) s USING ("ContentDocumentId") WHERE starts_with(e, \'001\')'
                          ' ORDER BY d')
    own = next(r for r in links if r["shares"] == 1)
    shared = [r["d"] for r in links if r["e"] == own["e"] and r["shares"] > 1]
    versions = {r["Id"] for r in read(history, f'SELECT "Id" FROM hist."ContentVersion" '
                                               f"WHERE \"ContentDocumentId\" = '{own['d']}'")}
    assert versions
    result = cli_run(history, "gdpr", "forget", "--object", "Account", "--id", own["e"], "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.output)
    assert done["records"]["ContentVersion"] == len(versions) and done["records"]["ContentDocument"] == 1
    assert done["blobs_removed"] >= 1
    assert all(count(history, 'hist."ContentVersion"', v) == 0 for v in versions)
    for doc in shared:  # still there for the other records it is linked to
        assert read(history, f"SELECT count(*) AS n FROM hist.\"ContentVersion\" "
                             f"WHERE \"ContentDocumentId\" = '{doc}'")[0]["n"] > 0


def copy_of(history: History, folder: Path, settings: str = "") -> tuple[History, dict[str, Any]]:
    """A copy of the store with `settings` added to its config, and a Contact no export holds (first
    backed up by the last run), so forgetting it there leaves the original's exports alone."""
    newest = read(history, f'SELECT "Id", "LastName" FROM hist."Contact" GROUP BY ALL '
                           f"HAVING min(_run_id) = {history.runs[2]} ORDER BY \"Id\" LIMIT 1")[0]
    shutil.copytree(history.store, folder / "store")
    config = folder / "config.toml"
    text = history.config.read_text(encoding="utf-8")
    config.write_text(text.replace('path = "store"', f'path = "store"\n{settings}', 1), encoding="utf-8")
    return History(config, folder, newest["Id"], "", "", history.control), newest


def test_forget_works_on_an_encrypted_store(history: History, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The rewrite keeps the store encrypted under its key."""
    pytest.importorskip("duckdb_extension_httpfs", reason="encryption at rest needs duckdb-extension-httpfs")
    monkeypatch.setenv("REPLICATOR_TEST_GDPR_KEY", "g" * 20 + "3Xb9vQ2mL8pR4tW6yZ1aC5eG7hJ0")
    copy, newest = copy_of(history, tmp_path, 'encryption_key_env = "REPLICATOR_TEST_GDPR_KEY"')
    assert cli_run(copy, "store", "encrypt").exit_code == 0
    result = cli_run(copy, "gdpr", "forget", "--object", "Contact", "--id", copy.person, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["copies"]["rewritten"] == []
    query = f"SELECT count(*) AS n FROM \"Contact\" WHERE \"Id\" IN ('{copy.person}', '{history.control}')"
    assert json.loads(cli_run(copy, "sql", query, "--json").output) == [{"n": 1}]
    assert hits([copy.store], [newest["LastName"].encode(), b"Rectifiedname"]) == {}  # still encrypted
    monkeypatch.delenv("REPLICATOR_TEST_GDPR_KEY")
    refused = cli_run(copy, "gdpr", "requests")
    assert refused.exit_code != 0 and "key" in refused.output


def test_an_endpoint_database_is_named_with_the_statement_to_run_there(
        history: History, tmp_path: Path, postgres_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    db = postgres_server.create_database("gdpr_forget")
    monkeypatch.setenv("REPLICATOR_TEST_PG", postgres_server.password)
    copy, _ = copy_of(history, tmp_path)
    copy.config.write_text(copy.config.read_text(encoding="utf-8") + f"""
[endpoints.pg]
kind = "postgresql"
host = "{postgres_server.host}"
port = {postgres_server.port}
database = "{db}"
user = "{postgres_server.user}"
password_env = "REPLICATOR_TEST_PG"
sslmode = "disable"
""", encoding="utf-8")
    run_export(load_config(copy.config), ExportRequest(endpoint="pg", objects=["Contact"]))
    result = cli_run(copy, "gdpr", "forget", "--object", "Contact", "--id", copy.person, "--json")
    assert result.exit_code == 2, result.output
    (outside,) = json.loads(result.output)["copies"]["outside"]
    assert outside["destination"].startswith("pg postgresql://") and copy.person in outside["statement"]
    with psycopg.connect(postgres_server.dsn(db)) as con:
        wanted = 'SELECT count(*) FROM "Contact" WHERE "Id" = %s'
        assert con.execute(wanted, [copy.person]).fetchone()[0] == 1
        con.execute(outside["statement"])
        assert con.execute(wanted, [copy.person]).fetchone()[0] == 0
    listed = json.loads(cli_run(copy, "gdpr", "requests", "--json").output)
    assert listed[-1]["status"] == "incomplete" and copy.person not in json.dumps(listed)


def test_a_rewritten_export_is_what_the_same_export_would_write_now(history: History, tmp_path: Path) -> None:
    """The ledger keeps each export's options: after a forget and a rectify, a SQL export made with
    --include-attachments still inlines every other file body, and a CSV export made with
    --keep-formulas spells the new value unescaped; each file is byte for byte what the same export
    of the store writes now."""
    copy, _ = copy_of(history, tmp_path)
    with duckdb.connect(str(copy.store / "snapshot.duckdb")) as con:
        con.execute("DELETE FROM main.exports")  # the original's export folders are not this copy's
    attachments = read(copy, 'SELECT "Id" FROM "Attachment" WHERE "Body" IS NOT NULL ORDER BY "Id"')
    assert len(attachments) >= 2
    options = {"sql": {"format": "sql", "dialect": "postgresql", "objects": ["Contact", "Attachment"],
                       "include_attachments": True},
               "csv": {"objects": ["Contact"], "keep_formulas": True}}

    def export_all(suffix: str) -> None:
        for name, kwargs in options.items():
            run_export(load_config(copy.config), ExportRequest(out=tmp_path / f"{name}{suffix}", **kwargs))

    export_all("")
    forgot = cli_run(copy, "gdpr", "forget", "--object", "Attachment", "--id", attachments[0]["Id"])
    assert forgot.exit_code == 0, forgot.output
    fixed = cli_run(copy, "gdpr", "rectify", "--object", "Contact", "--id", copy.person, "--field", "Title",
                    "--value", "=1+2 zyx title")
    assert fixed.exit_code == 0, fixed.output
    export_all("_now")
    for name in ("sql/Attachment.sql", "sql/Contact.sql", "csv/Contact.csv"):
        folder, file = name.split("/")
        now = (tmp_path / f"{folder}_now" / file).read_bytes()
        assert (tmp_path / folder / file).read_bytes() == now, name
    assert attachments[0]["Id"] not in (tmp_path / "sql" / "Attachment.sql").read_text(encoding="utf-8")
    with open(tmp_path / "csv" / "Contact.csv", encoding="utf-8", newline="") as fh:
        assert next(r for r in csv.DictReader(fh) if r["Id"] == copy.person)["Title"] == "=1+2 zyx title"
