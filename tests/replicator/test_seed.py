"""Seeding a sandbox from a backed-up production org, against two running emulators over HTTPS.

The production emulator is backed up once; every seed goes to a partial-copy sandbox emulator,
whose ground truth (the control API's dump) is compared with the store as of the run through the
id map: counts, every lookup, masked and unmasked fields. Refusals are checked to write nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ca_session

from replicator.backup.run import BackupRequest, run_backup
from replicator.config import load_config
from replicator.seed.jobs import SeedRequest, SeedsRequest, seed_plan, seed_run, seeds
from replicator.seed.plan import SeedRefused
from replicator.seed.template import TemplateProblem
from replicator.store.repository import Repository
from sfemu.launch import start_emulator, stop, wait_ready

OBJECTS = ["Account", "Contact", "Opportunity", "OpportunityLineItem", "Product2", "Pricebook2",
           "PricebookEntry", "Region__c", "Office__c",
           "Case", "Task", "User", "RecordType", "Campaign"]
SECRET = "seed-test-secret"
SHARED_EMAIL = "Shared.Person@Example.com"


@dataclass
class Org:
    info: dict[str, Any]

    def __post_init__(self) -> None:
        self.http = ca_session(self.info["ca_path"])

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.info['control_url'].rstrip('/')}/{path}", json=body,
                                     timeout=120)
        response.raise_for_status()
        return response.json() if response.content else None

    def dump(self, obj: str) -> dict[str, dict[str, Any]]:
        """Ground truth: every live record of `obj`, by Id."""
        url = f"{self.info['control_url'].rstrip('/')}/dump/{obj}?format=jsonl"
        response = self.http.get(url, timeout=120)
        response.raise_for_status()
        rows = [json.loads(line) for line in response.text.splitlines() if line.strip()]
        return {r["Id"]: r for r in rows}

    def writes_since(self, seq: int) -> list[dict[str, Any]]:
        calls = self.control("GET", f"ledger?since={seq}")["calls"]
        return [c for c in calls if c["method"] in ("POST", "PATCH", "DELETE") and "/query" not in c["path"]
                and "oauth2" not in c["path"]]

    def last_seq(self) -> int:
        return self.control("GET", "ledger")["last_seq"]

    def sf(self) -> Any:
        from simple_salesforce import Salesforce

        token = self.http.post(f"{self.info['base_url']}/services/oauth2/token", data={
            "grant_type": "password", "client_id": self.info["client_id"],
            "client_secret": self.info["client_secret"], "username": self.info["username"],
            "password": self.info["password"]}, timeout=60).json()
        return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                          session=ca_session(self.info["ca_path"]), version="62.0")


def _start(root: Path, name: str, seed: int, extra: list[str]) -> tuple[subprocess.Popen, Org]:
    state = root / name
    process, ready = start_emulator(state, 0, 300, seed, extra)
    return process, Org(wait_ready(process, ready, state / "emulator.log", timeout=240))


@pytest.fixture(scope="module")
def orgs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Org]]:
    root = tmp_path_factory.mktemp("seed_orgs")
    started: list[subprocess.Popen] = []
    try:
        out = {}
        for name, seed, extra in (("prod", 7, []), ("dev", 8, ["--org-type", "sandbox"]),
                                  ("full", 9, ["--org-type", "sandbox", "--sandbox-type", "full",
                                               "--scale", "50"])):
            process, org = _start(root, name, seed, extra)
            started.append(process)
            out[name] = org
        yield out
    finally:
        for process in started:
            stop(process)


def _org_toml(name: str, info: dict[str, Any]) -> str:
    return f"""
