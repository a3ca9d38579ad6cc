"""Automations off and reliably back on, against emulator orgs over HTTPS (a production org: the session
emulator; a sandbox org: a process of this module, where Apex triggers can be switched).

The org's state is always read back through the Tooling API with simple-salesforce, never through our
own code; the kill test SIGKILLs a real subprocess in the middle of its switches.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ca_session

from replicator.cli import cli
from replicator.config import OrgSettings, PasswordAuth
from replicator.config.secret import Secret
from replicator.errors import InvalidInput, Locked
from replicator.salesforce.automations import plan_switch, switched_off
from replicator.salesforce.client import OrgClient
from replicator.store.automation_journal import AutomationJournal
from replicator.store.repository import Repository
from sfemu.client import login
from sfemu.launch import start_emulator, stop, wait_ready

OURS = {  # the demo org's switchable automations (sfemu/orgs/standard.yaml)
    "ApexTrigger": [
        "Account.AccountRatingTrigger",
        "Account.KeyAccountOnboarding",
        "Opportunity.OpportunityAmountGuard",
    ],
    "ValidationRule": ["Account.Account_Credit_Terms", "Contact.Contact_Phone_Format"],
    "Flow": ["Opportunity.Opportunity_Won_Followup"],
    "WorkflowRule": ["Opportunity.Large_Deal_Review"],
}
NEG_ACCOUNT = {"Name": "Negative credit", "Credit_Limit__c": -1}
NEG_DEAL = {"Name": "Negative deal", "StageName": "Prospecting", "CloseDate": "2026-06-01", "Amount": -5}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A sandbox org of its own (Apex triggers can be switched there, as in a real sandbox)."""
    state: Path = tmp_path_factory.mktemp("automations-sandbox")
    process, ready = start_emulator(state, 0, 300, 11, ["--org-type", "sandbox"])
    try:
        yield wait_ready(process, ready, state / "emulator.log", timeout=120)
    finally:
        stop(process)


def _settings(name: str, info: dict[str, Any]) -> OrgSettings:
    return OrgSettings(
        name=name,
        login_url=info["base_url"],
        api_version="62.0",
        ca_bundle=Path(info["ca_path"]),
        auth=PasswordAuth(
            username=info["username"],
            password=Secret("AUTO_PASSWORD", info["password"]),
            client_id=info["client_id"],
            client_secret=Secret("AUTO_SECRET", info["client_secret"]),
        ),
    )


def _info(emulator: Any) -> dict[str, Any]:
    return {
        "base_url": emulator.base_url,
        "ca_path": emulator.ca_path,
        "username": emulator.username,
        "password": emulator.password,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "org_type": "production",
    }


def active(sf: Any) -> dict[str, list[str]]:
    """What the org says is active (read with simple-salesforce's Tooling calls, not ours)."""

    def query(soql: str) -> list[dict[str, Any]]:
        return sf.toolingexecute("query/?q=" + soql.replace(" ", "+"))["records"]

    triggers = [
        f"{t['TableEnumOrId']}.{t['Name']}"
        for t in query(
            "SELECT Name, TableEnumOrId FROM ApexTrigger WHERE Status = 'Active' AND NamespacePrefix = null"
        )
    ]
    rules = [
        f"{r['EntityDefinition']['QualifiedApiName']}.{r['ValidationName']}"
        for r in query(
            "SELECT ValidationName, EntityDefinition.QualifiedApiName FROM ValidationRule WHERE Active = true"
        )
    ]
    flows = [
        f"Opportunity.{f['DeveloperName']}"
        for f in query("SELECT DeveloperName FROM FlowDefinition WHERE ActiveVersionId != null")
    ]
    workflow = [
        f"{w['TableEnumOrId']}.{w['Name']}"
        for w in query("SELECT Id, Name, TableEnumOrId FROM WorkflowRule")
        if sf.toolingexecute(f"sobjects/WorkflowRule/{w['Id']}")["Metadata"]["active"]
    ]
    return {
        "ApexTrigger": sorted(triggers),
        "ValidationRule": sorted(rules),
        "Flow": sorted(flows),
        "WorkflowRule": sorted(workflow),
    }


NOTHING = {t: [] for t in OURS}


