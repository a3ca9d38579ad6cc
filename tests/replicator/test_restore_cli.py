"""`replicator restore plan|run|retry`, `restores`: the commands over the emulator, and bad input.

Bad input (unknown run, object, field, Id or org, an empty selection, a hostile filter value,
refused credentials, a plan file that is not one or comes from another store) is one line on stderr
with exit code 1, no traceback, and leaves the store folder byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from test_backup_e2e import PASSWORD_ENV
from test_restore import config, config_path, org  # noqa: F401  (fixtures)

from replicator.cli import cli


def replicator(settings: Any, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["--config", str(settings.path), *args], env=env, catch_exceptions=False)


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file of the store folder and its content hash, but the audit trail (which records
    refused commands too, by design)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith("audit.")}


def test_bad_input_is_one_line_and_changes_nothing(org, config, tmp_path) -> None:  # noqa: F811
    store = config.storage.path
    sf = org.sf()
    account = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    wrong_store = tmp_path / "other.json"
    wrong_store.write_text(json.dumps({"format": "replicator-restore-plan/1", "run_id": 1,
                                       "run_ts": "2001-01-01", "target": "emu",
                                       "records": {"Account": [account]}}))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    before = fingerprint(store)
    plan = ["restore", "plan", "--object", "Account"]
    cases = [
        ([*plan, "--run", "99", "--ids", account], "run 99 does not exist"),
        (["restore", "plan", "--object", "Nope__c", "--ids", account], "no object Nope__c"),
        ([*plan, "--where", "Nope__c = 1"], "Account has no field Nope__c"),
        ([*plan, "--where", "Name"], "a filter is FIELD = value"),
        ([*plan, "--ids", "001000000000000AAA"], "no record 001000000000000AAA"),
        (["restore", "run", "--object", "Account", "--ids", "x' OR '1'='1"], "not a Salesforce Id"),
        (["restore", "run", "--object", "Account", "--where", "Name = x' OR '1'='1"],
         "no Account record as of the chosen run has Name = \"x' OR '1'='1\""),
        ([*plan, "--where", "AnnualRevenue = lots"], "is not a value of"),
        ([*plan, "--ids", account, "--to-org", "nope"], "no org named 'nope'"),
        (["restore", "run", "--plan", str(garbage)], "is not a readable restore plan"),
        (["restore", "run", "--plan", str(wrong_store)], "was made from another store"),
        (["restore", "retry", "42"], "restore 42 does not exist"),
        (["restores", "show", "42"], "restore 42 does not exist"),
    ]
    for args, message in cases:
        result = replicator(config, *args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output and "Traceback" not in result.output, (args, result.output)
        assert result.output.strip().count("\n") == 0, result.output
    refused = replicator(config, *plan, "--ids", account, env={PASSWORD_ENV: "wrong password"})
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert refused.output.strip().count("\n") == 0
    assert "wrong password" not in refused.output
    assert fingerprint(store) == before
    assert replicator(config, "restores").output == "no restores yet\n"


def test_plan_saved_then_run_and_the_ledger_shown(org, config, tmp_path) -> None:  # noqa: F811
    sf = org.sf()
    account = sf.query("SELECT Id, Name FROM Account WHERE Phone != null LIMIT 1")["records"][0]
    sf.Account.update(account["Id"], {"Phone": "+1 555 0123"})
    saved = tmp_path / "plan.json"
    shown = replicator(config, "restore", "plan", "--object", "Account", "--where",
                       f"Name = '{account['Name']}'", "--out", str(saved), "--json")
    assert shown.exit_code == 0, shown.output
    plan = json.loads(shown.output)
    assert plan["objects"]["Account"]["update"] >= 1 and plan["api_calls"] == 1
    assert json.loads(saved.read_text())["records"]["Account"] == plan["records"]["Account"]
    ran = replicator(config, "restore", "run", "--plan", str(saved))
    assert ran.exit_code == 0, ran.output
    assert "Account: inserted 0, updated 1" in ran.output
    assert sf.Account.get(account["Id"])["Phone"] != "+1 555 0123"
    listed = replicator(config, "restores")
    assert listed.output.startswith("1  restore into emu from run 1  completed  updated 1; 1 calls")
    records = json.loads(replicator(config, "restores", "show", "1", "--json").output)["records"]
    assert records == [{"sobject": "Account", "source_id": account["Id"], "target_id": account["Id"],
                        "action": "update", "status": "ok", "error_code": None, "error_message": None}]


def test_a_restore_killed_mid_load_leaves_no_automation_off(org, config, tmp_path) -> None:  # noqa: F811
    """SIGKILL while the load writes (validation rules off): `automations restore` switches them back."""
    from test_restore import families, purge, validation_rule_active

    sf = org.sf()
    (_, _), (bad, kids) = families(sf)
    purge(org, sf, bad, kids)
    since = org.control("GET", "ledger")["last_seq"]
    org.control("PUT", "faults", {"slow_ms": 400})  # slow writes: the kill lands inside the load
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")]),
           "REPLICATOR_E2E_PASSWORD": org.password, "REPLICATOR_E2E_SECRET": org.client_secret}
    process = subprocess.Popen(
        [sys.executable, "-m", "replicator", "--config", str(config.path), "restore", "run", "--object",
         "Account", "--ids", bad, "--with-related", "children", "--disable-automations", "--json"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
                c["method"] == "POST" and "composite" in c["path"]
                for c in org.control("GET", f"ledger?since={since}")["calls"]):
            assert process.poll() is None, "the restore ended before it loaded"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
        org.control("PUT", "faults", {})
    assert not validation_rule_active(sf, "Account_Credit_Terms")  # killed with the rules off
    restored = replicator(config, "automations", "restore", "--org", "emu")
    assert restored.exit_code == 0 and "were switched back on" in restored.output, restored.output
    assert validation_rule_active(sf, "Account_Credit_Terms")
    assert validation_rule_active(sf, "Contact_Phone_Format")