[orgs.{name}]
login_url = "{info['base_url']}"
auth = "password"
username = "{info['username']}"
password_env = "SEED_TEST_PASSWORD"
client_id = "{info['client_id']}"
client_secret_env = "SEED_TEST_CLIENT_SECRET"
ca_bundle = "{info['ca_path']}"
"""


@pytest.fixture(scope="module")
def config_path(orgs: dict[str, Org], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store holding one backup of production, in which one Case shares a Contact's email."""
    folder = tmp_path_factory.mktemp("seed_config")
    info = orgs["prod"].info
    saved = {k: os.environ.get(k) for k in ("SEED_TEST_PASSWORD", "SEED_TEST_CLIENT_SECRET")}
    os.environ.update(SEED_TEST_PASSWORD=info["password"], SEED_TEST_CLIENT_SECRET=info["client_secret"])
    path = folder / "config.toml"
    path.write_text(f'[storage]\npath = "{folder / "store"}"\n'
                    + "".join(_org_toml(n, o.info) for n, o in orgs.items())
                    + '\n[jobs.daily]\norg = "prod"\n\n[jobs.daily.objects]\n'
                    + f'include = {json.dumps(OBJECTS)}\n',
                    encoding="utf-8")
    sf = orgs["prod"].sf()
    customers = "('Customer - Direct', 'Customer - Channel', 'Prospect')"  # accounts_360's root filter
    cases = sf.query("SELECT Id, AccountId FROM Case WHERE AccountId IN "
                     f"(SELECT Id FROM Account WHERE Type IN {customers})")["records"]
    contacts = {r["AccountId"]: r["Id"] for r in sf.query("SELECT Id, AccountId FROM Contact")["records"]}
    case = next(c for c in cases if c["AccountId"] in contacts)
    sf.Contact.update(contacts[case["AccountId"]], {"Email": SHARED_EMAIL})
    sf.Case.update(case["Id"], {"SuppliedEmail": SHARED_EMAIL.lower()})
    region = sf.query("SELECT Id, Primary_Office__c FROM Region__c "
                      "WHERE Primary_Office__c != null")["records"][0]
    sf.Office__c.update(region["Primary_Office__c"], {"Region__c": region["Id"]})  # a record-level cycle
    assert run_backup(load_config(path), BackupRequest("daily")).status == "completed"
    yield path
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATOR_SEED_SECRET", SECRET)


def store_rows(config_path: Path, obj: str) -> dict[str, dict[str, Any]]:
    with Repository(load_config(config_path).storage.path).open_read() as store:
        return {r["Id"]: r for r in store.reads.read(f'SELECT * FROM "{obj}"').to_pylist()}


def id_map(config_path: Path, target: str) -> dict[str, tuple[str, str]]:
    """source Id -> (object, target Id) of every record seeded into `target`."""
    with Repository(load_config(config_path).storage.path).open_read() as store:
        rows = store.db.execute("SELECT source_id, sobject, target_id FROM main.id_map WHERE target = ?",
                                [target]).fetchall()
    return {s: (o, t) for s, o, t in rows}


def outcomes(config_path: Path, seed_id: int) -> list[dict[str, Any]]:
    with Repository(load_config(config_path).storage.path).open_read() as store:
        return store.db.rows("SELECT * FROM main.seed_outcomes WHERE seed_id = ?", [seed_id])


def request(**kwargs: Any) -> SeedRequest:
    return SeedRequest(**{"template": "accounts_360", "to_org": "dev", **kwargs})


REFERENCES = {"Contact": ["AccountId", "ReportsToId"],
              "Opportunity": ["AccountId", "ContactId", "CampaignId"],
              "OpportunityLineItem": ["OpportunityId", "PricebookEntryId", "Product2Id"],
              "PricebookEntry": ["Product2Id"], "Case": ["AccountId", "ContactId", "ParentId"],
              "Task": ["WhatId", "WhoId"], "Account": ["ParentId"]}


