"""Real PostgreSQL and MariaDB servers on loopback for export tests (and the export benchmark).

Why real servers: exports are only proven by loading them into the databases users run. Each server
lives in a fresh folder under /tmp (not pytest's tmp dir: that is private to root, and both servers
refuse to run as root, so they run as the Debian users `postgres` / `mysql` when we are root), listens
on 127.0.0.1 at a free port, and has a password-authenticated role `replicator` owning a database
`replicator` (drivers and DuckDB's scanners need a password over TCP). Durability is switched off:
these servers hold throw-away data, and the export code path is the same.

Binaries: `.ci/run` installs the Debian packages `postgresql` and `mariadb-server` (Makefile
DEB_PACKAGES). When they are missing the fixtures fail with what to install; outside CI (CI unset)
they skip with that reason instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

START_TIMEOUT = 30.0
ROLE = "replicator"
DATABASE = "replicator"


class ServerUnavailable(RuntimeError):
    """The server's binaries are not installed; the message says what to install."""


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str
    socket_dir: Path
    bin_dir: Path

    def dsn(self, database: str | None = None) -> str:
        """libpq key/value conninfo for the test role (TCP, password auth)."""
        return (f"host={self.host} port={self.port} user={self.user} password={self.password} "
                f"dbname={database or self.database}")

    def admin(self):
        """A psycopg connection as superuser over the unix socket (trust), autocommit."""
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres",
                               dbname="postgres", autocommit=True)

    def create_database(self, name: str) -> str:
        """A fresh, empty database owned by the test role (dropped first if it exists), for isolation."""
        from psycopg import sql

        with self.admin() as con:
            con.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            con.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                                      sql.Identifier(self.user)))
        return name


@dataclass(frozen=True)
class MariaDbServer:
    host: str
    port: int
    user: str
    password: str
    database: str
    socket: Path

    def connect(self, database: str | None = None, **kwargs):
        """A pymysql connection as the test role over TCP (utf8mb4, LOAD DATA LOCAL allowed)."""
        import pymysql

        return pymysql.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               database=database or self.database, charset="utf8mb4",
                               local_infile=True, **kwargs)

    def admin(self):
        """A pymysql connection as root over the unix socket, autocommit."""
        import pymysql

        return pymysql.connect(unix_socket=str(self.socket), user="root", password="", charset="utf8mb4",
                               autocommit=True)

    def create_database(self, name: str) -> str:
        """A fresh, empty database (dropped first if it exists), for isolation between tests."""
        quoted = "`" + name.replace("`", "``") + "`"
        with self.admin() as con, con.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {quoted}")
            cur.execute(f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4")
        return name


# -- helpers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as(user: str) -> list[str]:
    """Command prefix that drops root to `user` (the servers refuse to run as root); empty otherwise."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise ServerUnavailable(f"running as root but the system user {user!r} does not exist "
                                f"(the Debian server package creates it)") from None
    return ["runuser", "-u", user, "--"]


def _scratch(prefix: str, owner: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
    return root


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=START_TIMEOUT, check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr[-4000:]}{tail}")


def _find(names: list[str], patterns: list[str]) -> Path | None:
    """The packaged binary (newest match of `patterns`) first, else the first of `names` on PATH."""
    for pattern in patterns:
        hits = sorted(glob.glob(pattern), reverse=True,  # newest version first: 15 sorts after 9
                      key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parts])
        if hits:
            return Path(hits[0])
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def postgres_bin_dir() -> Path:
    """The newest packaged PostgreSQL server's bin dir (Debian keeps initdb/pg_ctl off PATH)."""
    initdb = _find(["initdb"], ["/usr/lib/postgresql/*/bin/initdb"])
    if initdb is None:
        raise ServerUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: "
                                "apt-get install postgresql")
    return initdb.parent


