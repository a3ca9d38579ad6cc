"""One contract for every job: `job(config, request) -> result` that renders itself, errors from one
root, and one place in the CLI mapping them (exit code 1; `{"ok": false, "error": ...}` under --json;
never a traceback)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from export_data import build, tid

from replicator.cli import cli
from replicator.config import load_config
from replicator.errors import InvalidInput, NotFound
from replicator.export import DiffRequest, ExportRequest, run_diff, run_export
from replicator.query import (
    ExportsRequest,
    HistoryRequest,
    RunRequest,
    RunsRequest,
    SqlRequest,
    exports_ledger,
    history,
    run_show,
    runs,
    sql,
)
from replicator.settings import check_config, show_config

FLAG = "--"  # library messages never name CLI flags


@pytest.fixture
def config_path(tmp_path: Path, tmp_config) -> Path:
    build(tmp_path / "store").store.close()
    return tmp_config('[storage]\npath = "store"\n')


def test_jobs_return_results_that_render_as_text_and_json(config_path: Path, tmp_path: Path) -> None:
    config = load_config(config_path)
    exported = run_export(config, ExportRequest(out=tmp_path / "out", objects=("Thing__c",)))
    changed = run_diff(config, DiffRequest("1", tmp_path / "diff"))
    results = [runs(config, RunsRequest()), run_show(config, RunRequest(2)), exported, changed,
               sql(config, SqlRequest('SELECT count(*) AS n FROM "Thing__c"', as_of="1")),
               history(config, HistoryRequest("Thing__c", tid(1))),
               exports_ledger(config, ExportsRequest()), check_config(config), show_config(config)]
    for result in results:
        assert result.exit_code == 0
        assert result.text().strip(), type(result).__name__
        json.dumps(result.to_json())
    assert [r["run_id"] for r in results[0].to_json()] == [2, 1]
    assert results[4].to_json() == [{"n": 12}]
    assert "Thing__c" in results[6].text() and exported.rows == {"Thing__c": 12}


def test_jobs_raise_the_error_root_with_messages_free_of_flags(config_path: Path, tmp_path: Path) -> None:
    config = load_config(config_path)
    failures = [
        (NotFound, lambda: run_show(config, RunRequest(99))),
        (NotFound, lambda: history(config, HistoryRequest("Nope__c", "x"))),
        (InvalidInput, lambda: sql(config, SqlRequest("SELECT 1", as_of="yesterday"))),
        (InvalidInput, lambda: sql(config, SqlRequest("SELECT nope FROM nowhere"))),
        (InvalidInput, lambda: run_export(config, ExportRequest())),
        (InvalidInput, lambda: run_export(config, ExportRequest(out=tmp_path / "o", format="sql"))),
        (InvalidInput, lambda: run_export(config, ExportRequest(run="latest", out=tmp_path / "o"))),
        (NotFound, lambda: run_diff(config, DiffRequest("9", tmp_path / "d"))),
    ]
    for kind, call in failures:
        with pytest.raises(kind) as info:
            call()
        assert FLAG not in info.value.message, info.value.message


def test_cli_maps_any_job_error_to_exit_1_and_a_json_error(config_path: Path) -> None:
    runner = CliRunner()
    base = ["--config", str(config_path)]
    text = runner.invoke(cli, [*base, "runs", "show", "99"])
    assert text.exit_code == 1 and "Error: no run 99" in text.stderr and text.exception is not None
    assert "Traceback" not in text.output
    as_json = runner.invoke(cli, [*base, "runs", "show", "99", "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout) == {"ok": False, "error": {"kind": "not_found", "message": "no run 99",
                                                                 "key": None}}
    bad_run = runner.invoke(cli, [*base, "diff", "--from", "x", "--out", "d", "--json"])
    assert bad_run.exit_code == 1 and json.loads(bad_run.stdout)["error"]["kind"] == "invalid_input"


def test_demo_without_the_emulator_says_which_extra_to_install(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "sfemu", None)  # as if `replicator[emulator]` were not installed
    result = CliRunner().invoke(cli, ["demo", "--state-dir", str(tmp_path / "demo")])
    assert result.exit_code == 1
    assert "pip install 'replicator[emulator]'" in result.output
    assert not (tmp_path / "demo").exists()
