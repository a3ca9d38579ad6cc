"""Blob store: content addressing, dedup, encryption at rest, tamper detection, keys, flat memory."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import stat
import tracemalloc

import pytest

from replicator.store.blobs import (
    CHUNK,
    HEADER_SIZE,
    TAG,
    BlobCorrupt,
    BlobKeyError,
    BlobNotFound,
    BlobStore,
    load_key,
)
from replicator.store.layout import Layout
from replicator.store.repository import Repository

KEY = bytes(range(32))
SIZES = [0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5]


@pytest.fixture(params=[None, KEY], ids=["plain", "encrypted"])
def store(request, tmp_path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", request.param)


def encrypted_store(tmp_path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", KEY)


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_bytes_file_and_pieces(store, size):
    data = os.urandom(size)
    sha = hashlib.sha256(data).hexdigest()
    assert store.put(data) == sha
    assert store.has(sha) and store.size(sha) == size
    assert store.get(sha) == data
    assert store.open_stream(sha).read() == data
    assert store.verify(sha)
    assert store.path(sha).is_file() and store.path(sha).is_relative_to(store.root)
    # the same bytes as a file object and as odd-sized pieces give the same address, and no new file
    assert store.write(io.BytesIO(data)) .sha256 == sha
    pieces = [data[i:i + 77_777] for i in range(0, size, 77_777)]
    again = store.write(iter(pieces))
    assert (again.sha256, again.size, again.new) == (sha, size, False)
    assert store.usage().blobs == 1
    assert not list((store.root / ".tmp").iterdir())


def test_dedup_and_delete(store):
    first, second = store.write(b"same bytes"), store.write(b"same bytes")
    assert first.new and not second.new and first.sha256 == second.sha256
    other = store.put(b"other bytes")
    assert store.usage().blobs == 2
    assert store.delete(other) and not store.delete(other)
    assert not store.has(other)
    with pytest.raises(BlobNotFound):
        store.get(other)
    assert not store.verify(other)


def test_encrypted_blob_does_not_hold_the_plaintext(tmp_path):
    store = encrypted_store(tmp_path)
    data = b"confidential contract text " * 1000
    sha = store.put(data)
    raw = store.path(sha).read_bytes()
    assert b"confidential" not in raw
    assert len(raw) == HEADER_SIZE + len(data) + TAG
    # two stores with the same key write different ciphertexts (per-file salt), both readable
    twin = BlobStore(tmp_path / "twin", KEY)
    twin.put(data)
    assert twin.path(sha).read_bytes() != raw
    assert twin.get(sha) == data


def _big(store: BlobStore) -> tuple[str, bytearray]:
    data = os.urandom(3 * CHUNK + 100)
    sha = store.put(data)
    return sha, bytearray(store.path(sha).read_bytes())


def test_tampered_byte_is_detected(tmp_path):
    store = encrypted_store(tmp_path)
    sha, raw = _big(store)
    raw[HEADER_SIZE + CHUNK + 500] ^= 1
    store.path(sha).write_bytes(raw)
    with pytest.raises(BlobCorrupt, match="chunk 1 fails authentication"):
        store.get(sha)
    assert not store.verify(sha)


@pytest.mark.parametrize("cut", ["last chunk", "inside a chunk", "header"])
def test_truncated_blob_is_detected(tmp_path, cut):
    store = encrypted_store(tmp_path)
    sha, raw = _big(store)
    keep = {"last chunk": HEADER_SIZE + 3 * (CHUNK + TAG), "inside a chunk": HEADER_SIZE + 1000,
            "header": 20}[cut]
    store.path(sha).write_bytes(raw[:keep])
    with pytest.raises(BlobCorrupt, match="truncated"):
        store.get(sha)


def test_reordered_chunks_are_detected(tmp_path):
    store = encrypted_store(tmp_path)
    sha, raw = _big(store)
    one = slice(HEADER_SIZE, HEADER_SIZE + CHUNK + TAG)
    two = slice(HEADER_SIZE + CHUNK + TAG, HEADER_SIZE + 2 * (CHUNK + TAG))
    raw[one], raw[two] = raw[two], raw[one]
    store.path(sha).write_bytes(raw)
    with pytest.raises(BlobCorrupt, match="chunk 0"):
        store.get(sha)


def test_wrong_key_is_named(tmp_path):
    sha = encrypted_store(tmp_path).put(b"x" * 100)
    with pytest.raises(BlobCorrupt, match="different key"):
        BlobStore(tmp_path / "blobs", bytes(32)).get(sha)


def test_plain_blob_changed_on_disk_is_detected(tmp_path):
    store = BlobStore(tmp_path / "blobs", None)
    sha = store.put(b"original bytes")
    store.path(sha).write_bytes(b"changed bytes!")
    with pytest.raises(BlobCorrupt, match="does not match its sha256"):
        store.get(sha)
    assert not store.verify(sha)


def test_generated_key_file_is_private_and_stable(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    key = load_key(tmp_path, None, environ={})
    path = Layout(tmp_path).blob_key
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(tmp_path, None, environ={}) == key
    text = path.read_text().strip()
    assert "back it up" in caplog.text and text not in caplog.text
    # a store opened for the storage folder uses that key
    store = Repository(tmp_path).blobs(environ={})
    sha = store.put(b"abc")
    assert BlobStore(tmp_path / "blobs", key).get(sha) == b"abc"
    assert "abc" not in repr(store) and text not in repr(store)


def test_key_from_environment_base64_or_hex(tmp_path):
    raw = os.urandom(32)
    assert load_key(tmp_path, "BK", {"BK": base64.b64encode(raw).decode()}) == raw
    assert load_key(tmp_path, "BK", {"BK": raw.hex()}) == raw
    assert not (Layout(tmp_path).blob_key).exists()


@pytest.mark.parametrize("value", [None, "", "not-a-key-at-all", base64.b64encode(b"short").decode()])
def test_bad_environment_key_is_refused_without_echo(tmp_path, value):
    environ = {} if value is None else {"BK": value}
    with pytest.raises(BlobKeyError) as info:
        load_key(tmp_path, "BK", environ)
    assert "BK" in str(info.value)
    if value:
        assert value not in str(info.value)


def test_large_blob_streams_with_flat_memory(tmp_path):
    """50 MB in and out while Python never holds more than a few chunks."""
    store = encrypted_store(tmp_path)
    size = 50 * 1024 * 1024
    piece = CHUNK // 2 + 7  # odd piece size: exercises the chunk buffer
    expected = hashlib.sha256()

    def generate():
        sent = 0
        while sent < size:
            block = os.urandom(min(piece, size - sent))
            expected.update(block)
            sent += len(block)
            yield block

    tracemalloc.start()
    try:
        sha = store.put(generate())
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        seen, total = hashlib.sha256(), 0
        with store.open_stream(sha) as stream:
            while block := stream.read(300_000):
                seen.update(block)
                total += len(block)
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sha == expected.hexdigest() == seen.hexdigest()
    assert total == size == store.size(sha)
    assert put_peak < 8 * CHUNK and get_peak < 8 * CHUNK, (put_peak, get_peak)
