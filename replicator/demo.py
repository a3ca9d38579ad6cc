"""`replicator demo` (`make demo`): the product in one minute, against the org emulator.

It starts the emulator's demo org, backs it up, lets a simulated day of user activity happen
(updates, inserts, deletes), backs up again, and then shows time travel with plain SQL on the
snapshot store: one changed record's two versions and one record deleted in between. Everything
goes through the same code paths as a real org: config file, OAuth login over HTTPS, the backup run.

The emulator is driven as any client would drive it: `python -m sfemu start|churn|stop`, whose
output is JSON. The product never imports the emulator, so backup servers need not install it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replicator.backup.run import BackupRequest, run_backup
from replicator.config import load_config
from replicator.errors import ConfigProblem, OrgProblem
from replicator.history import record_history
from replicator.progress import Progress, Silent
from replicator.result import JobResult
from replicator.store.repository import Repository

__all__ = ["DemoRequest", "DemoResult", "DemoStep", "DemoTable", "run_demo", "write_config"]

PASSWORD_ENV = "REPLICATOR_DEMO_PASSWORD"
SECRET_ENV = "REPLICATOR_DEMO_CLIENT_SECRET"
DEMO_OBJECT = "Account"
DEMO_PORT = 8443
# A busier day than the default churn, so a 2,000-record org surely shows changes and deletions.
DEMO_RATES = {"update": 0.05, "insert": 0.01, "delete": 0.02, "undelete": 0.0}
AUDIT_FIELDS = frozenset({"LastModifiedDate", "LastModifiedById", "SystemModstamp"})


@dataclass(frozen=True)
class DemoRequest:
    """Where the emulator and the demo store live, how big the org is, and the seed of its data."""

    state_dir: Path = Path("var/demo")
    scale: int = 2000
    seed: int = 42


@dataclass
class DemoTable:
    """Rows of a query the story shows."""

    columns: list[str]
    rows: list[list[str]]


@dataclass
class DemoStep:
    """One chapter of the story: a title, then lines and tables in order."""

    title: str
    items: list[str | DemoTable] = field(default_factory=list)


@dataclass
class DemoResult(JobResult):
    """The story the demo tells, chapter by chapter."""

    steps: list[DemoStep] = field(default_factory=list)

    def text(self) -> str:
        """Chapters under `== title ==`, tables as tab-separated rows."""
        lines = []
        for step in self.steps:
            lines.append(f"== {step.title} ==")
            for item in step.items:
                if isinstance(item, DemoTable):
                    lines += ["\t".join(item.columns), *("\t".join(row) for row in item.rows)]
                else:
                    lines.append(item)
        return "\n".join(lines)


def write_config(folder: Path, info: dict[str, Any]) -> Path:
    """A config.toml for the emulator's org; secrets go to the environment, as for a real org."""
    path = folder / "config.toml"
    path.write_text(textwrap.dedent(f"""\
        [storage]
        path = "store"

        [orgs.demo]
        login_url = "{info['base_url']}"
        auth = "password"
        username = "{info['username']}"
        password_env = "{PASSWORD_ENV}"
        client_id = "{info['client_id']}"
        client_secret_env = "{SECRET_ENV}"
        ca_bundle = "{info['ca_path']}"

        [jobs.daily]
        org = "demo"
        """))
    os.environ[PASSWORD_ENV] = info["password"]
    os.environ[SECRET_ENV] = info["client_secret"]
    return path


