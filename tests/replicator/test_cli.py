"""The `replicator` command line: help everywhere, version, config check/show with secrets masked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from replicator import __version__
from replicator.cli import cli

SECRET = "s3cr3t-value-do-not-log"


def _run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def _all_command_paths(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{' '.join((*prefix, name))} is listed but cannot be loaded"
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _all_command_paths(command, ctx, (*prefix, name))


def test_help_works_on_every_command():
    with click.Context(cli) as ctx:
        paths = list(_all_command_paths(cli, ctx))
    assert {("config",), ("config", "check"), ("config", "show"), ("emulator",), ("demo",)} <= set(paths)
    for path in [(), *paths]:
        result = _run(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: " in result.output and "--help" in result.output


def test_version():
    result = _run("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"replicator, version {__version__}"


def test_installed_console_script_runs():
    script = Path(sys.executable).parent / "replicator"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert __version__ in result.stdout


def test_config_check_summarises_a_valid_file(tmp_config):
    path = tmp_config()
    result = _run("--config", str(path), "config", "check", env={"REPLICATOR_TEST_PASSWORD": SECRET})
    assert result.exit_code == 0, result.output
    assert f"{path}: OK" in result.output
    assert "org demo: https://127.0.0.1:8443 (production, auth password, API v62.0)" in result.output
    assert "job daily: daily at 02:00 on org demo" in result.output


def test_config_check_json_reports_unset_secret_variables(tmp_config):
    result = _run("--config", str(tmp_config()), "config", "check", "--json",
                  env={"REPLICATOR_TEST_PASSWORD": ""})
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["orgs"]["demo"]["auth"] == "password"
    assert data["jobs"]["daily"] == {"org": "demo", "kind": "daily", "schedule": "02:00"}
    assert data["unset_env"] == ["REPLICATOR_TEST_PASSWORD"]


def test_config_path_comes_from_environment(tmp_config):
    path = tmp_config()
    result = _run("config", "check", env={"REPLICATOR_CONFIG": str(path)})
    assert result.exit_code == 0 and f"{path}: OK" in result.output


def test_invalid_config_fails_with_file_and_key(tmp_config):
    path = tmp_config('[orgs.x]\nlogin_url = "https://a"\nauth = "password"\nusername = "u"\n'
                      f'password = "{SECRET}"\n')
    result = _run("--config", str(path), "config", "check")
    assert result.exit_code == 1
    assert f"{path}: orgs.x.password: secrets may not be written" in result.output
    assert SECRET not in result.output

    result = _run("--config", str(path), "config", "check", "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["path"], error["key"]) == (str(path), "orgs.x.password")
    assert SECRET not in result.output


def test_missing_config_file_is_a_clear_error(tmp_path):
    result = _run("--config", str(tmp_path / "nope.toml"), "config", "show")
    assert result.exit_code == 1
    assert "nope.toml: file not found" in result.output


@pytest.mark.parametrize("as_json", [False, True])
def test_config_show_masks_secrets(tmp_config, as_json):
    path = tmp_config()
    args = ["--config", str(path), "config", "show", *(["--json"] if as_json else [])]
    result = _run(*args, env={"REPLICATOR_TEST_PASSWORD": SECRET})
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    if as_json:
        data = json.loads(result.stdout)
        password = data["orgs"]["demo"]["auth"]["password"]
        assert password == {"env": "REPLICATOR_TEST_PASSWORD", "value": "***", "set": True}
        assert data["orgs"]["demo"]["auth"]["method"] == "password"
        assert data["jobs"]["daily"]["objects"]["recommended"] is True
        assert data["storage"]["path"] == str(path.parent / "store")
    else:
        assert "password: *** (from $REPLICATOR_TEST_PASSWORD, set)" in result.output
        assert 'username: "admin@demo.replicator.local"' in result.output


def test_python_dash_m_runs_the_same_cli() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "replicator", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "Usage: replicator" in done.stdout, done.stderr
