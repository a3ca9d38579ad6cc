"""Starting and stopping an emulator as a background process (`python -m sfemu serve`).

Tests, benchmarks and demos drive a real server over real HTTPS, as a user would run it; the
ready file tells them when the socket accepts connections and how to connect.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

READY_TIMEOUT = 900.0


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_emulator(state_dir: Path, port: int, scale: int, seed: int,
                   extra: list[str] | None = None) -> tuple[subprocess.Popen, Path]:
    """Launch `python -m sfemu serve` in the background; returns (process, ready file)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ready = state_dir / "ready.json"
    ready.unlink(missing_ok=True)
    command = [sys.executable, "-m", "sfemu", "serve", "--state-dir", str(state_dir),
               "--port", str(port if port_free(port) else 0), "--scale", str(scale), "--seed", str(seed),
               "--ready-file", str(ready), *(extra or [])]
    # the log holds what `serve` prints, passwords included: the owner's alone
    log_fd = os.open(state_dir / "emulator.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(log_fd, 0o600)  # a log left by an older version keeps its mode through O_CREAT
    with os.fdopen(log_fd, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    return process, ready


def wait_ready(process: subprocess.Popen, ready: Path, log: Path, timeout: float = READY_TIMEOUT) -> dict:
    """The ready file's contents once the server accepts connections; raises if it dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            raise RuntimeError(f"the emulator exited with code {process.returncode}:\n{tail}")
        if ready.exists():
            try:
                return json.loads(ready.read_text())
            except json.JSONDecodeError:
                pass  # caught mid-write
        time.sleep(0.2)
    raise RuntimeError(f"the emulator was not ready after {timeout:.0f} s (see {log})")


def stop_pid(pid: int, timeout: float = 30.0) -> bool:
    """Stop a detached emulator by its pid (from its ready file): SIGTERM, then SIGKILL after `timeout`.

    Returns False when no such process was running. Used by `sfemu stop`, so a script that started an
    emulator with `sfemu start` can end it without holding a process handle.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