def _emulator(*args: str) -> str:
    """Run one `python -m sfemu` command; its stdout, or OrgProblem with what it said on failure."""
    done = subprocess.run([sys.executable, "-m", "sfemu", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise OrgProblem(f"the emulator's {args[0]} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
    return done.stdout


def run_demo(request: DemoRequest, progress: Progress = Silent()) -> DemoResult:
    """Emulator up, backup, churn, backup, time travel, emulator down.

    The one job without a config argument: it writes its own config for the org it starts.
    """
    if importlib.util.find_spec("sfemu") is None:
        raise ConfigProblem("the demo needs the org emulator: pip install 'replicator[emulator]'")
    state_dir, emulator_dir = request.state_dir, request.state_dir / "emulator"
    shutil.rmtree(state_dir / "store", ignore_errors=True)  # every demo starts from an empty store
    progress.phase(f"Starting the emulator ({request.scale:,}-record demo org)...")
    info = json.loads(_emulator("start", "--state-dir", str(emulator_dir), "--port", str(DEMO_PORT),
                                "--scale", str(request.scale), "--seed", str(request.seed), "--reset-data"))
    try:
        config = load_config(write_config(state_dir, info))
        first = DemoStep("1. First backup (full)", [_backup(config, progress)])
        rates = [arg for kind, rate in DEMO_RATES.items() for arg in ("--rate", f"{kind}={rate}")]
        report = json.loads(_emulator("churn", "--url", info["base_url"], "--ca", info["ca_path"],
                                      "--days", "1", *rates))
        done = report["reports"][0]["counts"].get(DEMO_OBJECT, {})
        churn = DemoStep("2. A simulated day of user activity",
                         [f"{DEMO_OBJECT}: {done}; org clock now {report['clock']}"])
        second = DemoStep("3. Second backup (incremental)", [_backup(config, progress)])
        travel = DemoStep("4. Time travel", _time_travel(config.storage.path))
    finally:
        _emulator("stop", "--state-dir", str(emulator_dir))
    return DemoResult([first, churn, second, travel])


def _backup(config: Any, progress: Progress) -> str:
    result = run_backup(config, BackupRequest("daily"), progress)
    return (f"run {result.run_id}: {result.status} - {result.message} "
            f"({result.api_calls} API calls, {result.seconds:.1f} s)")


def _time_travel(storage: Path) -> list[str | DemoTable]:
    items: list[str | DemoTable] = []
    with Repository(storage).open_read() as store:
        changed = store.reads.sql(
            f'SELECT a."Id" FROM "{DEMO_OBJECT}_as_of"(1) a JOIN "{DEMO_OBJECT}_as_of"(2) b USING ("Id") '
            f'WHERE a."SystemModstamp" <> b."SystemModstamp" ORDER BY a."Id" LIMIT 1', None)
        gone = store.reads.sql(
            f'SELECT "Id" FROM "{DEMO_OBJECT}_as_of"(1) WHERE "Id" NOT IN '
            f'(SELECT "Id" FROM "{DEMO_OBJECT}_as_of"(2)) ORDER BY "Id" LIMIT 1', None)
        for title, table in (("changed", changed), ("deleted", gone)):
            if table.num_rows:
                items += _record_story(store, title, table.column("Id")[0].as_py())
            else:
                items.append(f"no {title} {DEMO_OBJECT} between the two runs")
    items.append(f"Query it yourself: .venv/bin/replicator --config {storage.parent / 'config.toml'} "
                 f"sql 'SELECT count(*) FROM {DEMO_OBJECT}' --as-of 1")
    return items


def _record_story(store: Any, title: str, record_id: str) -> list[str | DemoTable]:
    """The record's versions, with the fields its last version changed (audit stamps aside)."""
    versions = record_history(store, DEMO_OBJECT, record_id)
    moved = [f for f in versions[-1].changed if f not in AUDIT_FIELDS][:3] if len(versions) > 1 else []
    columns = ["Id", "Name", *[f for f in moved if f != "Name"], "SystemModstamp"]
    select = ", ".join(f'"{c}"' for c in columns)
    query = f"SELECT {select}, _run_id, _deleted FROM \"{DEMO_OBJECT}_history\"(?) ORDER BY _valid_from"
    rows = store.reads.read(query, [record_id])
    return [f"A {title} {DEMO_OBJECT} ({record_id}): {query}",
            DemoTable(rows.column_names, [["" if v is None else str(v) for v in row.values()]
                                          for row in rows.to_pylist()])]
