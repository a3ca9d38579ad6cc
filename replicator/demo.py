"""`replicator demo` (`make demo`): the product in one minute, against the built-in org emulator.

It starts the emulator's demo org, backs it up, lets a simulated day of user activity happen
(updates, inserts, deletes), backs up again, and then shows time travel with plain SQL on the
snapshot store: one changed record's two versions and one record deleted in between. Everything
goes through the same code paths as a real org: config file, OAuth login over HTTPS, the backup run.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from replicator.backup.run import RichReporter, run_backup
from replicator.config import load_config

PASSWORD_ENV = "REPLICATOR_DEMO_PASSWORD"
SECRET_ENV = "REPLICATOR_DEMO_CLIENT_SECRET"
DEMO_OBJECT = "Account"
# A busier day than the default churn, so a 2,000-record org surely shows changes and deletions.
DEMO_CHURN = {"days": 1, "rates": {"update": 0.05, "insert": 0.01, "delete": 0.02, "undelete": 0.0}}
AUDIT_FIELDS = frozenset({"LastModifiedDate", "LastModifiedById", "SystemModstamp"})


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


def run_demo(state_dir: Path, scale: int, seed: int) -> None:
    """Emulator up, backup, churn, backup, time travel, emulator down."""
    from sfemu.cli import Control  # the demo is one of the few places that drive the emulator
    from sfemu.launch import start_emulator, stop, wait_ready

    console = Console()
    shutil.rmtree(state_dir / "store", ignore_errors=True)  # every demo starts from an empty store
    process, ready = start_emulator(state_dir / "emulator", 8443, scale, seed, ["--reset-data"])
    try:
        with console.status(f"Starting the emulator ({scale:,}-record demo org)..."):
            info = wait_ready(process, ready, state_dir / "emulator" / "emulator.log")
        config = load_config(write_config(state_dir, info))
        console.rule("[bold]1. First backup (full)")
        _backup(console, config)
        console.rule("[bold]2. A simulated day of user activity")
        report = Control(info["base_url"], info["ca_path"], None).call("POST", "churn", DEMO_CHURN)
        done = report["reports"][0]["counts"].get(DEMO_OBJECT, {})
        console.print(f"{DEMO_OBJECT}: {done}; org clock now {report['clock']}")
        console.rule("[bold]3. Second backup (incremental)")
        _backup(console, config)
        console.rule("[bold]4. Time travel")
        _time_travel(console, config.storage.path)
    finally:
        stop(process)


def _backup(console: Console, config: Any) -> None:
    with RichReporter(enabled=True) as reporter:
        result = run_backup(config, "daily", reporter=reporter)
    console.print(f"run {result.run_id}: [bold]{result.status}[/] - {result.message} "
                  f"({result.api_calls} API calls, {result.seconds:.1f} s)")


def _time_travel(console: Console, storage: Path) -> None:
    from replicator.history import record_history
    from replicator.store.repository import Repository

    store = Repository(storage).open_read()
    changed = store.reads.sql(
        f'SELECT a."Id" FROM "{DEMO_OBJECT}_as_of"(1) a JOIN "{DEMO_OBJECT}_as_of"(2) b USING ("Id") '
        f'WHERE a."SystemModstamp" <> b."SystemModstamp" ORDER BY a."Id" LIMIT 1', None)
    gone = store.reads.sql(
        f'SELECT "Id" FROM "{DEMO_OBJECT}_as_of"(1) WHERE "Id" NOT IN '
        f'(SELECT "Id" FROM "{DEMO_OBJECT}_as_of"(2)) ORDER BY "Id" LIMIT 1', None)
    for title, table in (("changed", changed), ("deleted", gone)):
        if not table.num_rows:
            console.print(f"no {title} {DEMO_OBJECT} between the two runs")
            continue
        record_id = table.column("Id")[0].as_py()
        versions = record_history(store, DEMO_OBJECT, record_id)
        # Show what the second version changed (audit stamps aside), so the difference is visible.
        moved = [f for f in versions[-1].changed if f not in AUDIT_FIELDS][:3] if len(versions) > 1 else []
        columns = ["Id", "Name", *[f for f in moved if f != "Name"], "SystemModstamp"]
        select = ", ".join(f'"{c}"' for c in columns)
        query = f"SELECT {select}, _run_id, _deleted FROM \"{DEMO_OBJECT}_history\"(?) ORDER BY _valid_from"
        console.print(f"[bold]A {title} {DEMO_OBJECT}[/] ({record_id}): {query}")
        _show(console, store.reads.read(query, [record_id]))
    console.print(f"Query it yourself: .venv/bin/replicator --config {storage.parent / 'config.toml'} "
                  f"sql 'SELECT count(*) FROM {DEMO_OBJECT}' --as-of 1")


def _show(console: Console, table: Any) -> None:
    out = Table(*table.column_names)
    for row in table.to_pylist():
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(out)
