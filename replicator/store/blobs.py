"""Content-addressed file store: one file per distinct body, addressed by the sha256 of its plaintext.

Why content addressing: the same attachment uploaded to fifty records, or re-read by every run,
is stored once, and a snapshot version only needs the 64-character hash to say which bytes it had.
Why encryption at rest: backups hold every file an org ever had; a copied disk must not leak them.
Why keyed names: a file named by the plain sha256 of its content lets anyone holding the folder
confirm that a file they know (a leaked contract, a CV) is backed up, by hashing it. With a key,
a blob's file name is HMAC-SHA256(name key, sha256 hex), the name key derived from the blob key;
without the key the names say nothing. That keyed name is also the blob's id: what the store's body
columns hold (`Stored.blob_id`, `blob_id`), so an unencrypted snapshot.duckdb, an export without
the bodies, or a GDPR-forgotten file's old rows say nothing about the content either.

Layout: <root>/ab/cd/<id>.blob (a keyless store, for tests or an already encrypted volume, uses
<root>/ab/cd/<sha256>, and its id is the sha256). Stores written before keyed names hold
<root>/ab/cd/<sha256> files and body columns of plain sha256s: every reading method takes either a
blob id or such a sha256 (a `ref`; the two cannot collide), and a backup renames the old files on
open (migrate_names) and rewrites the body columns (store.blob_refs). Writes go to a temp file in
<root>/.tmp and are renamed into place, so a crash never leaves a half-written blob under a real
name. Memory stays flat: bodies are read, hashed and encrypted in 1 MiB chunks.

Encrypted format (version 1), a streaming AEAD in the style of Tink's AES-GCM-HKDF streaming:
  header = MAGIC "RBLB" | version (1 byte) | key id (8) | salt (32) | nonce prefix (7)
  chunk i = AES-256-GCM(file key, nonce = prefix | i (4 bytes BE) | last flag (1 byte), aad = header)
The file key is HKDF-SHA256(master key, salt), so nonces never repeat across files; the counter
authenticates chunk order and the last flag authenticates the end, so reordered, cut or tampered
files fail to decrypt. Every chunk but the last holds exactly 1 MiB of plaintext; the last holds
0..1 MiB. The key id (an HMAC of the master key) tells "wrong key" apart from "tampered".
Without a key (tests, or a store on an already encrypted volume) blobs are the raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from replicator.errors import ConfigProblem
from replicator.store.layout import Layout

log = logging.getLogger("replicator.blobs")

CHUNK = 1 << 20
TAG = 16
MAGIC = b"RBLB"
VERSION = 1
KEY_BYTES = 32
_SALT, _PREFIX, _KEY_ID = 32, 7, 8
HEADER_SIZE = len(MAGIC) + 1 + _KEY_ID + _SALT + _PREFIX
_SHA = re.compile(r"^[0-9a-f]{64}$")
_KEYED = re.compile(r"^[0-9a-f]{64}\.blob$")
KEY_FILE_HINT = ("create one with: python -c \"import base64,os; print(base64.b64encode(os.urandom(32))"
                 ".decode())\" > FILE && chmod 600 FILE")


class BlobError(Exception):
    """A blob cannot be read or written as asked."""


class BlobNotFound(BlobError, KeyError):
    """No blob with that sha256 in the store."""


class BlobCorrupt(BlobError):
    """A blob's bytes are not what was stored: tampered, truncated, or encrypted with another key."""


class BlobKeyError(BlobError, ConfigProblem):
    """The blob key is missing or malformed (the message never contains the key): a settings problem,
    so the CLI says it in one line."""


@dataclass(frozen=True)
class Stored:
    """What `write` did: the plaintext's sha256 and size, whether a new file was created, and the
    blob's id (what a body column holds)."""

    sha256: str
    size: int
    new: bool
    blob_id: str


@dataclass(frozen=True)
class Usage:
    blobs: int
    stored_bytes: int  # on disk, headers and tags included


def parse_key(text: str) -> bytes:
    """A 32-byte key from base64 or hex text (how keys travel in env vars and key files)."""
    text = text.strip()
    for decode in (bytes.fromhex, lambda t: base64.b64decode(t, validate=True)):
        try:
            key = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(key) == KEY_BYTES:
            return key
    raise BlobKeyError(f"a blob key must be {KEY_BYTES} bytes, written as base64 or hex")


