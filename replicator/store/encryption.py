"""Encryption at rest for DuckDB files: the snapshot store and a run's staging file (AES-GCM).

Why DuckDB's own encryption and the httpfs extension: DuckDB encrypts every block of a database file
(and its WAL, and with `temp_file_encryption` its spill files) with AES-GCM when the file is
attached with an `ENCRYPTION_KEY`, but without httpfs it only has a read-only crypto module
(writes are refused, or made with an implementation DuckDB itself calls insecure). The extension
ships as the `duckdb-extension-httpfs` wheel matching our pinned DuckDB, so nothing is downloaded
at run time. Everything DuckDB says about a key (none given for an encrypted file, a wrong one, one
given for a plain file) becomes one sentence here, and a key never reaches a message or a log.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from replicator.config import Secret
from replicator.errors import ReplicatorError
from replicator.store.schema import literal, quote

__all__ = ["EncryptionProblem", "attach", "catalog", "connect", "is_encrypted", "load_httpfs", "rekey",
           "rewrite", "swap", "translate"]

HTTPFS_PACKAGE = "duckdb_extension_httpfs"
INSTALL_HINT = f"pip install duckdb-extension-httpfs=={duckdb.__version__}"
CONFIG_KEYS = "storage.encryption_key_env or storage.encryption_key_file"


class EncryptionProblem(ReplicatorError):
    """The store's key is missing, wrong or unusable: nothing was opened, nothing changed."""

    http_status = 500
    kind = "encryption"


def load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """Load DuckDB's httpfs extension (OpenSSL crypto) from its wheel, else from DuckDB's own folder."""
    spec = importlib.util.find_spec(HTTPFS_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations)))
        wheel = folder / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
        if wheel.is_file():
            con.execute(f"LOAD {literal(str(wheel))}")
            return
    try:
        con.execute("LOAD httpfs")
    except duckdb.Error:
        raise EncryptionProblem("encrypting the store needs DuckDB's httpfs extension, which is not "
                                f"installed ({INSTALL_HINT})") from None


def translate(exc: duckdb.Error, path: Path, keyed: bool) -> ReplicatorError | None:
    """DuckDB's word on a key as one sentence naming the file (None: not about the key)."""
    text = str(exc)
    if "without a key" in text:
        return EncryptionProblem(f"the store at {path} is encrypted and no key is configured ({CONFIG_KEYS})")
    if "Wrong encryption key" in text:
        return EncryptionProblem(f"the configured key does not open the store at {path} (wrong key)")
    if "is not encrypted" in text and keyed:
        return EncryptionProblem(f"the store at {path} is not encrypted: encrypt it with the configured "
                                 f"key (store encrypt), or, if it was decrypted, remove {CONFIG_KEYS} "
                                 "from the config")
    return None


def attach(con: duckdb.DuckDBPyConnection, path: Path, alias: str, key: Secret | None, *,
           read_only: bool = False) -> None:
    """ATTACH a database file under `alias`, with its key when it has one (httpfs loaded first)."""
    options = ["READ_ONLY"] if read_only else []
    if key is not None:
        load_httpfs(con)
        options.append(f"ENCRYPTION_KEY {literal(key.reveal())}")
    clause = f" ({', '.join(options)})" if options else ""
    existed = path.exists()
    try:
        con.execute(f"ATTACH {literal(str(path))} AS {alias}{clause}")
    except duckdb.Error as exc:
        if key is not None and not existed:
            path.unlink(missing_ok=True)  # a failed encrypted ATTACH can leave a plain empty file
        raise (translate(exc, path, key is not None) or exc) from None


def catalog(path: Path) -> str:
    """The quoted catalog name a database file is attached under: its stem, as a plain open names it."""
    return quote(path.stem)


def connect(path: Path, key: Secret | None, *, read_only: bool,
            config: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the file at `path` (encrypted when `key` is given).

    Without a key it is DuckDB's plain file connection. With one, an in-memory connection attaches
    the file under its stem (the name a plain open gives it) and makes it the default, so unqualified
    names and `main.`/`hist.` resolve exactly as in a plain open; spill files are encrypted too.
    `config` is applied after the attach, which it could forbid (external access off, extensions
    locked): analysts' sealed connections.
    """
    config = dict(config or {})
    if key is None:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.Error as exc:
            raise (translate(exc, path, False) or exc) from None
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    alias = catalog(path)
    try:
        attach(con, path, alias, key, read_only=read_only)
        con.execute(f"USE {alias}")
        con.execute("SET temp_file_encryption = true")
        for name, value in config.items():
            con.execute(f"SET {name} = {literal(str(value).lower() if isinstance(value, bool) else value)}")
    except BaseException:
        con.close()
        raise
    return con


def rewrite(source: Path, target: Path, source_key: Secret | None, target_key: Secret | None) -> None:
    """Copy every table, view and macro of `source` into a fresh `target` file (encrypted with
    `target_key` when given) and fsync it: compaction, encryption and key rotation all rewrite the
    store this way, then swap the files. A leftover `target` from a crash is removed first."""
    for leftover in (target, target.with_name(target.name + ".wal")):
        leftover.unlink(missing_ok=True)
    with duckdb.connect(config={"autoinstall_known_extensions": False,
                                "autoload_known_extensions": False}) as con:
        attach(con, source, "src", source_key, read_only=True)
        attach(con, target, "dst", target_key)
        con.execute("COPY FROM DATABASE src TO dst")
        con.execute("DETACH dst")
        con.execute("DETACH src")
    with open(target, "rb+") as f:
        os.fsync(f.fileno())


def is_encrypted(path: Path) -> bool:
    """Whether the database file at `path` is encrypted (asked read-only: nothing is written)."""
    with duckdb.connect() as con:
        try:
            con.execute(f"ATTACH {literal(str(path))} AS probe (READ_ONLY)")
        except duckdb.Error as exc:
            if "without a key" in str(exc):
                return True
            raise
    return False


def rekey(path: Path, key: Secret | None, new_key: Secret | None) -> None:
    """Re-encrypt the store at `path` from `key` to `new_key` (None: plain), atomically.

    The current key is proven first (a checkpoint folds the WAL in), then the whole file is copied
    into `<path>.rekey` under the new key and renamed over the store: a crash at any moment leaves
    the old file whole (and a leftover copy, removed next time) or the new one, never half of each.
    Call it holding the writer lock.
    """
    with connect(path, key, read_only=False) as con:
        con.execute("CHECKPOINT")
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        raise EncryptionProblem(f"{wal} is still there after a checkpoint: another process has the store "
                                "open; nothing was changed")
    fresh = path.with_name(path.name + ".rekey")
    rewrite(path, fresh, key, new_key)
    swap(fresh, path)


def swap(fresh: Path, path: Path) -> None:
    """Atomically replace `path` by `fresh` and make the rename durable (fsync of the folder)."""
    os.replace(fresh, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