def config_text(emulator: Any, sandbox: dict[str, Any], storage: Path) -> str:
    def org(name: str, info: dict[str, Any], env: str) -> str:
        return f"""
        [orgs.{name}]
        login_url = "{info["base_url"]}"
        auth = "password"
        username = "{info["username"]}"
        password_env = "{env}_PASSWORD"
        client_id = "{info["client_id"]}"
        client_secret_env = "{env}_SECRET"
        ca_bundle = "{info["ca_path"]}"
        """

    return (
        textwrap.dedent(f"""
        [storage]
        path = "{storage}"
        """)
        + textwrap.dedent(org("prod", _info(emulator), "AUTO_PROD"))
        + textwrap.dedent(org("sandbox", sandbox, "AUTO_SANDBOX"))
    )


@pytest.fixture
def config(
    emulator: Any,
    sandbox: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_config: Callable[..., Path],
) -> Iterator[Path]:
    """A config naming both orgs; both orgs are reset afterwards."""
    for env, info in (("AUTO_PROD", _info(emulator)), ("AUTO_SANDBOX", sandbox)):
        monkeypatch.setenv(f"{env}_PASSWORD", info["password"])
        monkeypatch.setenv(f"{env}_SECRET", info["client_secret"])
    yield tmp_config(config_text(emulator, sandbox, tmp_path / "store"))
    emulator.control("PUT", "faults", {})
    emulator.control("POST", "reset", {})
    _control(sandbox, "PUT", "faults", {})
    _control(sandbox, "POST", "reset", {})


def invoke(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def bulk_fails(sf: Any, sobject: str, record: dict[str, Any]) -> bool:
    """Insert one record through sObject Collections; True when the org refused it."""
    answer = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": False, "records": [{"attributes": {"type": sobject}, **record}]},
    )
    return not answer[0]["success"]


