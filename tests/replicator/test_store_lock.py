"""Every writer takes the store's one lock: an export or a diff while another process writes is refused
with a sentence naming the holder (what, job, pid, start), not DuckDB's own lock error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from export_data import build

from replicator.cli import cli
from replicator.errors import Locked
from replicator.export import diff_files, export
from replicator.store.layout import Layout
from replicator.store.lock import StoreLocked, holder_of, writer_lock
from replicator.store.repository import NoBackups, Repository

HOLD = """
import sys, time
from pathlib import Path
from replicator.store.layout import Layout
from replicator.store.lock import writer_lock
with writer_lock(Layout(Path(sys.argv[1])), "backup", "nightly"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    build(tmp_path / "store").store.close()
    return tmp_path / "store"


@pytest.fixture
def other_writer(storage: Path) -> Iterator[subprocess.Popen]:
    """A second process holding the writer lock, as a running backup does."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(storage)], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_export_and_diff_are_refused_naming_the_holder(storage: Path, other_writer: subprocess.Popen,
                                                       tmp_path: Path) -> None:
    holder = f"a backup is already running on {storage} (job nightly, pid {other_writer.pid}, started "
    for work in (lambda s: export(s, tmp_path / "out"), lambda s: diff_files(s, tmp_path / "d", 1, 2)):
        with pytest.raises(StoreLocked) as info, Repository(storage).open_write("export") as store:
            work(store)
        assert str(info.value).startswith(holder) and isinstance(info.value, Locked)
        assert info.value.holder["pid"] == other_writer.pid
    assert not (tmp_path / "out").exists() and not (tmp_path / "d").exists()
    assert holder_of(Layout(storage)) == info.value.holder


def test_cli_export_and_diff_while_a_backup_runs(storage: Path, other_writer: subprocess.Popen,
                                                 tmp_config: Callable[..., Path]) -> None:
    config = tmp_config('[storage]\npath = "store"\n')
    runner = CliRunner()
    for args in (["export", "--out", str(storage.parent / "out")],
                 ["diff", "--from", "1", "--to", "2", "--out", str(storage.parent / "d")]):
        done = runner.invoke(cli, ["--config", str(config), *args])
        assert done.exit_code == 1
        assert f"a backup is already running on {storage}" in done.output
        assert f"pid {other_writer.pid}" in done.output and "wait for it to finish" in done.output


def test_the_lock_is_released_on_close_and_names_what_holds_it(storage: Path, tmp_path: Path) -> None:
    with Repository(storage).open_write("export") as store:
        export(store, tmp_path / "out")
        assert holder_of(Layout(storage))["what"] == "export"
        with pytest.raises(StoreLocked, match=rf"^an export is already running on .* \(pid {os.getpid()}, "):
            Repository(storage).open_write("diff")
    assert holder_of(Layout(storage)) is None
    with writer_lock(Layout(storage), "compaction"), pytest.raises(StoreLocked, match=r"^a compaction is "):
        Repository(storage).open_write("export")


def test_no_backups_yet_is_one_not_found(tmp_path: Path) -> None:
    for open_store in (Repository(tmp_path).open_read, lambda: Repository(tmp_path).open_write("export")):
        with pytest.raises(NoBackups, match="no backups yet"):
            open_store()
    assert not Repository(tmp_path).has_backups()
