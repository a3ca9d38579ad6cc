"""Shared set-up of the backup benchmarks: an emulator subprocess, a config for it, a timed backup run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from sfemu.launch import start_emulator, stop, wait_ready

BIN = Path(sys.executable).parent


def emulator(root: Path, counts: dict[str, int], extra: list[str] | None = None) -> tuple[Any, dict]:
    args = ["--no-files", "--api-limit", "100000000", "--reset-data", *(extra or [])]
    for name, n in counts.items():
        args += ["--count", f"{name}={n}"]
    process, ready = start_emulator(root / "emulator", 0, 200, 42, args)
    return process, wait_ready(process, ready, root / "emulator" / "emulator.log", timeout=1800)


def config(root: Path, info: dict, objects: list[str] | None = None) -> Path:
    include = f"include = {json.dumps(objects)}\nrecommended = false" if objects else "recommended = true"
    path = root / "config.toml"
    path.write_text(textwrap.dedent(f"""\
        [storage]
        path = "store"
        [orgs.bench]
        login_url = "{info['base_url']}"
        auth = "password"
        username = "{info['username']}"
        password_env = "BENCH_PASSWORD"
        client_id = "{info['client_id']}"
        client_secret_env = "BENCH_SECRET"
        ca_bundle = "{info['ca_path']}"
        [jobs.bench]
        org = "bench"
        api_cap_percent = 100
        [jobs.bench.objects]
        """) + include + "\n")
    os.environ["BENCH_PASSWORD"], os.environ["BENCH_SECRET"] = info["password"], info["client_secret"]
    return path


def backup(path: Path, *args: str) -> dict[str, Any]:
    """One `replicator backup run --json` in a child process: its result, seconds and peak RSS (MiB)."""
    started = time.monotonic()
    command = [str(BIN / "replicator"), "--config", str(path), "backup", "run", "--json", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = json.loads(out)
    result.update(wall=time.monotonic() - started, rss_mib=usage.ru_maxrss / 1024)
    return result


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="replicator-bench-"))


def line(name: str, **values: Any) -> str:
    """The benchmark's one output line: `name key=value ...` (floats from 1 up with 1 decimal)."""
    def text(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.1f}" if abs(v) >= 1 else f"{v:.3g}"
        return str(v)
    return " ".join([name, *(f"{k}={text(v)}" for k, v in values.items())])


__all__ = ["backup", "config", "emulator", "line", "stop", "workdir"]
