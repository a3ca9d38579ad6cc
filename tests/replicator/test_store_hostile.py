"""A storage folder or database file that is not what Replicator expects: every command says what is
wrong with which file in one line, and nothing on disk changes (issue 13).

No org is needed: every command opens the store before it talks to Salesforce, so the login URL
points nowhere on purpose.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from replicator.cli import cli
from replicator.store.layout import MARKER
from replicator.store.repository import Repository

COMMANDS = (
    ("backup", "run"),
    ("runs",),
    ("sql", "SELECT 1"),
    ("history", "Account", "001000000000001AAA"),
    ("export", "--run", "last", "--format", "csv", "--out", "{out}"),
    ("check",),
)


def invoke(config: Path, *args: str) -> Any:
    """The CLI as a user runs it; an exception that escapes the error mapping fails the test."""
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` with a hash of its bytes (what "nothing changed" is checked against)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def config(tmp_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REPLICATOR_TEST_PASSWORD", "not-used")
    return tmp_config()


def run_everything(config: Path, expected: str) -> None:
    """Each command fails with one line holding `expected`, and the storage folder is unchanged."""
    storage = config.parent / "store"
    before = tree(storage)
    for command in COMMANDS:
        out = config.parent / "export-out"
        args = [part.format(out=out) for part in command]
        result = invoke(config, *args)
        lines = result.output.strip().splitlines()
        assert result.exit_code != 0, (command, result.output)
        assert len(lines) == 1 and expected in lines[0], (command, result.output)
        assert "Traceback" not in result.output
        assert tree(storage) == before, command
        assert not out.exists(), command


def test_a_folder_holding_other_files_is_refused_untouched(config: Path) -> None:
    """A storage path pointed at a share with its own `runs/` and `jobs/` must not lose them to a
    backup's clean-up of its run folders."""
    storage = config.parent / "store"
    (storage / "runs").mkdir(parents=True)
    (storage / "runs" / "report-2026.xlsx").write_bytes(b"quarterly numbers")
    (storage / "jobs").mkdir()
    (storage / "jobs" / "daily.json").write_text('{"someone": "else"}')
    before = tree(storage)
    result = invoke(config, "backup", "run")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        f"Error: the storage folder {storage} already holds files that are not a Replicator store "
        "(jobs, runs): choose an empty or new folder for storage.path"]
    assert tree(storage) == before


def test_an_empty_or_new_folder_is_claimed_and_a_marked_one_reopens(tmp_path: Path) -> None:
    fresh = Repository(tmp_path / "new" / "store")
    fresh.open_write("backup", "daily", create=True).close()
    assert (tmp_path / "new" / "store" / MARKER).is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "audit.jsonl").write_text("")  # commands before the first backup are audited there
    Repository(empty).open_write("backup", "daily", create=True).close()
    assert (empty / MARKER).is_file()
    # A store from before markers existed (its database, no marker) is recognised and marked.
    (empty / MARKER).unlink()
    (empty / "runs").mkdir()
    Repository(empty).open_write("backup", "daily").close()
    assert (empty / MARKER).is_file()


def real_store(config: Path) -> Path:
    """A Replicator store (ledger tables, no runs) where the config points; returns its database."""
    Repository(config.parent / "store").open_write("backup", "daily", create=True).close()
    return config.parent / "store" / "snapshot.duckdb"


@pytest.mark.parametrize("damage, expected", [
    ("zero", "is not a DuckDB database (empty, overwritten or another kind of file)"),
    ("text", "is not a DuckDB database (empty, overwritten or another kind of file)"),
    ("header", "is not a DuckDB database (empty, overwritten or another kind of file)"),
    ("truncated", "is damaged and cannot be opened (Could not read enough bytes"),
    ("scribbled", "is damaged and cannot be opened (Corrupt database file"),
])
def test_a_damaged_database_file_is_named_in_one_line(config: Path, damage: str, expected: str) -> None:
    database = real_store(config)
    good = database.read_bytes()
    assert len(good) > 16384
    damaged = {
        "zero": b"",
        "text": b"not a database\n" * 100,
        "header": os.urandom(4096) + good[4096:],
        "truncated": good[: len(good) // 2],
        "scribbled": good[:12288] + os.urandom(4096) + good[16384:],
    }[damage]
    database.write_bytes(damaged)
    run_everything(config, f"{database} {expected}")


def test_a_foreign_duckdb_database_gets_no_tables_added(config: Path) -> None:
    """Someone's own DuckDB file named snapshot.duckdb: no ledger table is ever added to it."""
    storage = config.parent / "store"
    storage.mkdir()
    database = storage / "snapshot.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE sales AS SELECT range AS amount FROM range(10)")
    run_everything(config, f"{database} is a DuckDB database but not a Replicator store")
    with duckdb.connect(str(database), read_only=True) as con:
        assert [t[0] for t in con.execute("SHOW TABLES").fetchall()] == ["sales"]


def test_a_store_held_open_by_another_process_is_named_in_use(config: Path) -> None:
    """DuckDB locks the file for a writer in another process: the reader is told who holds it."""
    import subprocess
    import sys

    database = real_store(config)
    (config.parent / "store" / MARKER).unlink()  # also the pre-marker path must say "in use"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); time.sleep(60)", str(database)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        for command in (("runs",), ("sql", "SELECT 1"), ("backup", "run")):
            result = invoke(config, *command)
            assert result.exit_code != 0 and "Traceback" not in result.output
            assert result.output.strip().splitlines() == [
                f"Error: the store {database} is open for writing by process {holder.pid} (a backup or "
                "another writer): try again when it has finished"], command
    finally:
        holder.kill()
        holder.wait()


def test_reads_during_a_backup_name_the_backup(config: Path) -> None:
    """While a backup holds the store, DuckDB lets no other process read it: `runs`, `sql` and
    `history` say which backup runs and that they work again when it has finished."""
    import subprocess
    import sys

    storage = config.parent / "store"
    real_store(config)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from replicator.store.repository import Repository; "
         "s = Repository(sys.argv[1]).open_write('backup', 'daily'); print('open', flush=True); "
         "time.sleep(60)", str(storage)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        for command in (("runs",), ("sql", "SELECT 1"), ("history", "Account", "001000000000001AAA")):
            result = invoke(config, *command)
            lines = result.output.strip().splitlines()
            assert result.exit_code != 0 and len(lines) == 1, (command, result.output)
            assert lines[0].startswith(f"Error: a backup is already running on {storage} (job daily, "
                                       f"pid {holder.pid}, started "), command
            assert lines[0].endswith("read commands work again when it has finished"), command
    finally:
        holder.kill()
        holder.wait()