def test_clean_and_insert_then_incremental_then_upsert(orgs: dict[str, Org], config_path: Path) -> None:
    config = load_config(config_path)
    dev = orgs["dev"]
    plan = seed_plan(config, request(method="clean_and_insert"))
    planned = {o.object: o for o in plan.objects}
    assert planned["Account"].deletions == len(dev.dump("Account")) > 0
    assert planned["Contact"].masked["Email"] == "email"
    assert "Account.BillingStreet looks personal (street) and is copied unmasked" in plan.notes
    assert {"Product2", "PricebookEntry", "Campaign"} <= set(planned)  # parents pulled automatically
    assert "Pricebook2" not in planned and "User" not in planned  # matched, never created

    result = seed_run(config, request(method="clean_and_insert"))
    assert result.seed["status"] == "COMPLETED", outcomes(config_path, result.seed["id"])
    assert result.seed["api_calls"] == plan.api_calls  # the plan's price is what the seed spent
    seeded = id_map(config_path, "dev")
    total = sum(o.records for o in plan.objects)
    assert result.seed["insert_success_records"] == total == result.seed["total_insert_records"]
    assert result.seed["delete_success_records"] == sum(o.deletions for o in plan.objects)

    # the target holds exactly the seeded records of each object (automations may add tasks)
    for obj, view in planned.items():
        truth = dev.dump(obj)
        mine = {t for s, (o, t) in seeded.items() if o == obj}
        assert len(mine) == view.records and mine <= set(truth), obj
        if obj != "Task":
            assert set(truth) == mine, obj

    # every lookup points at the seeded copy of the record the source pointed at
    polymorphic = set()
    for obj, fields in REFERENCES.items():
        truth, source = dev.dump(obj), store_rows(config_path, obj)
        for src_id, (o, tgt_id) in seeded.items():
            if o != obj:
                continue
            for name in fields:
                value = source[src_id][name]
                expected = seeded[value][1] if value in seeded else None
                assert truth[tgt_id][name] == expected, (obj, name, src_id)
                if obj == "Task" and value in seeded:
                    polymorphic.add((name, seeded[value][0]))
    assert {("WhatId", "Account"), ("WhoId", "Contact")} <= polymorphic

    # masked fields differ from the source and agree across objects; the rest equals the source
    contacts, source_contacts = dev.dump("Contact"), store_rows(config_path, "Contact")
    cases, source_cases = dev.dump("Case"), store_rows(config_path, "Case")
    fakes, shared = {}, 0
    for src_id, (o, tgt_id) in sorted(seeded.items(), key=lambda item: item[1][0] != "Contact"):
        if o == "Contact":
            src, tgt = source_contacts[src_id], contacts[tgt_id]
            assert tgt["Title"] == src["Title"] and tgt["Department"] == src["Department"]
            if src["Email"]:
                assert tgt["Email"] != src["Email"] and tgt["Email"].endswith(".example")
                fakes[src["Email"].lower()] = tgt["Email"]
            if src["LastName"]:
                assert tgt["LastName"] != src["LastName"]
            assert tgt["HomePhone"] is None
        if o == "Case" and source_cases[src_id]["SuppliedEmail"]:
            email = source_cases[src_id]["SuppliedEmail"].lower()
            if email in fakes:
                assert cases[tgt_id]["SuppliedEmail"] == fakes[email]  # same person, same fake
                shared += email == SHARED_EMAIL.lower()
    assert shared == 1
    users = set(dev.dump("User"))
    assert all(c["OwnerId"] in users for c in contacts.values())  # matched, or the running user

    # incremental: everything is already there, nothing is sent again
    since = dev.last_seq()
    again = seed_run(config, request(method="incremental"))
    assert again.seed["insert_success_records"] == 0 and again.seed["duplicated_records"] == total
    assert not dev.writes_since(since)
    assert id_map(config_path, "dev") == seeded

    # upsert: accounts go by their external id and update the copies in place
    upserted = seed_run(config, request(method="upsert"))
    accounts = [o for o in outcomes(config_path, upserted.seed["id"])
                if o["sobject"] == "Account" and o["action"] != "relink"]
    assert accounts and all(o["action"] == "update" and o["status"] == "ok" for o in accounts)
    assert {o["target_id"] for o in accounts} == {t for s, (o, t) in seeded.items() if o == "Account"}
    assert len(dev.dump("Account")) == planned["Account"].records

    listed = seeds(config, SeedsRequest()).to_json()
    assert [s["seeding_method"] for s in listed] == ["clean_and_insert", "incremental", "upsert"]
    shown = seeds(config, SeedsRequest(upserted.seed["id"])).to_json()
    assert shown["status"] == "COMPLETED" and shown["progress"] == 100 and shown["failures"] == []
    assert set(shown) >= {"created_at", "delete_fail_records", "delete_success_records", "dest_service_id",
                          "disable_automations", "duplicated_records", "finished_at", "id",
                          "insert_fail_records", "insert_success_records", "progress", "seed_id",
                          "seeding_method", "started_at", "status", "template", "total_delete_records",
                          "total_insert_records"}


