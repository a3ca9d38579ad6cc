"""Restore, replicate and seed refuse a record forgotten by a GDPR request (issue 12).

One module-scoped store of the session emulator: an Account with two Contacts and a Case naming the
person; the person is forgotten with `gdpr forget` but stays in the org (Salesforce is not ours to
erase). Restore by Id refuses it in one line and writes nothing, a restore of its Account with
related records restores the others and lists it as refused, a seed and a replicate into a sandbox
emulator never create it, the loader's own guard refuses it even when a plan names it, and a lifted
request lets restore write it again. Tests run in file order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner
from test_backup_e2e import PASSWORD_ENV, SECRET_ENV, config_text
from test_replicate import SANDBOX_PASSWORD, SANDBOX_SECRET, sandbox, sandbox_org, sandbox_sf  # noqa: F401  (fixture)

from replicator.backup.run import BackupRequest, run_backup
from replicator.cli import cli
from replicator.config import load_config
from replicator.restore.job import org_client
from replicator.restore.replicate import ReplicateRequest, replicate
from replicator.seed.jobs import SeedRequest, seed_run
from replicator.sinks.salesforce.load import load
from replicator.sinks.salesforce.model import LoadPlan, ObjectStep
from replicator.store.forgotten import Forgotten
from replicator.store.idmap import StoreIdMap
from replicator.store.repository import Repository

OBJECTS = ["Account", "Contact", "Case"]
PERSON_LAST, OTHER_LAST = "Zyxrefusedperson", "Zyxkeptcolleague"
TEMPLATE = """name = "forgot"
description = "one account, its contacts and cases"

[root]
object = "Account"
filter = [{{ field = "Id", op = "=", value = "{account}" }}]

[[root.children]]
relationship = "Contacts"

[[root.children]]
relationship = "Cases"
"""


@dataclass
class Forgot:
    """The backed-up org, the forgotten person, their colleague and the forget request's number."""

    config: Path
    account: str
    person: str
    other: str
    case: str
    request: int

    @property
    def store(self) -> Path:
        return self.config.parent / "store"