# -- servers -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def running_postgres(fast: bool = True) -> Iterator[PostgresServer]:
    """initdb + pg_ctl start on 127.0.0.1:<free port>; role/database `replicator`; stopped and removed after.

    `fast`: fsync/synchronous_commit off (tests); the benchmark passes False for a realistic server.
    """
    bin_dir = postgres_bin_dir()
    as_pg = _run_as("postgres")
    root = _scratch("replicator-pg-", "postgres")
    data, log, port = root / "data", root / "server.log", free_port()
    password = secrets.token_hex(16)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=50"
    if fast:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    started = False
    try:
        _run([*as_pg, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
              "--no-locale", "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256",
              f"--pwfile={pwfile}"], "initdb")
        pwfile.unlink()
        _run([*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
              "-t", str(int(START_TIMEOUT)), "-o", options, "start"], "pg_ctl start", log)
        started = True
        server = PostgresServer(host="127.0.0.1", port=port, user=ROLE, password=password,
                                database=DATABASE, socket_dir=root, bin_dir=bin_dir)
        from psycopg import sql

        with server.admin() as con:
            con.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(password)))
        server.create_database(DATABASE)
        yield server
    finally:
        if started:
            subprocess.run([*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                            "stop"], capture_output=True, timeout=START_TIMEOUT, check=False)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def running_mariadb() -> Iterator[MariaDbServer]:
    """mariadb-install-db + mariadbd on 127.0.0.1:<free port>, socket in its folder, LOAD DATA LOCAL on;
    database `replicator` and a password user `replicator`; shut down and removed after."""
    mariadbd = _find(["mariadbd", "mysqld"], ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"])
    install = _find(["mariadb-install-db", "mysql_install_db"], [])
    if mariadbd is None or install is None:
        raise ServerUnavailable("MariaDB server binaries (mariadbd, mariadb-install-db) not found: "
                                "apt-get install mariadb-server")
    user_args = ["--user=mysql"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        _run_as("mysql")  # fails clearly if the user is missing
    root = _scratch("replicator-mariadb-", "mysql")
    data, log, sock, port = root / "data", root / "server.log", root / "mysqld.sock", free_port()
    password = secrets.token_hex(16)
    process: subprocess.Popen | None = None
    try:
        _run([str(install), "--no-defaults", f"--datadir={data}", *user_args,
              "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
             "mariadb-install-db")
        process = subprocess.Popen(
            [str(mariadbd), "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--port={port}",
             "--bind-address=127.0.0.1", f"--pid-file={root / 'mysqld.pid'}", f"--log-error={log}",
             *user_args, "--skip-name-resolve", "--local-infile=1", "--character-set-server=utf8mb4",
             "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=256M", "--skip-log-bin"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = MariaDbServer(host="127.0.0.1", port=port, user=ROLE, password=password,
                               database=DATABASE, socket=sock)
        _wait_mariadb(server, process, log)
        with server.admin() as con, con.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (ROLE, password))
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO `{ROLE}`@'%'")
        server.create_database(DATABASE)
        yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_mariadb(server: MariaDbServer, process: subprocess.Popen, log: Path) -> None:
    import pymysql

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"mariadbd exited with {process.returncode}:\n"
                               f"{log.read_text(errors='replace')[-4000:] if log.exists() else ''}")
        if server.socket.exists():
            try:
                server.admin().close()
                return
            except pymysql.err.OperationalError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"mariadbd not ready after {START_TIMEOUT:.0f} s:\n"
                               f"{log.read_text(errors='replace')[-4000:] if log.exists() else ''}")
        time.sleep(0.1)


# -- pytest fixtures (registered through tests/conftest.py: pytest_plugins) -------------------------------


def _unavailable(exc: ServerUnavailable) -> None:
    """Missing binaries: a failure in CI (they must be installed), a skip with the reason elsewhere."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(str(exc), pytrace=False)
    pytest.skip(str(exc))


def _serve(start: Callable[[], AbstractContextManager[T]]) -> Iterator[T]:
    """Run a server for a fixture's lifetime; a server that cannot start fails or skips (_unavailable)."""
    try:
        cm = start()
        server = cm.__enter__()
    except ServerUnavailable as exc:
        _unavailable(exc)
    try:
        yield server
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (see running_postgres)."""
    yield from _serve(running_postgres)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDbServer]:
    """A MariaDB server for the whole session (see running_mariadb)."""
    yield from _serve(running_mariadb)