def active(org: Org) -> dict[str, list[str]]:
    """The target's active automations, read with simple-salesforce's Tooling calls (not ours)."""
    sf = org.sf()

    def query(soql: str) -> list[dict[str, Any]]:
        return sf.toolingexecute("query/?q=" + soql.replace(" ", "+"))["records"]

    triggers = query("SELECT Name FROM ApexTrigger WHERE Status = 'Active'")
    return {"ApexTrigger": sorted(t["Name"] for t in triggers),
            "ValidationRule": sorted(r["ValidationName"] for r in query(
                "SELECT ValidationName FROM ValidationRule WHERE Active = true")),
            "Flow": sorted(f["DeveloperName"] for f in query(
                "SELECT DeveloperName FROM FlowDefinition WHERE ActiveVersionId != null"))}


def test_automations_are_off_during_the_seed_and_back_on_after(orgs: dict[str, Org],
                                                               config_path: Path) -> None:
    dev, config = orgs["dev"], load_config(config_path)
    before = active(dev)
    assert before["ApexTrigger"] and before["ValidationRule"] and before["Flow"]
    plan = seed_plan(config, request(method="clean_and_insert", disable_automations=True))
    assert "KeyAccountOnboarding" in " ".join(plan.automations["switch_off"]["ApexTrigger"])
    result = seed_run(config, request(method="clean_and_insert", disable_automations=True))
    assert result.seed["status"] == "COMPLETED" and result.seed["disable_automations"]
    assert result.seed["api_calls"] == plan.api_calls  # switching off and on priced too
    assert set(result.seed["automations_to_disable"]) >= {"ApexTrigger", "ValidationRule", "Flow"}
    seeded = id_map(config_path, "dev")
    key_accounts = [a for s, a in store_rows(config_path, "Account").items()
                    if s in seeded and a["Is_Key_Account__c"]]
    assert key_accounts  # the onboarding trigger would have made a Task for each
    assert set(dev.dump("Task")) == {t for s, (o, t) in seeded.items() if o == "Task"}  # no trigger ran
    assert active(dev) == before


def _ledger_len(config_path: Path) -> int:
    return len(seeds(load_config(config_path), SeedsRequest()).seeds)


def files(config_path: Path) -> dict[str, tuple[int, int]]:
    """Every file of the storage folder with its size and modification time."""
    root = Path(load_config(config_path).storage.path)
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file()}


@pytest.mark.parametrize(("to_org", "method", "words"), [
    ("full", "clean_and_insert", "refused on a full copy sandbox"),
    ("prod", "clean_and_insert", "refused on a production org"),
    ("prod", "incremental", "seeding into production is refused"),
])
def test_refused_seeds_write_nothing(orgs: dict[str, Org], config_path: Path, to_org: str, method: str,
                                     words: str) -> None:
    before, since, disk = _ledger_len(config_path), orgs[to_org].last_seq(), files(config_path)
    with pytest.raises(SeedRefused, match=words):
        seed_run(load_config(config_path), request(to_org=to_org, method=method))
    assert not orgs[to_org].writes_since(since)
    assert _ledger_len(config_path) == before and files(config_path) == disk


def test_production_is_planned_only_when_allowed(orgs: dict[str, Org], config_path: Path) -> None:
    since = orgs["prod"].last_seq()
    with pytest.raises(SeedRefused, match="capped at 10,000 records"):
        seed_plan(load_config(config_path), request(to_org="prod"))
    plan = seed_plan(load_config(config_path), request(to_org="prod", allow_production=True))
    assert 0 < sum(o.records for o in plan.objects) <= 10_000
    assert not orgs["prod"].writes_since(since)


