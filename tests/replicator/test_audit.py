"""The audit log: every command that reads or changes data is recorded once, in the seed's event shape,
hash-chained; `audit verify` names the first event altered, removed or moved; secrets never reach it."""

from __future__ import annotations

import itertools
import json
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_backup_e2e import SECRET_ENV, config_text

from replicator.audit import digest, masked
from replicator.cli import cli
from replicator.config import Secret
from replicator.store.audit_log import AuditLog, event_hash
from replicator.store.repository import Repository

SEED_FIELDS = {"event_id", "created_at", "ip_address", "key", "parameters", "source", "user_email", "user_id"}


def invoke(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


@pytest.fixture
def cli_job(emulator: Any, tmp_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REPLICATOR_E2E_PASSWORD", emulator.password)
    monkeypatch.setenv(SECRET_ENV, emulator.client_secret)
    monkeypatch.setenv("REPLICATOR_USER_EMAIL", "auditor@example.com")
    return tmp_config(config_text(emulator))


def test_commands_are_recorded_in_the_seed_shape_without_secrets(cli_job: Path, emulator: Any) -> None:
    log = cli_job.parent / "store" / "audit.jsonl"
    assert invoke(cli_job, "runs").exit_code == 1 and not log.exists()  # refused: no store, no event
    assert invoke(cli_job, "backup", "run", "--objects", "Account", "--json").exit_code == 0
    assert invoke(cli_job, "runs", "--json").exit_code == 0
    assert invoke(cli_job, "sql", 'SELECT count(*) AS n FROM "Account"').exit_code == 0
    assert invoke(cli_job, "config", "show").exit_code == 0
    before = log.read_bytes(), log.with_suffix(".head").read_bytes()
    assert invoke(cli_job, "runs", "show", "99").exit_code == 1  # unknown run: refused, not recorded
    usage = CliRunner().invoke(cli, ["--config", str(cli_job), "backup", "run", "--objects", ","])
    assert usage.exit_code == 2
    assert (log.read_bytes(), log.with_suffix(".head").read_bytes()) == before

    events = json.loads(invoke(cli_job, "audit", "--json").output)
    assert [e["key"] for e in events] == ["backup.run", "runs", "sql", "config.show"]
    assert [e["event_id"] for e in events] == [1, 2, 3, 4]
    first = events[0]
    assert set(first) >= SEED_FIELDS and first["created_at"].endswith(" GMT")
    assert first["source"] == "cli" and first["user_email"] == "auditor@example.com"
    assert first["parameters"]["objects"] == "Account" and first["parameters"]["outcome"]["status"] == "ok"
    assert first["parameters"]["outcome"]["run_id"] == 1  # the event leads to its run
    assert first["parameters"]["config_path"] == str(cli_job)
    assert events[2]["parameters"]["query"] == digest('SELECT count(*) AS n FROM "Account"')
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(events))
    text = log.read_text()
    assert emulator.password not in text and emulator.client_secret not in text

    later = json.loads(invoke(cli_job, "audit", "--from", "2", "--json").output)
    assert [e["event_id"] for e in later] == [3, 4]
    verified = invoke(cli_job, "audit", "verify", "--json")
    assert verified.exit_code == 0 and json.loads(verified.output)["ok"] is True
    assert json.loads(verified.output)["events"] == 4
    assert (log.read_bytes(), log.with_suffix(".head").read_bytes()) == before  # reading leaves both


def lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def write(log: Path, events: list[dict[str, Any]]) -> None:
    log.write_text("".join(json.dumps(e) + "\n" for e in events))


@pytest.fixture
def five_events(tmp_config: Callable[..., Path]) -> Path:
    config = tmp_config()
    Repository(config.parent / "store").open_write("backup", "daily", create=True).close()  # a store
    for _ in range(5):
        assert invoke(config, "config", "show").exit_code == 0
    assert len(lines(config.parent / "store" / "audit.jsonl")) == 5
    return config


def broken_at(config: Path) -> tuple[int, str]:
    result = invoke(config, "audit", "verify", "--json")
    assert result.exit_code == 1, result.output
    found = json.loads(result.output)
    assert found["ok"] is False
    text = invoke(config, "audit", "verify")
    assert text.output.count("\n") == 1 and "BROKEN" in text.output
    return found["broken"]["event_id"], found["broken"]["problem"]


def test_an_edited_event_is_named(five_events: Path) -> None:
    log = five_events.parent / "store" / "audit.jsonl"
    events = lines(log)
    events[2]["user_email"] = "someone@else"
    write(log, events)
    assert broken_at(five_events) == (3, "event 3 was altered (its content does not match its hash)")


def test_an_edited_and_rehashed_event_is_named(five_events: Path) -> None:
    log = five_events.parent / "store" / "audit.jsonl"
    events = lines(log)
    events[2]["parameters"]["outcome"]["status"] = "failed"
    events[2]["hash"] = event_hash(events[2])
    write(log, events)
    assert broken_at(five_events)[0] == 3


def test_a_removed_event_is_named(five_events: Path) -> None:
    log = five_events.parent / "store" / "audit.jsonl"
    events = lines(log)
    write(log, events[:2] + events[3:])
    event_id, problem = broken_at(five_events)
    assert event_id == 3 and "removed" in problem and "event 4 follows event 2" in problem
    write(log, events[1:])
    assert broken_at(five_events)[0] == 1


def test_events_cut_off_the_end_are_named(five_events: Path) -> None:
    log = five_events.parent / "store" / "audit.jsonl"
    events = lines(log)
    write(log, events[:4])
    assert broken_at(five_events) == (5, "event 5 removed from the end (the head records event 5, the "
                                         "log ends at 4)")
    write(log, events[:2])
    assert broken_at(five_events)[1].startswith("events 3 to 5 removed from the end")
    write(log, events)
    (five_events.parent / "store" / "audit.head").unlink()
    assert broken_at(five_events) == (6, "audit.head is missing: events after 5 may have been removed")


def test_reordered_events_are_named(five_events: Path) -> None:
    log = five_events.parent / "store" / "audit.jsonl"
    events = lines(log)
    write(log, [events[0], events[2], events[1], *events[3:]])
    assert broken_at(five_events)[0] == 2


def test_a_garbled_line_is_named_and_appends_go_on(five_events: Path) -> None:
    log = five_events.parent / "store" / "audit.jsonl"
    with open(log, "a") as f:
        f.write('{"event_id": 6, "torn')  # a crash mid-write
    assert invoke(five_events, "config", "show").exit_code == 0
    assert json.loads(log.read_text().splitlines()[-1])["event_id"] == 6
    assert broken_at(five_events) == (6, "line 6 is not an event (the file was edited)")


def _append_many(path: str, count: int) -> None:
    log = AuditLog(Path(path))
    for n in range(count):
        log.append({"key": "test", "parameters": {"n": n}})


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    workers = [multiprocessing.get_context("fork").Process(target=_append_many, args=(str(path), 40))
               for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    chain = AuditLog(path).verify()
    assert chain.broken is None and chain.events == 120


def test_a_folder_that_is_not_a_store_gets_no_event(tmp_config: Callable[..., Path]) -> None:
    config = tmp_config()
    assert invoke(config, "config", "show").exit_code == 0
    assert not (config.parent / "store").exists()
    (config.parent / "store").mkdir()
    (config.parent / "store" / "notes.txt").write_text("someone's folder")
    assert invoke(config, "config", "show").exit_code == 0
    assert [p.name for p in (config.parent / "store").iterdir()] == ["notes.txt"]


def test_secrets_and_personal_values_are_masked() -> None:
    given = {"password": "hunter2", "client_secret": "s", "api_token": "t", "key": "k", "new_key": "k",
             "email": "ann@example.com", "phone": "+1 555", "value": "Ann", "name": "Ann",
             "address": "1 Main St", "text": "Ann's notes",
             "secret_obj": Secret("X", "v"), "objects": "Contact", "key_env": "STORE_KEY"}
    out = masked("gdpr.search", given)
    assert {k for k, v in out.items() if v == "***"} == {
        "password", "client_secret", "api_token", "key", "new_key", "email", "phone", "value", "name",
        "address", "text", "secret_obj"}
    assert out["objects"] == "Contact" and out["key_env"] == "STORE_KEY"
    query = "SELECT * FROM Contact WHERE Email = 'ann@example.com'"
    recorded = masked("sql", {"query": query, "comment": "Ann asked", "record_id": "003000000000001AAA"})
    assert recorded["query"].startswith("sha256:") and "ann@example.com" not in json.dumps(recorded)
    assert recorded == {"query": digest(query), "comment": digest("Ann asked"),
                        "record_id": digest("003000000000001AAA")}
    assert masked("seed.run", {"params": ("email=ann@example.com",)}) == {
        "params": [digest("email=ann@example.com")]}
    assert masked("runs", {"name": "daily"}) == {"name": "daily"}


def test_every_command_but_the_audit_commands_is_audited() -> None:
    """Commands added by anyone are wrapped when the root hands them out (cli.Root.get_command)."""
    import click

    from replicator.cli.audit import MARK

    def leaves(group: click.Group, ctx: click.Context, prefix: str = "") -> list[tuple[str, click.Command]]:
        found = []
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            found.append((prefix + name, command))
            if isinstance(command, click.Group):
                found += leaves(command, ctx, prefix + name + " ")
        return found

    with click.Context(cli) as ctx:
        commands = [(path, c) for path, c in leaves(cli, ctx) if not path.startswith("emulator")]
    assert len(commands) > 15
    for path, command in commands:
        assert getattr(command, MARK, False), path
        audited = getattr(command.callback, MARK, False)
        assert audited == (not path.startswith("audit")), path
