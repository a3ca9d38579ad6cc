"""Replicate a backup into a second emulator started as a sandbox, over HTTPS, and compare.

The production emulator of the session is backed up; the sandbox (another seed, its own records and
users) receives the chosen objects. Every copied record must equal its backed-up version field by
field with its references pointing at the copies, the predicted calls must equal what the sandbox
counted, and a second replicate must send nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ca_session
from test_backup_e2e import backup, config_text
from test_restore import OBJECTS, org  # noqa: F401  (fixture)

from replicator.config import load_config
from replicator.restore.job import RestoreRequest, plan_restore, run_restore
from replicator.restore.replicate import ReplicateRequest, replicate
from replicator.restore.switch import Automations
from replicator.store.repository import Repository
from sfemu.launch import start_emulator, stop, wait_ready

COPIED = ["Account", "Contact", "Opportunity", "Case"]
SANDBOX_PASSWORD, SANDBOX_SECRET = "REPLICATOR_SANDBOX_PASSWORD", "REPLICATOR_SANDBOX_SECRET"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("sandbox") / "state"
    process, ready = start_emulator(state, 0, 100, 7, ["--org-type", "sandbox"])
    try:
        yield wait_ready(process, ready, state / "emulator.log", timeout=180)
    finally:
        stop(process)


def sandbox_sf(info: dict[str, Any]) -> Any:
    from simple_salesforce import Salesforce

    http = ca_session(info["ca_path"])
    token = http.post(f"{info['base_url']}/services/oauth2/token", data={
        "grant_type": "password", "client_id": info["client_id"], "client_secret": info["client_secret"],
        "username": info["username"], "password": info["password"]}, timeout=60).json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=http,
                      version="62.0")


def sandbox_org(sandbox: dict[str, Any]) -> str:
    """The config's `[orgs.sandbox]` table for the sandbox emulator (secrets from the environment)."""
    return f"""
    [orgs.sandbox]
    login_url = "{sandbox['base_url']}"
    auth = "password"
    username = "{sandbox['username']}"
    password_env = "{SANDBOX_PASSWORD}"
    client_id = "{sandbox['client_id']}"
    client_secret_env = "{SANDBOX_SECRET}"
    ca_bundle = "{sandbox['ca_path']}"
    """


@pytest.fixture
def config(org, sandbox, tmp_config: Callable[..., Path], monkeypatch) -> Any:  # noqa: F811
    monkeypatch.setenv(SANDBOX_PASSWORD, sandbox["password"])
    monkeypatch.setenv(SANDBOX_SECRET, sandbox["client_secret"])
    objects = json.dumps([*OBJECTS, "RecordType"])
    text = config_text(org, selection=f"include = {objects}") + sandbox_org(sandbox)
    path = tmp_config(text)
    backup(path)
    return load_config(path)


def counted(info: dict[str, Any]) -> Callable[[], int]:
    http = ca_session(info["ca_path"])
    url = info["control_url"].rstrip("/") + "/ledger"
    since = http.get(url, timeout=60).json()["last_seq"]
    return lambda: http.get(f"{url}?since={since}", timeout=60).json()["summary"]["counted"]


def switch_validation_rules(sf: Any, active: bool) -> None:
    """The sandbox's validation rules (generated data breaks them on purpose) on or off."""
    for rule in sf.toolingexecute("query/?q=SELECT+Id+FROM+ValidationRule")["records"]:
        meta = sf.toolingexecute(f"sobjects/ValidationRule/{rule['Id']}")["Metadata"]
        sf.toolingexecute(f"sobjects/ValidationRule/{rule['Id']}", method="PATCH",
                          data={"Metadata": {**meta, "active": active}})