def load_key(storage: Path, key_env: str | None, environ: Mapping[str, str] | None = None, *,
             key_file: Path | None = None, create: bool = True) -> bytes | None:
    """The master key: from the env var named by [storage] blob_key_env, else the file named by
    [storage] blob_key_file (kept away from the blobs it protects), else <storage>/blob.key.

    Only <storage>/blob.key is ever created: on first use, with mode 0600 (atomically, so two
    processes starting at once agree on one key); with `create` False a missing one gives None
    (a read-only command never adds a key). Losing the key makes every stored file unreadable.
    """
    environ = os.environ if environ is None else environ
    if key_env and key_file is not None:
        raise BlobKeyError("give the blob key by storage.blob_key_env or by storage.blob_key_file, not both",
                           key="storage.blob_key_file")
    if key_env:
        value = environ.get(key_env)
        if not value:
            raise BlobKeyError(f"environment variable {key_env} (storage.blob_key_env) is not set or empty",
                               key="storage.blob_key_env")
        try:
            return parse_key(value)
        except BlobKeyError as exc:
            raise BlobKeyError(f"environment variable {key_env}: {exc}", key="storage.blob_key_env") from None
    if key_file is not None:
        if not key_file.is_file():
            raise BlobKeyError(f"blob key file {key_file} (storage.blob_key_file) does not exist; "
                               f"{KEY_FILE_HINT}", key="storage.blob_key_file")
        return _read_key_file(key_file)
    path = Layout(storage).blob_key
    if not path.exists():
        if not create:
            return None
        _create_key_file(path)
    return _read_key_file(path)


