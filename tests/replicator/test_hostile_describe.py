"""One object whose describe fails (issue 13): that object fails, by name, the others are backed up.

The emulator's `describe_fail_objects` fault answers the describe of named objects with 404
NOT_FOUND, as an org does when a permission change hides an object between describeGlobal and
its describe. Before, the whole run failed with a message that named no object.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_backup_e2e import PASSWORD_ENV, SECRET_ENV, config_text

from replicator.backup.run import BackupRequest, run_backup
from replicator.cli import cli
from replicator.config import load_config

OBJECTS = ["Account", "Contact", "Case"]


@pytest.fixture
def org(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv(PASSWORD_ENV, emulator.password)
    monkeypatch.setenv(SECRET_ENV, emulator.client_secret)
    emulator.control("PUT", "faults", {"describe_fail_objects": ["Contact"]})
    yield emulator
    emulator.control("PUT", "faults", {})


@pytest.fixture
def job(org: Any, tmp_config: Callable[..., Path]) -> Path:
    return tmp_config(config_text(org, selection=f"include = {json.dumps(OBJECTS)}"))


def test_a_failed_describe_fails_that_object_only_and_the_run_is_partial(org: Any, job: Path) -> None:
    result = run_backup(load_config(job), BackupRequest("daily"))
    sections = {s.object: s for s in result.sections}
    assert result.status == "partial", result.message
    assert "describe failed: Contact" in result.message
    assert sections["Contact"].status == "failed"
    assert sections["Contact"].message == ("describe failed: 404 NOT_FOUND "
                                           "The requested resource does not exist")
    assert sections["Account"].status == sections["Case"].status == "ok"
    assert sections["Account"].items > 0

    org.control("PUT", "faults", {})  # the object is back: the next run describes it again
    healed = run_backup(load_config(job), BackupRequest("daily"))
    assert healed.status == "completed", healed.message
    assert {s.object: s.status for s in healed.sections}["Contact"] == "ok"


def test_naming_the_undescribable_object_fails_it_by_name(org: Any, job: Path) -> None:
    result = run_backup(load_config(job), BackupRequest("daily", objects=["Contact", "Case"]))
    assert result.status == "partial"
    assert [(s.object, s.status) for s in sorted(result.sections, key=lambda s: s.object)] == [
        ("Case", "ok"), ("Contact", "failed")]


def test_catalog_marks_the_object_whose_describe_failed(org: Any, job: Path) -> None:
    out = CliRunner().invoke(cli, ["--config", str(job), "catalog", "--org", "emu", "--job", "daily"])
    assert out.exit_code == 0, out.output
    assert "! Contact: not backed up (describe failed: 404 NOT_FOUND" in out.output
    assert "+ Account:" in out.output
