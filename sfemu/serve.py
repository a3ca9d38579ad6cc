"""Running an emulated org: opening (or generating) it and serving it over HTTPS with uvicorn.

The ready file is written only once the socket accepts connections, so test harnesses and the
launcher (launch.py) never race the server.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from sfemu.app import create_app
from sfemu.connections import DEFAULT_REQUEST_SECONDS, deadline_protocol
from sfemu.headers import CanonicalHeaders
from sfemu.org import EmulatedOrg, OrgSettings, open_org
from sfemu.tls import TlsFiles, ensure_tls

# h11 counts the request line and headers together; 64 KiB leaves room for 32 KB URLs plus headers.
MAX_HEAD_BYTES = 96 * 1024
# Clients keep connections alive; without a bound, a shutdown waits for them to hang up.
SHUTDOWN_SECONDS = 2
IDLE_SECONDS = 30  # a kept-alive connection with no new request is closed after this


@dataclass
class ServeOptions:
    """Network-side settings of one `serve` run (the org itself is described by OrgSettings)."""

    host: str = "127.0.0.1"
    port: int = 8443
    hostnames: list[str] = field(default_factory=list)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ready_file: Path | None = None
    control_token: str | None = None
    access_log: bool = False
    reset_data: bool = False
    request_seconds: float = DEFAULT_REQUEST_SECONDS  # to send a whole request (sfemu/connections.py)


# --- serving ----------------------------------------------------------------------------------


def url_host(host: str) -> str:
    """The host part of URLs clients should dial for a bind address."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts so `--port 0` yields a real port we can report."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def connection_info(org: EmulatedOrg, base_url: str, tls: TlsFiles) -> dict[str, Any]:
    """What a client needs to connect; printed at start and written to the ready file."""
    s = org.settings
    return {
        "base_url": base_url, "ca_path": str(tls.ca_path or tls.cert_path), "username": s.username,
        "password": s.password, "security_token": s.security_token, "client_id": s.client_id,
        "client_secret": s.client_secret, "control_url": f"{base_url}/_emulator", "org_type": s.org_type,
        "pid": os.getpid(),
    }


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically, readable by the owner only: the ready file holds the org's passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fd, 0o600)  # a leftover tmp file keeps its old mode through O_CREAT
        fh.write(json.dumps(data, indent=2))
    os.replace(tmp, path)


def serve(settings: OrgSettings, options: ServeOptions) -> None:
    """Provision the org, then serve it until interrupted (SIGINT/SIGTERM)."""
    tls = ensure_tls(settings.state_dir, options.hostnames, options.tls_cert, options.tls_key)
    sock = bind_socket(options.host, options.port)
    port = sock.getsockname()[1]
    org, generated = open_org(settings, options.reset_data)
    org.control_token = options.control_token
    base_url = f"https://{url_host(options.host)}:{port}"
    info = connection_info(org, base_url, tls)
    counts = org.store.counts()
    echo = functools.partial(print, flush=True)
    echo(f"Replicator emulator: {settings.org_type} org {org.org_id} "
         f"({'generated' if generated else 'reused'}: {sum(counts.values())} records, seed {settings.seed}, "
         f"scale {settings.scale}) in {settings.state_dir}")
    echo(f"  base URL      {base_url}")
    echo(f"  CA PEM        {info['ca_path']}   (export REQUESTS_CA_BUNDLE={info['ca_path']})")
    echo(f"  username      {settings.username}")
    echo(f"  password      {settings.password}")
    echo(f"  security token {settings.security_token}")
    echo(f"  client id     {settings.client_id}")
    echo(f"  client secret {settings.client_secret}")
    echo(f"  control API   {info['control_url']}")
    config = uvicorn.Config(
        CanonicalHeaders(create_app(org)), http=deadline_protocol(options.request_seconds),
        h11_max_incomplete_event_size=MAX_HEAD_BYTES, lifespan="off", server_header=False,
        date_header=False,
        ssl_certfile=str(tls.cert_path), ssl_keyfile=str(tls.key_path), access_log=options.access_log,
        log_level="info" if options.access_log else "warning", timeout_keep_alive=IDLE_SECONDS,
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)

    def ready() -> None:
        if options.ready_file:
            write_json_atomic(options.ready_file, info)
        echo(f"Ready: listening on {base_url}")

    try:
        asyncio.run(_run(server, sock, ready))
    finally:
        sock.close()
        org.store.close()
        if options.ready_file:
            options.ready_file.unlink(missing_ok=True)


async def _run(server: uvicorn.Server, sock: socket.socket, on_ready: Callable[[], None]) -> None:
    """Run uvicorn on a bound socket and call `on_ready` once it accepts connections."""
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # startup failed: surface its exception
            return
        await asyncio.sleep(0.02)
    on_ready()
    await task