def cli_run(f: Forgot, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(f.config), *args])


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under the folder and a hash of its bytes: "nothing written" checked strictly."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def forgot(emulator: Any, sandbox: dict[str, Any],  # noqa: F811
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forgot]:
    env = {PASSWORD_ENV: emulator.password, SECRET_ENV: emulator.client_secret,
           SANDBOX_PASSWORD: sandbox["password"], SANDBOX_SECRET: sandbox["client_secret"],
           "REPLICATOR_SEED_SECRET": "refusals-test-secret"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield from _forgotten(emulator, sandbox, tmp_path_factory)


def _forgotten(emulator: Any, sandbox: dict[str, Any],  # noqa: F811
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forgot]:
    """The store, the person forgotten, then the emulator reset."""
    root = tmp_path_factory.mktemp("refusals")
    config = root / "config.toml"
    config.write_text(config_text(emulator, selection=f"include = {json.dumps(OBJECTS)}")
                      + sandbox_org(sandbox), encoding="utf-8")
    sf = emulator.sf()
    account = sf.Account.create({"Name": "Zyx refusals account"})["id"]
    person = sf.Contact.create({"LastName": PERSON_LAST, "AccountId": account,
                                "Email": "zyx.refused@example.org"})["id"]
    other = sf.Contact.create({"LastName": OTHER_LAST, "AccountId": account})["id"]
    case = sf.Case.create({"Subject": "Zyx refusals case", "AccountId": account, "ContactId": person})["id"]
    (root / "seed-templates").mkdir()
    (root / "seed-templates" / "forgot.toml").write_text(TEMPLATE.format(account=account), encoding="utf-8")
    try:
        assert run_backup(load_config(config), BackupRequest("daily")).status == "completed"
        f = Forgot(config, account, person, other, case, 0)
        done = cli_run(f, "gdpr", "forget", "--object", "Contact", "--id", person, "--json")
        assert done.exit_code == 0, done.output
        f.request = json.loads(done.output)["request_id"]
        yield f
    finally:
        emulator.control("POST", "reset", {})


def test_restore_by_id_refuses_a_forgotten_record_in_one_line_and_writes_nothing(
        forgot: Forgot, emulator: Any) -> None:
    sf = emulator.sf()
    sf.Contact.update(forgot.person, {"Title": "Changed since the backup"})
    before_org = sf.Contact.get(forgot.person)["SystemModstamp"]
    before = fingerprint(forgot.store)
    for command in ("plan", "run"):
        result = cli_run(forgot, "restore", command, "--object", "Contact", "--ids", forgot.person)
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output, result.output
        assert f"Contact {forgot.person} was forgotten by GDPR request {forgot.request} " \
               "and will not be written" in lines[0]
    assert fingerprint(forgot.store) == before  # no ledger entry, no id map, nothing
    after = emulator.sf().Contact.get(forgot.person)
    assert after["SystemModstamp"] == before_org and after["Title"] == "Changed since the backup"


def test_restore_with_related_restores_the_others_and_lists_the_forgotten_one(
        forgot: Forgot, emulator: Any) -> None:
    sf = emulator.sf()
    sf.Contact.update(forgot.other, {"Title": "Colleague changed"})
    plan = cli_run(forgot, "restore", "plan", "--object", "Account", "--ids", forgot.account,
                   "--with-related", "children", "--json")
    assert plan.exit_code == 0, plan.output
    shown = json.loads(plan.output)
    assert shown["records"]["Contact"] == [forgot.other]  # the store no longer holds the person
    assert shown["refused"] == [{"object": "Contact", "id": forgot.person, "request": forgot.request,
                                 "named_by": ["Case.ContactId"]}]
    run = cli_run(forgot, "restore", "run", "--object", "Account", "--ids", forgot.account,
                  "--with-related", "children")
    assert run.exit_code == 0, run.output
    assert f"refused Contact {forgot.person}: forgotten by GDPR request {forgot.request}" in run.output
    sf = emulator.sf()
    assert sf.Contact.get(forgot.other)["Title"] is None  # restored to the backed-up version
    assert sf.Contact.get(forgot.person)["Title"] == "Changed since the backup"  # never written


def test_a_saved_plan_naming_a_forgotten_record_restores_the_others_and_lists_it(
        forgot: Forgot, emulator: Any, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    made = cli_run(forgot, "restore", "plan", "--object", "Contact", "--ids", forgot.other,
                   "--out", str(saved))
    assert made.exit_code == 0, made.output
    body = json.loads(saved.read_text(encoding="utf-8"))
    body["records"]["Contact"].append(forgot.person)  # as a plan saved before the forget would hold it
    saved.write_text(json.dumps(body), encoding="utf-8")
    emulator.sf().Contact.update(forgot.other, {"Title": "Colleague changed again"})
    run = cli_run(forgot, "restore", "run", "--plan", str(saved), "--json")
    assert run.exit_code == 0, run.output
    result = json.loads(run.output)
    assert result["refused"] == [{"object": "Contact", "id": forgot.person, "request": forgot.request,
                                  "named_by": ["the saved plan"]}]
    assert result["counts"]["Contact"]["updated"] == 1
    sf = emulator.sf()
    assert sf.Contact.get(forgot.other)["Title"] is None
    assert sf.Contact.get(forgot.person)["Title"] == "Changed since the backup"


def sandbox_contacts(info: dict[str, Any], last_name: str) -> list[dict[str, Any]]:
    return sandbox_sf(info).query(f"SELECT Id FROM Contact WHERE LastName = '{last_name}'")["records"]


def mapped(forgot: Forgot, target: str) -> dict[str, str]:
    with Repository.for_storage(load_config(forgot.config).storage).open_read() as store:
        return StoreIdMap(store.db, target).lookup([forgot.person, forgot.other, forgot.case, forgot.account])


def test_a_seed_from_the_store_never_creates_the_forgotten_record(
        forgot: Forgot, sandbox: dict[str, Any]) -> None:  # noqa: F811
    result = seed_run(load_config(forgot.config), SeedRequest("forgot", "sandbox"))
    assert result.seed["status"] == "COMPLETED", result.to_json()
    ids = mapped(forgot, "sandbox")
    assert forgot.person not in ids and {forgot.other, forgot.account, forgot.case} <= ids.keys()
    assert sandbox_contacts(sandbox, PERSON_LAST) == []
    assert len(sandbox_contacts(sandbox, OTHER_LAST)) == 1
    case = sandbox_sf(sandbox).Case.get(ids[forgot.case])
    assert case["ContactId"] is None  # the reference to the forgotten person is emptied


def test_replicate_leaves_the_forgotten_record_out_and_empties_references_to_it(
        forgot: Forgot, sandbox: dict[str, Any]) -> None:  # noqa: F811
    config = load_config(forgot.config)
    with Repository.for_storage(config.storage).open_write("test") as store:  # a fresh copy of the case
        store.db.execute("DELETE FROM main.id_map WHERE target = 'sandbox' AND source_id = ?", [forgot.case])
    result = replicate(config, ReplicateRequest("sandbox", objects=OBJECTS))
    # the generated org breaks the sandbox's validation rules here and there (test_replicate): only
    # our records matter, and none of them failed
    ours = {forgot.person, forgot.other, forgot.case, forgot.account}
    assert not [f for f in result.failures if f["source_id"] in ours], result.text()
    assert forgot.person not in result.text()
    ids = mapped(forgot, "sandbox")
    assert forgot.person not in ids
    assert sandbox_contacts(sandbox, PERSON_LAST) == []
    assert sandbox_sf(sandbox).Case.get(ids[forgot.case])["ContactId"] is None


def test_the_loader_refuses_a_forgotten_record_a_plan_names(forgot: Forgot, sandbox: dict[str, Any]) -> None:  # noqa: F811
    repository = Repository.for_storage(load_config(forgot.config).storage)
    rows = pa.table({"Id": [forgot.person, "003000000000XYZAAA"],
                     "LastName": [PERSON_LAST, "Zyxguardcontrol"]})
    with repository.open_write("test") as store:
        forgotten = Forgotten.of(store.db, repository.blob_key)
        step = ObjectStep("Contact", ("LastName",), inserts=lambda: iter(rows.to_batches()), insert_count=2)
        client = org_client(load_config(forgot.config), "sandbox")
        outcomes: list[Any] = []
        plan = LoadPlan("sandbox", (step,), keep=forgotten.drop)
        result = load(client, plan, StoreIdMap(store.db, "guard"), record=outcomes.extend)
    assert result.counts["Contact"] == {"refused": 1, "inserted": 1}
    assert [o.source_id for o in outcomes] == ["003000000000XYZAAA"]
    assert sandbox_contacts(sandbox, PERSON_LAST) == []


def test_a_lifted_request_lets_restore_write_the_record_again(forgot: Forgot, emulator: Any) -> None:
    lifted = cli_run(forgot, "gdpr", "lift", "--request", str(forgot.request))
    assert lifted.exit_code == 0, lifted.output
    assert run_backup(load_config(forgot.config), BackupRequest("daily", full=True)).status == "completed"
    sf = emulator.sf()
    sf.Contact.update(forgot.person, {"Title": "Changed after the lift"})
    result = cli_run(forgot, "restore", "run", "--object", "Contact", "--ids", forgot.person)
    assert result.exit_code == 0, result.output
    assert "Contact: inserted 0, updated 1" in result.output
    assert emulator.sf().Contact.get(forgot.person)["Title"] == "Changed since the backup"