def test_a_restore_into_another_org_maps_owners_and_remaps_children(
        org, config, sandbox) -> None:  # noqa: F811
    sf, target = org.sf(), sandbox_sf(sandbox)
    candidates = sf.query("SELECT Id, Name, OwnerId, RecordType.DeveloperName FROM Account WHERE Id IN "
                          "(SELECT AccountId FROM Contact) AND RecordTypeId != null ORDER BY Id DESC LIMIT 20"
                          )["records"]
    taken = {r["Id"] for r in target.query_all("SELECT Id FROM Account")["records"]}
    account = next(r for r in candidates if r["Id"] not in taken)  # a sandbox keeps production's Ids
    request = RestoreRequest(object="Account", ids=(account["Id"],), with_related="children",
                             to_org="sandbox")
    plan = plan_restore(config, request)
    assert plan.target == "sandbox" and plan.objects["Account"]["insert"] == 1
    switch_validation_rules(target, False)
    try:
        result = run_restore(config, request)
    finally:
        switch_validation_rules(target, True)
    assert result.api_calls == result.predicted_calls and not result.failures, result.failures[:3]
    with Repository(config.storage.path).open_read() as store:
        new = dict(store.db.execute("SELECT source_id, target_id FROM main.id_map WHERE target = 'sandbox'")
                   .fetchall())
    copy = target.Account.get(new[account["Id"]])
    users = {r["Id"] for r in target.query_all("SELECT Id FROM User")["records"]}
    assert copy["Name"] == account["Name"] and copy["OwnerId"] in users
    assert copy["RecordTypeId"] and target.RecordType.get(copy["RecordTypeId"])["DeveloperName"] == \
        account["RecordType"]["DeveloperName"]  # record types by developer name
    kids = target.query_all(f"SELECT Id FROM Contact WHERE AccountId = '{copy['Id']}'")["totalSize"]
    assert kids == plan.objects["Contact"]["insert"] > 0


def test_a_snapshot_is_replicated_into_a_sandbox_and_equals_the_backup(config, sandbox) -> None:
    sf = sandbox_sf(sandbox)
    off = Automations(disable=True)
    planned = ReplicateRequest(to_org="sandbox", objects=COPIED, plan_only=True, automations=off)
    plan = replicate(config, planned)
    with Repository(config.storage.path).open_read() as store:
        stored = {obj: store.reads.as_of(obj, 1).read_all() for obj in COPIED}
    assert plan.order.index("Account") < plan.order.index("Contact") < plan.order.index("Case")
    assert {obj: plan.objects[obj]["insert"] for obj in COPIED} == {o: t.num_rows for o, t in stored.items()}
    assert any(c["objects"] == ["Account"] and "Account.ParentId" in c["deferred"] for c in plan.cycles)
    assert "Account.KeyAccountOnboarding" in plan.automations["switch_off"]["ApexTrigger"]  # a sandbox
    tasks = sf.query("SELECT count() FROM Task")["totalSize"]
    calls = counted(sandbox)
    result = replicate(config, ReplicateRequest(to_org="sandbox", objects=COPIED, automations=off))
    spent = calls()
    assert result.api_calls == result.predicted_calls == plan.api_calls
    assert result.automation_calls == plan.automation_calls
    assert spent == result.read_calls + result.automation_calls + result.api_calls
    assert sf.query("SELECT count() FROM Task")["totalSize"] == tasks  # no trigger or flow made any
    after = replicate(config, planned)
    assert after.automations["switch_off"] == plan.automations["switch_off"]  # all back on
    # the sandbox's own Accounts hold some of the same unique external ids: those fail alone, with
    # Salesforce's error kept, and their children point at the sandbox's record of the same Id
    assert {(f["sobject"], f["error_code"]) for f in result.failures} <= {("Account", "DUPLICATE_VALUE")}
    assert all("External_Id__c" in f["error_message"] for f in result.failures)
    assert sum(c.get("inserted", 0) for c in result.counts.values()) + len(result.failures) == \
        sum(t.num_rows for t in stored.values())
    with Repository(config.storage.path).open_read() as store:
        new = dict(store.db.execute("SELECT source_id, target_id FROM main.id_map WHERE target = 'sandbox'")
                   .fetchall())
    contacts = {r["Id"]: r for r in sf.query_all("SELECT Id, LastName, Email, AccountId FROM Contact")
                ["records"]}
    for source in stored["Contact"].select(["Id", "LastName", "Email", "AccountId"]).to_pylist():
        copy = contacts[new[source["Id"]]]
        assert (copy["LastName"], copy["Email"]) == (source["LastName"], source["Email"])
        assert copy["AccountId"] == (new.get(source["AccountId"], source["AccountId"]) if source["AccountId"]
                                     else None)
    accounts = {r["Id"]: r for r in sf.query_all("SELECT Id, Name, ParentId FROM Account")["records"]}
    failed = {f["source_id"] for f in result.failures}
    for source in stored["Account"].select(["Id", "Name", "ParentId"]).to_pylist():
        if source["Id"] in failed:
            continue
        copy = accounts[new[source["Id"]]]
        assert copy["Name"] == source["Name"]
        parent = source["ParentId"]
        assert copy["ParentId"] == (new.get(parent, parent) if parent else None)
    again = replicate(config, ReplicateRequest(to_org="sandbox", objects=COPIED))  # only what is missing
    assert again.counts == {"Account": {"failed": len(failed)}} if failed else not again.counts
    assert again.api_calls == (1 if failed else 0)

