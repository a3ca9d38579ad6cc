"""`store encrypt`, `store rotate-key` and `store decrypt`: put an existing store under a key, under a
new one, or under none.

Why jobs of their own: a store backed up before a key was configured stays plain until it is
rewritten, a key that may have leaked must be replaced without a second copy of the data lying
around, and someone who moves the store onto an encrypted volume (or hands it to a tool that cannot
take a key) must be able to leave encryption without a dump and reload. All three rewrite the whole
store into a fresh file under the new key (or none) and swap it in atomically, holding the writer
lock (store.encryption.rekey): killed at any moment, the old store or the new one is there, each
opened by its own key. The key comes from the config (encrypt, decrypt) or from an environment
variable or file named for the new key (rotate), never from the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from replicator.config import Config, ConfigError, Secret
from replicator.config.sections import KeyFile, strong_key
from replicator.errors import InvalidInput
from replicator.result import JobResult
from replicator.store.repository import Repository

__all__ = ["RekeyResult", "RotateRequest", "decrypt_store", "encrypt_store", "rotate_key"]

KEY_SETTINGS = "storage.encryption_key_env or storage.encryption_key_file"


@dataclass
class RotateRequest:
    """Where the new key is: exactly one of an environment variable's name and a file."""

    new_key_env: str | None = None
    new_key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.new_key_env is None) == (self.new_key_file is None):
            raise InvalidInput("name the new key by exactly one of an environment variable and a file")


@dataclass
class RekeyResult(JobResult):
    """The store that was rewritten, and what the person must do next."""

    store: Path
    encrypted: bool
    next_step: str

    def text(self) -> str:
        """One line, then the next step."""
        return f"{self.store}: {'encrypted' if self.encrypted else 'decrypted'}\n{self.next_step}"


def encrypt_store(config: Config) -> RekeyResult:
    """Encrypt a plain store with the configured key (refused when it is already encrypted)."""
    key = config.storage.store_key()
    if key is None:
        raise ConfigError(config.path, "storage.encryption_key_env",
                          f"no key is configured for the store (set {KEY_SETTINGS}, then encrypt it)")
    plain = Repository(config.storage.path)
    if plain.is_encrypted():
        raise InvalidInput(f"the store at {plain.layout.database} is already encrypted "
                           "(store rotate-key replaces its key)")
    plain.rekey(key)
    next_step = "every command now opens it with the configured key; without it, nothing opens"
    if config.storage.blob_key_env is None and plain.layout.blob_key.exists():
        next_step += (f"; the file bodies' key is {plain.layout.blob_key}, inside the folder: move it "
                      "to the variable storage.blob_key_env names")
    return RekeyResult(plain.layout.database, True, next_step)


def rotate_key(config: Config, request: RotateRequest) -> RekeyResult:
    """Re-encrypt the store from the configured key to a new one; the config must then name the new key."""
    repository = Repository.for_storage(config.storage)
    if repository.key is None:
        raise ConfigError(config.path, "storage.encryption_key_env",
                          f"no key is configured for the store ({KEY_SETTINGS} names the current key)")
    new_key = _new_key(config, request)
    if new_key.reveal() == repository.key.reveal():
        raise InvalidInput("the new key is the current key")
    repository.rekey(new_key)
    where = (f"environment variable {request.new_key_env}" if request.new_key_env
             else f"file {request.new_key_file}")
    return RekeyResult(repository.layout.database, True,
                       f"the old key no longer opens it: point {KEY_SETTINGS} at the {where} now")


def decrypt_store(config: Config) -> RekeyResult:
    """Rewrite an encrypted store as a plain one, opened with the configured key (which then must go
    from the config: a key for a plain store is refused, so nothing is ever written plain by mistake)."""
    repository = Repository.for_storage(config.storage)
    if repository.key is None:
        raise ConfigError(config.path, "storage.encryption_key_env",
                          f"no key is configured for the store ({KEY_SETTINGS} names the key that opens it)")
    if not repository.is_encrypted():
        raise InvalidInput(f"the store at {repository.layout.database} is not encrypted")
    repository.rekey(None)
    return RekeyResult(repository.layout.database, False,
                       "it is a plain file now, readable by anyone who can read the folder: remove "
                       f"{KEY_SETTINGS} from the config (the file bodies stay encrypted under the blob key)")


def _new_key(config: Config, request: RotateRequest) -> Secret:
    """The new key, held to the same rules as the configured one (long enough; a private file outside
    the storage folder); a problem is bad input, named without echoing the key."""
    try:
        if request.new_key_file is not None:
            return strong_key(KeyFile(request.new_key_file, config.storage.path, path=config.path,
                                      key="new key file"))
        env = str(request.new_key_env)
        return strong_key(Secret(env, os.environ.get(env), path=config.path, key="new key"))
    except ConfigError as exc:
        raise InvalidInput(f"the new key: {exc.message}") from None