BAD = {
    "bad object": ('[root]\nobject = "Acount"\n', "root.object: 'Acount' is not an object of the target org"),
    "bad field": ('[root]\nobject = "Account"\nfilter = [{ field = "Nope__c", value = 1 }]\n',
                  "root.filter[0].field: Account has no field 'Nope__c' in the backup"),
    "bad value": ('[root]\nobject = "Account"\n'
                  'filter = [{ field = "CreatedDate", op = ">", value = "soon" }]\n',
                  "root.filter[0].value: 'soon' is not a valid timestamp"),
    "bad relationship": ('[root]\nobject = "Account"\n[[root.children]]\nrelationship = "Contactz"\n',
                         "root.children[0].relationship: Account has no child relationship 'Contactz'"),
    "bad mask": ('[root]\nobject = "Account"\n[objects.Account]\nmask = { Phone = "scramble" }\n',
                 "objects.Account.mask.Phone: 'scramble' is not a masking kind"),
    "bad mask field": ('[root]\nobject = "Account"\n[objects.Account]\nmask = { Phonez = "phone" }\n',
                       "objects.Account.mask.Phonez: Account has no field 'Phonez'"),
    "bad external id": ('[root]\nobject = "Account"\n[objects.Account]\nexternal_id = "Phone"\n',
                        "objects.Account.external_id: Account.Phone is not an external id field"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_templates_get_one_line_naming_file_and_key(orgs: dict[str, Org], config_path: Path,
                                                        tmp_path: Path, case: str) -> None:
    text, message = BAD[case]
    template = tmp_path / "broken.toml"
    template.write_text(text, encoding="utf-8")
    before, since, disk = _ledger_len(config_path), orgs["dev"].last_seq(), files(config_path)
    with pytest.raises(TemplateProblem) as caught:
        seed_run(load_config(config_path), request(template=str(template), method="upsert"))
    assert str(caught.value).startswith(f"broken.toml: {message}")
    assert "\n" not in str(caught.value)
    assert not orgs["dev"].writes_since(since) and _ledger_len(config_path) == before
    assert files(config_path) == disk


def cli(config_path: Path) -> tuple[list[str], dict[str, str]]:
    """The command line (a child process, as a user runs it) and its environment."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-c", "from replicator.cli import main; main()", "--config", str(config_path)]
    return command, env


def test_cli_plans_and_refuses_in_one_line(orgs: dict[str, Org], config_path: Path) -> None:
    base, env = cli(config_path)
    plan = subprocess.run([*base, "seed", "plan", "accounts_360", "--to-org", "dev", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert plan.returncode == 0, plan.stderr
    assert {o["object"] for o in json.loads(plan.stdout)["objects"]} >= {"Account", "Contact", "Task"}
    refused = subprocess.run([*base, "seed", "run", "accounts_360", "--to-org", "full", "--method",
                              "clean_and_insert"], capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "full copy sandbox" in refused.stderr
    listed = subprocess.run([*base, "seed", "templates", "--json"], capture_output=True, text=True, env=env,
                            timeout=120)
    names = {t["name"]: t for t in json.loads(listed.stdout)["templates"]}
    assert names["recent_by_country"]["params"] == ["country", "years"]
    unset = subprocess.run([*base, "seed", "plan", "recent_by_country", "--to-org", "dev",
                            "--param", "years=2"], capture_output=True, text=True, env=env, timeout=300)
    assert unset.returncode != 0 and "Traceback" not in unset.stderr
    assert "recent_by_country.toml: root.filter[0].value: cannot render '{{ param.country }}'" in unset.stderr


def test_circular_lookups_land_through_the_second_pass(orgs: dict[str, Org], config_path: Path,
                                                       tmp_path: Path) -> None:
    template = tmp_path / "regions.toml"
    # Code__c is unique, but the emulator generates every region with the same code: left out
    template.write_text('[root]\nobject = "Region__c"\n[[root.children]]\nrelationship = "Offices__r"\n'
                        '[objects.Region__c]\nexclude = ["Code__c"]\n', encoding="utf-8")
    result = seed_run(load_config(config_path), request(template=str(template), method="clean_and_insert"))
    failed = [o for o in outcomes(config_path, result.seed["id"]) if o["status"] == "failed"]
    assert result.seed["status"] == "COMPLETED" and not failed
    assert sum(c.get("relinked", 0) for c in result.counts.values()) >= 1  # one side waited for the other
    seeded, dev = id_map(config_path, "dev"), orgs["dev"]
    regions, offices = dev.dump("Region__c"), dev.dump("Office__c")
    assert len(regions) == len(store_rows(config_path, "Region__c"))
    cycles = 0
    for obj, field, truth in (("Region__c", "Primary_Office__c", regions),
                              ("Office__c", "Region__c", offices)):
        for src_id, src in store_rows(config_path, obj).items():
            if src_id not in seeded:
                continue
            target = truth[seeded[src_id][1]]
            assert target[field] == (seeded[src[field]][1] if src[field] else None), (obj, src_id)
            if obj == "Region__c" and src[field]:
                cycles += offices[target[field]]["Region__c"] == target["Id"]
    assert cycles >= 1  # a region and its primary office point at each other in the sandbox


def test_a_seed_killed_mid_load_is_aborted_and_an_incremental_rerun_finishes_it(
        orgs: dict[str, Org], config_path: Path) -> None:
    dev = orgs["dev"]
    base, env = cli(config_path)
    status = Path(load_config(config_path).storage.path) / "seeds"
    before = {p.name for p in status.glob("*.json")}
    before_automations = active(dev)
    dev.control("PUT", "faults", {"slow_ms": 300})
    try:
        proc = subprocess.Popen([*base, "seed", "run", "accounts_360", "--to-org", "dev", "--method",
                                 "clean_and_insert", "--disable-automations", "--json"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline, running = time.monotonic() + 240, None
        while time.monotonic() < deadline and running is None:
            for path in set(status.glob("*.json")) - {status / n for n in before}:
                data = json.loads(path.read_text(encoding="utf-8") or "{}")
                if data.get("insert_success_records", 0) > 0:
                    running = data
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        dev.control("PUT", "faults", {})
    assert running is not None and running["status"] == "RUNNING"
    shown = subprocess.run([*base, "seeds", "show", str(running["id"]), "--json"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert json.loads(shown.stdout)["status"] == "RUNNING"  # until the next seed looks
    assert active(dev) != before_automations  # the killed seed left them off, journaled

    rerun = seed_run(load_config(config_path), request(method="incremental", disable_automations=True))
    assert active(dev) == before_automations  # back on: the killed seed's and this seed's
    assert rerun.seed["status"] == "COMPLETED" and rerun.seed["duplicated_records"] > 0
    assert seeds(load_config(config_path), SeedsRequest(running["id"])).seeds[0]["status"] == "ABORTED"
    seeded = id_map(config_path, "dev")
    plan = {o.object: o for o in seed_plan(load_config(config_path), request(method="incremental")).objects}
    for obj in ("Account", "Contact", "Opportunity", "Case"):
        copies = {t for s, (o, t) in seeded.items() if o == obj}
        assert set(dev.dump(obj)) == copies and plan[obj].records == 0, obj  # each record once, none left
    for obj, fields in REFERENCES.items():  # deferred lookups the killed seed never set are set now
        truth, source = dev.dump(obj), store_rows(config_path, obj)
        for src_id, (o, tgt_id) in seeded.items():
            if o == obj and src_id in source:
                for name in fields:
                    value = source[src_id][name]
                    assert truth[tgt_id][name] == (seeded[value][1] if value in seeded else None), (obj, name)
    since = dev.last_seq()
    seed_run(load_config(config_path), request(method="incremental"))
    assert not dev.writes_since(since)  # and nothing is left to do
