"""The backup commands as a user runs them (`backup run`, `runs`, `runs show`, `sql`, `history`), and the
status rules users know from Backupify (95% of records; the same object failing 7 runs in a row)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_backup_e2e import SECRET_ENV, config_text

from replicator.backup.status import FAILED_RUNS_FOR_PARTIAL, decide_status
from replicator.cli import cli
from replicator.store.snapshot import Section


def test_backup_errors_are_invalid_input_and_locked() -> None:
    from replicator.backup.run import BackupError, RunInProgress
    from replicator.errors import InvalidInput, Locked
    from replicator.store.lock import StoreLocked

    assert issubclass(BackupError, InvalidInput) and issubclass(RunInProgress, StoreLocked)
    assert issubclass(RunInProgress, Locked) and RunInProgress("busy", {}).http_status == 409


def sections(*rows: tuple[str, str, int]) -> list[Section]:
    return [Section(object=o, status=s, org_count=n) for o, s, n in rows]


def test_ninety_five_percent_rule_and_chronic_failures() -> None:
    ok = sections(("Account", "ok", 960), ("Note", "failed", 40))
    assert decide_status(ok, {"Note": 1}, cap_hit=False)[0] == "completed"
    assert decide_status(ok, {"Note": FAILED_RUNS_FOR_PARTIAL}, cap_hit=False)[0] == "partial"
    less = sections(("Account", "ok", 940), ("Note", "failed", 60))
    status, message = decide_status(less, {"Note": 1}, cap_hit=False)
    assert status == "partial" and "94.0%" in message and "Note" in message
    assert decide_status(ok, {}, cap_hit=True)[0] == "partial"
    assert decide_status(sections(("Account", "failed", 5)), {"Account": 1}, cap_hit=False)[0] == "failed"


@pytest.fixture
def cli_job(emulator: Any, tmp_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REPLICATOR_E2E_PASSWORD", emulator.password)
    monkeypatch.setenv(SECRET_ENV, emulator.client_secret)
    return tmp_config(config_text(emulator))


def invoke(path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(path), *args], catch_exceptions=False)


def test_backup_run_then_inspect_runs_sql_and_history(cli_job: Path) -> None:
    run = invoke(cli_job, "backup", "run", "--json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["status"] == "completed"
    listed = json.loads(invoke(cli_job, "runs", "--json").output)
    assert listed[0]["status"] == "completed"
    shown = json.loads(invoke(cli_job, "runs", "show", str(listed[0]["run_id"]), "--json").output)
    account = next(s for s in shown["sections"] if s["object"] == "Account")
    assert account["org_count"] == account["store_count"] > 0
    rows = json.loads(invoke(cli_job, "sql", 'SELECT "Id", "Name" FROM "Account" ORDER BY "Id" LIMIT 2',
                             "--as-of", "1", "--json").output)
    assert len(rows) == 2
    csv_out = invoke(cli_job, "sql", 'SELECT count(*) AS n FROM "Account"', "--csv").output
    assert csv_out.splitlines()[0] == '"n"'
    history = json.loads(invoke(cli_job, "history", "Account", rows[0]["Id"], "--json").output)
    assert history[0]["run_id"] == 1 and history[0]["values"]["Name"] == rows[0]["Name"]
    bad = invoke(cli_job, "sql", "SELECT nope FROM nowhere")
    assert bad.exit_code == 1 and "Error" in bad.output
    assert_sql_reaches_only_the_store(cli_job)
    missing = invoke(cli_job, "runs", "show", "99")
    assert missing.exit_code == 1 and "no run 99" in missing.output


def test_object_lists_that_name_nothing_or_twice(cli_job: Path) -> None:
    """`--objects ,` is an error, never "the whole job", and writes nothing; a name given twice in
    different cases is one object (it used to crash inside dlt and leave a run 'running')."""
    storage = cli_job.parent / "store"
    for empty in (",", " , ,", ""):
        refused = CliRunner().invoke(cli, ["--config", str(cli_job), "backup", "run", "--objects", empty])
        assert refused.exit_code == 2 and "names no object" in refused.output
        assert "Traceback" not in refused.output
    assert not storage.exists() or not any(storage.iterdir())
    run = invoke(cli_job, "backup", "run", "--objects", "Account,account, ACCOUNT", "--json")
    assert run.exit_code == 0, run.output
    shown = json.loads(invoke(cli_job, "runs", "show", "1", "--json").output)
    assert shown["run"]["status"] == "completed"
    assert [s["object"] for s in shown["sections"]] == ["Account"]


def assert_sql_reaches_only_the_store(path: Path) -> None:
    """`sql` is a query tool, not a shell: files, other databases, extensions and settings are out of
    reach, each refusal one line (no traceback), and the store still answers afterwards."""
    hostile = [f"SELECT * FROM read_text('{path}')", "SELECT * FROM read_csv('/etc/passwd')",
               "SELECT * FROM glob('/etc/*')", "SELECT * FROM read_parquet('/tmp/*.parquet')",
               f"SELECT * FROM '{path}'", "SELECT * FROM sniff_csv('/etc/hostname')"]
    for query in hostile:
        refused = invoke(path, "sql", query)
        assert refused.exit_code == 1, (query, refused.output)
        assert "Traceback" not in refused.output and len(refused.output.strip().splitlines()) == 1
        assert "secret" not in refused.output.lower() and "password" not in refused.output.lower()
    for statement in ("INSTALL httpfs", "LOAD httpfs", "ATTACH '/tmp/other.duckdb'",
                      "SET enable_external_access = true", "COPY (SELECT 1) TO '/tmp/x.csv'"):
        refused = invoke(path, "sql", statement)
        assert refused.exit_code == 1 and "Traceback" not in refused.output, statement
    assert not Path("/tmp/other.duckdb").exists() and not Path("/tmp/x.csv").exists()
    assert invoke(path, "sql", 'SELECT count(*) AS n FROM "Account"', "--json").exit_code == 0


def test_clear_errors_before_any_backup(cli_job: Path, tmp_config: Callable[..., Path]) -> None:
    result = invoke(cli_job, "runs")
    assert result.exit_code == 1 and "no backups yet" in result.output
    wrong_job = invoke(cli_job, "backup", "run", "--job", "nightly")
    assert wrong_job.exit_code == 1 and "no such job" in wrong_job.output