def test_list_shows_active_automations_in_ownbackups_shape(config: Path) -> None:
    listed = invoke(config, "automations", "list", "--org", "prod", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == OURS  # managed AccountSync (namespace acme) is excluded
    text = invoke(config, "automations", "list", "--org", "prod")
    assert "Account.AccountSync" in text.output and "not switchable" in text.output
    assert "cannot be switched off in a production org" in text.output


def test_switched_off_then_exactly_those_back_on_in_a_sandbox(
    config: Path, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    sf = login(sandbox)
    assert active(sf) == OURS
    client = OrgClient(_settings("sandbox", sandbox))
    journal = AutomationJournal(tmp_path / "journal", "sandbox")
    with switched_off(client, journal) as report:
        assert sorted(a.label for a in report.switched) == sorted(
            f"{t} {n}" for t, ns in OURS.items() for n in ns
        )
        assert active(sf) == NOTHING
        written = json.loads(journal.path.read_text())
        assert written["org"] == "sandbox" and len(written["entries"]) == 7
        assert not bulk_fails(sf, "Account", NEG_ACCOUNT) and not bulk_fails(sf, "Opportunity", NEG_DEAL)
    assert active(sf) == OURS and not journal.path.exists()
    assert bulk_fails(sf, "Account", NEG_ACCOUNT) and bulk_fails(sf, "Opportunity", NEG_DEAL)

    with (
        pytest.raises(RuntimeError),
        switched_off(
            client, journal, only=["ValidationRule:Account_Credit_Terms"], objects=["Account"]
        ) as report,
    ):
        assert [a.label for a in report.switched] == ["ValidationRule Account.Account_Credit_Terms"]
        assert active(sf)["ValidationRule"] == ["Contact.Contact_Phone_Format"]
        raise RuntimeError("the load failed")
    assert active(sf) == OURS and not journal.path.exists()


def test_the_plan_prices_switching_off_and_on_exactly(
    config: Path, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    client = OrgClient(_settings("sandbox", sandbox))
    for only in (None, ["ValidationRule:Account_Credit_Terms", "Flow:Opportunity_Won_Followup"]):
        plan = plan_switch(client, only=only)
        since = _control(sandbox, "GET", "ledger", None)["last_seq"]
        with switched_off(client, AutomationJournal(tmp_path / "journal", "sandbox"), only=only):
            pass
        counted = _control(sandbox, "GET", f"ledger?since={since}", None)["summary"]["counted"]
        assert counted == plan.calls() and plan.listing_calls >= 5
    assert active(login(sandbox)) == OURS


def test_production_refusal_is_planned_before_anything_is_switched(
    config: Path, emulator: Any, tmp_path: Path
) -> None:
    client = OrgClient(_settings("prod", _info(emulator)))
    plan = plan_switch(client)
    kept = {k.automation.full_name: k.reason for k in plan.kept}
    assert "ENTITY_IS_LOCKED" in kept["Opportunity.OpportunityAmountGuard"]
    assert "managed" in kept["Account.AccountSync"]
    assert (
        "ApexTrigger" not in {a.type for a in plan.switch} and len(plan.switch) == 4 and len(plan.kept) == 4
    )
    journal = AutomationJournal(tmp_path / "journal", "prod")
    since = emulator.control("GET", "ledger")["last_seq"]
    with (
        pytest.raises(InvalidInput, match="production org refuses Apex"),
        switched_off(
            client, journal, only=["ApexTrigger:OpportunityAmountGuard", "Flow:Opportunity_Won_Followup"]
        ),
    ):
        pass
    calls = emulator.control("GET", f"ledger?since={since}")["calls"]
    assert not [c for c in calls if c["method"] != "GET"]  # nothing was switched
    assert not journal.path.exists() and active(emulator.sf()) == {**OURS}


def test_a_second_process_cannot_switch_the_same_org(
    config: Path, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    journal = AutomationJournal(tmp_path / "journal", "sandbox")
    other = AutomationJournal(tmp_path / "journal", "sandbox")
    with (
        other.hold(),
        pytest.raises(Locked, match="being switched by another process"),
        switched_off(OrgClient(_settings("sandbox", sandbox)), journal),
    ):
        pass
    assert active(login(sandbox)) == OURS


KILLED_RUN = """
import sys, time
from pathlib import Path
from replicator.config import load_config
from replicator.salesforce.automations import switched_off
from replicator.salesforce.client import OrgClient
from replicator.store.repository import Repository

config = load_config(Path(sys.argv[1]))
journal = Repository(config.storage.path).automation_journal("sandbox")
with switched_off(OrgClient(config.orgs["sandbox"]), journal):
    print("all off", flush=True)
    time.sleep(600)
"""


@contextmanager
def killed_run(config: Path, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """A subprocess switching the sandbox's automations off (it prints "all off", then sleeps inside the
    block); the test SIGKILLs it, and it is killed at the end whatever happened."""
    script = tmp_path / "killed_run.py"
    script.write_text(KILLED_RUN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, str(script), str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_run_killed_mid_way_is_switched_back_on_by_the_next_command(
    config: Path, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    sf = login(sandbox)
    since = _control(sandbox, "GET", "ledger", None)["last_seq"]
    _control(sandbox, "PUT", "faults", {"slow_ms": 300})  # slow switches: the kill lands between two
    with killed_run(config, tmp_path) as process:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(  # the control API is never slowed
            c["method"] == "PATCH" for c in _control(sandbox, "GET", f"ledger?since={since}", None)["calls"]
        ):
            assert process.poll() is None, "the run ended before its first switch"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    _control(sandbox, "PUT", "faults", {})
    partly = active(sf)
    assert partly != OURS and partly != NOTHING, "the kill should land mid-way"
    journal = tmp_path / "store" / "automations" / "sandbox.json"
    assert len(json.loads(journal.read_text())["entries"]) == 7  # written before the first switch

    untouched = invoke(config, "automations", "list", "--org", "prod")  # another org: left alone
    assert untouched.exit_code == 0 and "switched back on" not in untouched.output and journal.exists()
    nxt = invoke(config, "automations", "list", "--org", "sandbox", "--json")
    assert nxt.exit_code == 0, nxt.output
    assert "left off by an interrupted run" in nxt.stderr and "were switched back on" in nxt.stderr
    assert json.loads(nxt.stdout) == OURS and active(sf) == OURS and not journal.exists()


def test_a_run_killed_mid_load_is_switched_back_on_by_automations_restore(
    config: Path, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    with killed_run(config, tmp_path) as process:
        assert process.stdout is not None and process.stdout.readline().strip() == "all off"
        process.send_signal(signal.SIGKILL)
    sf = login(sandbox)
    assert active(sf) == NOTHING
    restored = invoke(config, "automations", "restore", "--org", "sandbox")
    assert restored.exit_code == 0, restored.output
    assert "left off by an interrupted run" in restored.stdout and "were switched back on" in restored.stdout
    assert active(sf) == OURS and not (tmp_path / "store" / "automations" / "sandbox.json").exists()


def _control(info: dict[str, Any], method: str, path: str, body: Any) -> Any:
    response = ca_session(info["ca_path"]).request(
        method, f"{info['control_url']}/{path}", json=body, timeout=60
    )
    response.raise_for_status()
    return response.json() if response.content else None


def test_off_by_hand_stays_off_until_on(config: Path, sandbox: dict[str, Any]) -> None:
    sf = login(sandbox)
    off = invoke(
        config, "automations", "off", "--org", "sandbox", "--only", "ValidationRule:Account_Credit_Terms"
    )
    assert off.exit_code == 0, off.output
    assert "ValidationRule Account.Account_Credit_Terms" in off.output
    after = invoke(config, "automations", "list", "--org", "sandbox", "--json")  # not a killed run: kept off
    assert json.loads(after.stdout)["ValidationRule"] == ["Contact.Contact_Phone_Format"]
    assert active(sf)["ValidationRule"] == ["Contact.Contact_Phone_Format"]
    on = invoke(config, "automations", "on", "--org", "sandbox")
    assert on.exit_code == 0 and "switched back on: ValidationRule Account.Account_Credit_Terms" in on.output
    assert active(sf) == OURS
    again = invoke(config, "automations", "restore", "--org", "sandbox")
    assert again.exit_code == 0 and "no automations of org sandbox are switched off" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "--org", "nope"], "no org 'nope'"),
        (["off", "--org", "nope"], "no org 'nope'"),
        (["off", "--org", "sandbox", "--only", "Trigger:X"], "'Trigger:X' is not Type:Name"),
        (
            ["off", "--org", "sandbox", "--only", "ValidationRule:Missing"],
            "no active ValidationRule named 'Missing'",
        ),
        (["off", "--org", "prod", "--only", "ApexTrigger:Account.AccountSync"], "managed package component"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    config: Path, sandbox: dict[str, Any], tmp_path: Path, args: list[str], message: str
) -> None:
    result = invoke(config, "automations", *args)
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "store" / "automations" / "sandbox.json").exists()
    assert not (tmp_path / "store" / "automations" / "prod.json").exists()
    assert active(login(sandbox)) == OURS


def test_the_orgs_a_command_line_is_about(tmp_config: Callable[..., Path]) -> None:
    from replicator.cli.automations import orgs_named
    from replicator.config import load_config

    org = 'login_url = "https://127.0.0.1:1"\nauth = "password"\nusername = "u"\npassword_env = "P"\n'
    two = load_config(
        tmp_config(
            f'[storage]\npath = "s"\n[orgs.a]\n{org}[orgs.b]\n{org}'
            '[jobs.nightly]\norg = "b"\n[jobs.weekly]\norg = "a"\n'
        )
    )
    assert orgs_named(two, ["restore", "run", "--to-org", "a"]) == ["a"]
    assert orgs_named(two, ["automations", "list", "--org=b"]) == ["b"]
    assert orgs_named(two, ["backup", "run", "--job", "nightly"]) == ["b"]
    assert orgs_named(two, ["runs"]) == []  # two jobs, two orgs, none named: nothing to guess
    one = load_config(
        tmp_config(f'[storage]\npath = "s"\n[orgs.a]\n{org}[jobs.nightly]\norg = "a"\n', name="one.toml")
    )
    assert orgs_named(one, ["backup", "run"]) == ["a"]


def test_objects_keep_the_automations_of_those_objects(config: Path, sandbox: dict[str, Any]) -> None:
    plan = plan_switch(OrgClient(_settings("sandbox", sandbox)), objects=["opportunity"])
    assert sorted(a.label for a in plan.switch) == [
        "ApexTrigger Opportunity.OpportunityAmountGuard",
        "Flow Opportunity.Opportunity_Won_Followup",
        "WorkflowRule Opportunity.Large_Deal_Review",
    ]


def test_a_journal_of_another_org_warns_and_changes_nothing(config: Path, tmp_path: Path) -> None:
    journal = Repository(tmp_path / "store").automation_journal("prod")
    with journal.hold():  # as a run does: the storage folder claimed, the journal held while written
        journal.write(
            {
                "org": "prod",
                "org_id": "00D000000000001AAA",
                "pid": 1,
                "started": "then",
                "entries": [
                    {
                        "type": "ValidationRule",
                        "id": "03d000000000001AAA",
                        "name": "X",
                        "object": "Account",
                        "metadata": {"active": True},
                    }
                ],
            }
        )
    listed = invoke(config, "automations", "list", "--org", "prod", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == OURS
    assert "warning: automations a killed run left switched off stay off" in listed.stderr
    assert "was written for org 00D000000000001AAA" in listed.stderr and journal.path.exists()