def _read_key_file(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("blob key file %s is readable by others (mode %o); run chmod 600 on it", path, mode)
    try:
        return parse_key(path.read_text(encoding="ascii"))
    except (BlobKeyError, UnicodeDecodeError):
        raise BlobKeyError(f"{path} does not hold a {KEY_BYTES}-byte base64 key") from None


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # fails if another process created the key first: theirs wins
            log.warning("generated a new blob encryption key in %s: back it up, without it the stored "
                        "files cannot be read", path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink()


def _key_id(key: bytes) -> bytes:
    return hmac.new(key, b"replicator blob key id", hashlib.sha256).digest()[:_KEY_ID]


def _name_key(key: bytes) -> bytes:
    """The key of blob file names: derived from the blob key, distinct from its id and file keys."""
    return hmac.new(key, b"replicator blob names v1", hashlib.sha256).digest()


def _file_key(key: bytes, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=b"replicator blob v1")
    return AESGCM(hkdf.derive(key))


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _pieces(data: bytes | BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    """The input as a stream of byte pieces of any size."""
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
    elif hasattr(data, "read"):
        while piece := data.read(CHUNK):  # type: ignore[union-attr]
            yield piece
    else:
        yield from data  # type: ignore[misc]


def _chunks(pieces: Iterator[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Exactly-CHUNK-sized plaintext chunks, each flagged with whether it is the last one."""
    buf = bytearray()
    for piece in pieces:
        buf += piece
        start = 0
        while len(buf) - start > CHUNK:  # strictly more: a full chunk is "not last" only if data follows
            yield bytes(buf[start:start + CHUNK]), False
            start += CHUNK
        del buf[:start]  # once per piece, so a large piece is not shifted chunk by chunk
    yield bytes(buf), True


class BlobStore:
    """Files by sha256 under `root`, encrypted with `key` (32 bytes) or stored raw when key is None."""

    def __init__(self, root: Path, key: bytes | None) -> None:
        if key is not None and len(key) != KEY_BYTES:
            raise BlobKeyError(f"a blob key must be {KEY_BYTES} bytes")
        self.root = Path(root)
        self._key = key
        self._key_id = _key_id(key) if key is not None else b""
        self._name_key = _name_key(key) if key is not None else None

    def __repr__(self) -> str:  # never show the key
        return f"BlobStore({str(self.root)!r}, encrypted={self._key is not None})"

    @property
    def encrypted(self) -> bool:
        return self._key is not None

    def blob_id(self, sha: str) -> str:
        """The id of the blob whose plaintext has this sha256: its keyed name (the sha256 itself in a
        keyless store)."""
        if not _SHA.match(sha):
            raise BlobError(f"not a sha256 hex digest: {sha!r}")
        if self._name_key is None:
            return sha
        return hmac.new(self._name_key, sha.encode(), hashlib.sha256).hexdigest()

    def path(self, sha: str) -> Path:
        """Where the blob of this sha256 is written: under its keyed name when the store has a key."""
        return self._id_path(self.blob_id(sha))

    def _id_path(self, blob_id: str) -> Path:
        """Where the blob of this id lives."""
        if self._name_key is None:
            return self._plain_path(blob_id)
        return self.root / blob_id[:2] / blob_id[2:4] / f"{blob_id}.blob"

    def _plain_path(self, sha: str) -> Path:
        """The name by the sha256 itself: a keyless store's, and an encrypted store's before keyed names."""
        if not _SHA.match(sha):
            raise BlobError(f"not a sha256 hex digest or blob id: {sha!r}")
        return self.root / sha[:2] / sha[2:4] / sha

    def _places(self, ref: str) -> list[Path]:
        """Where the blob a ref names may be: by id, or (a sha256 from before keyed ids) by its keyed
        name or its old plain one."""
        return list(dict.fromkeys((self._id_path(ref), self.path(ref), self._plain_path(ref))))

    def file_of(self, ref: str) -> Path | None:
        """The file holding the blob a ref (blob id, or sha256 from before keyed ids) names, if any."""
        return next((path for path in self._places(ref) if path.is_file()), None)

    def is_id(self, ref: str) -> bool:
        """True when `ref` is the id of a stored blob (False for a sha256, or a missing blob)."""
        return self._id_path(ref).is_file()

    def migrate_names(self) -> int:
        """Rename blobs stored under their plain sha256 to their keyed names; returns how many.

        For stores written before keyed names; a writer calls it on open. Safe to interrupt and to
        run twice (an old name has no `.blob` suffix, so a rerun finds exactly the ones left), and
        readers find either name meanwhile. Emptied old fan-out folders are removed, since their
        names are the first hex digits of the sha256s.
        """
        if self._name_key is None:
            return 0
        moved = 0
        for old in sorted(self.root.glob("??/??/*")):
            if not _SHA.match(old.name):
                continue
            new = self.path(old.name)
            new.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(old, new)
            except FileNotFoundError:
                continue  # another writer moved it first
            moved += 1
            _fsync_dir(new.parent)
            for folder in (old.parent, old.parent.parent):
                try:
                    folder.rmdir()
                except OSError:
                    break  # not empty: other blobs live there
        if moved:
            log.info("renamed %d blobs in %s to keyed names", moved, self.root)
        return moved

    # --- writing ---------------------------------------------------------------------------

    def put(self, data: bytes | BinaryIO | Iterable[bytes]) -> str:
        """Store bytes (or a binary file, or an iterable of byte pieces); returns the sha256 hex (which
        names the blob too; what the store keeps is `write(...).blob_id`)."""
        return self.write(data).sha256

    def write(self, data: bytes | BinaryIO | Iterable[bytes]) -> Stored:
        """Like put, and says whether the bytes were new (an existing sha is never rewritten)."""
        tmp_dir = self.root / ".tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / secrets.token_hex(12)
        digest, size = hashlib.sha256(), 0
        try:
            with open(tmp, "xb") as out:
                for part in self._encode(_chunks(_pieces(data)), digest):
                    out.write(part)
                size = out.tell() if self._key is None else _plain_size(out.tell())
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            if self.file_of(sha) is not None:
                return Stored(sha, size, new=False, blob_id=self.blob_id(sha))
            target = self.path(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            _fsync_dir(target.parent)
            return Stored(sha, size, new=True, blob_id=self.blob_id(sha))
        finally:
            tmp.unlink(missing_ok=True)

    def _encode(self, chunks: Iterator[tuple[bytes, bool]], digest: hashlib._Hash) -> Iterator[bytes]:
        if self._key is None:
            for chunk, _last in chunks:
                digest.update(chunk)
                yield chunk
            return
        salt, prefix = secrets.token_bytes(_SALT), secrets.token_bytes(_PREFIX)
        header = MAGIC + bytes([VERSION]) + self._key_id + salt + prefix
        aead = _file_key(self._key, salt)
        yield header
        for index, (chunk, last) in enumerate(chunks):
            digest.update(chunk)
            yield aead.encrypt(_nonce(prefix, index, last), chunk, header)

    # --- reading ---------------------------------------------------------------------------

    def has(self, ref: str) -> bool:
        return self.file_of(ref) is not None

    def chunks(self, ref: str) -> Iterator[bytes]:
        """The plaintext in chunks, authenticated as read; its sha256 is checked against the ref (a
        sha256, or a blob id: the keyed name of the sha256) at the end.

        A consumer that streams chunks onward sees a BlobCorrupt at the end (not before) for a blob
        whose last part was cut or changed; callers that must not act on bad data use get().
        """
        path = self.file_of(ref)
        if path is None:
            raise self._missing(ref)
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in self._decode(handle, ref):
                digest.update(chunk)
                yield chunk
        if ref not in (digest.hexdigest(), self.blob_id(digest.hexdigest())):
            raise BlobCorrupt(f"blob {ref}: content does not match its sha256 (tampered)")

    def _decode(self, handle: BinaryIO, ref: str) -> Iterator[bytes]:
        if self._key is None:
            while chunk := handle.read(CHUNK):
                yield chunk
            return
        header = handle.read(HEADER_SIZE)
        if len(header) < HEADER_SIZE or header[:4] != MAGIC:
            raise BlobCorrupt(f"blob {ref}: not an encrypted blob (no header: truncated, or written "
                              f"without a key)")
        if header[4] != VERSION:
            raise BlobCorrupt(f"blob {ref}: unknown blob format version {header[4]}")
        key_id, rest = header[5:5 + _KEY_ID], header[5 + _KEY_ID:]
        if key_id != self._key_id:
            raise BlobCorrupt(f"blob {ref}: encrypted with a different key (key id {key_id.hex()}, "
                              f"this store's key id {self._key_id.hex()})")
        salt, prefix = rest[:_SALT], rest[_SALT:]
        aead = _file_key(self._key, salt)
        block, index = handle.read(CHUNK + TAG), 0
        while True:
            following = handle.read(CHUNK + TAG) if len(block) == CHUNK + TAG else b""
            last = not following
            try:
                yield aead.decrypt(_nonce(prefix, index, last), block, header)
            except InvalidTag:
                raise BlobCorrupt(f"blob {ref}: chunk {index} fails authentication "
                                  f"(tampered or truncated)") from None
            if last:
                return
            block, index = following, index + 1

    def _missing(self, ref: str) -> BlobError:
        """BlobNotFound, or BlobCorrupt naming the key when the store's blobs carry another key's id:
        with the wrong key, names differ too, so "not found" alone would hide the real problem."""
        for path in self.root.glob("??/??/*"):
            with open(path, "rb") as handle:
                header = handle.read(HEADER_SIZE)
            key_id = header[5:5 + _KEY_ID]
            if self._key is not None and header[:4] == MAGIC and key_id != self._key_id:
                return BlobCorrupt(f"blob {ref}: not found, and this store's blobs are encrypted with "
                                   f"a different key (key id {key_id.hex()}, this key's id "
                                   f"{self._key_id.hex()})")
            break  # one blob tells: a store has one key
        return BlobNotFound(ref)

    def get(self, ref: str) -> bytes:
        """The whole plaintext, verified (use chunks()/open_stream() for large files)."""
        return b"".join(self.chunks(ref))

    def open_stream(self, ref: str) -> io.BufferedReader:
        """A read-only binary file over the plaintext, for handing a blob to code that reads files."""
        return io.BufferedReader(_ChunkReader(self.chunks(ref)), buffer_size=CHUNK)

    def verify(self, ref: str) -> bool:
        """True when the blob exists and its bytes still hash to its name (and decrypt, if encrypted)."""
        try:
            for _ in self.chunks(ref):
                pass
        except BlobError:
            return False
        return True

    def size(self, ref: str) -> int:
        """Plaintext size, from the file size alone (no decryption)."""
        path = self.file_of(ref)
        if path is None:
            raise self._missing(ref)
        stored = path.stat().st_size
        return stored if self._key is None else _plain_size(stored)

    def usage(self) -> Usage:
        """How many blobs and how many bytes they take on disk."""
        count = total = 0
        for path in self.root.glob("??/??/*"):
            if _SHA.match(path.name) or _KEYED.match(path.name):
                count += 1
                total += path.stat().st_size
        return Usage(count, total)

    # --- erasure ---------------------------------------------------------------------------

    def discard_partial(self) -> int:
        """Remove bodies a killed writer left half-written in <root>/.tmp; returns how many.

        Call only while holding the writer lock (no other writer is mid-write then)."""
        tmp_dir = self.root / ".tmp"
        found = list(tmp_dir.iterdir()) if tmp_dir.is_dir() else []
        for leftover in found:
            leftover.unlink(missing_ok=True)
        return len(found)

    def delete(self, ref: str) -> bool:
        """Remove a blob under any name (GDPR erasure, pruning); False if it was not there."""
        removed = False
        for path in self._places(ref):
            try:
                path.unlink()
                removed = True
            except FileNotFoundError:
                pass
        return removed


def _plain_size(stored: int) -> int:
    body = stored - HEADER_SIZE
    chunks = max(1, -(-body // (CHUNK + TAG)))
    return body - TAG * chunks


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: the snapshot may reference this blob right after."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _ChunkReader(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
