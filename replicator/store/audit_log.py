"""The audit log: an append-only, hash-chained JSON Lines file beside the snapshot store.

Why a file beside the store and not a table in it: an event must be written whatever the store is
doing. A backup holds DuckDB's single writer for its whole run, while `runs`, `sql` or `export` in
other processes must still be recorded; a GDPR forget rewrites the store's file and must not rewrite
the evidence of it; and the store will later be a DuckLake catalog, not a file. One line per event,
appended under a flock and fsynced, survives all of that, and an auditor can read and re-hash it
with nothing but a JSON parser and SHA-256.

Each event carries `prev_hash` (the previous event's `hash`) and its own `hash`: SHA-256 of the
event's canonical JSON without `hash`. Editing, removing or reordering any event breaks the chain
at that event, and `verify` names it. What a chain cannot show alone: the last events cut off, or
the whole file rewritten by someone with write access; compare `head` with a hash kept elsewhere.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["GENESIS", "AuditLog", "Break", "Chain", "event_hash"]

GENESIS = "0" * 64  # prev_hash of the first event
TAIL_BYTES = 64 * 1024  # an event line is far shorter: the last one is always inside this tail


def event_hash(event: dict[str, Any]) -> str:
    """SHA-256 of the event's canonical JSON (sorted keys, no spaces), its own `hash` left out."""
    body = {k: v for k, v in event.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold: which event, and what is wrong with it."""

    event_id: int
    problem: str


@dataclass(frozen=True)
class Chain:
    """What `verify` found: events that chain, the head's hash, and the first break if any."""

    events: int
    head: str
    broken: Break | None


class AuditLog:
    """One storage folder's audit file (appends never create the folder: no store, nothing to audit)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Give the event the next id and the chain's hashes, append and fsync it; returns the event
        as written, or None when the storage folder does not exist yet."""
        if not self.path.parent.is_dir():
            return None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # id and prev_hash must come from the line we append after
            last = _last_event(fd)
            _end_torn_line(fd)
            written = {"event_id": (last["event_id"] + 1) if last else 1, **event,
                       "prev_hash": last["hash"] if last else GENESIS}
            written["hash"] = event_hash(written)
            line = json.dumps(written, ensure_ascii=False, separators=(",", ":")) + "\n"
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
            return written
        finally:
            os.close(fd)  # releases the flock

    def events(self, from_id: int | None = None) -> Iterator[dict[str, Any]]:
        """The events in file order, those up to and including `from_id` left out (the seed's `from`)."""
        for _, event in self._lines():
            if isinstance(event, dict) and (from_id is None or _id(event) > from_id):
                yield event

    def verify(self) -> Chain:
        """Walk the whole chain; stop at the first event that was altered, removed or moved."""
        prev_id, prev_hash, count = 0, GENESIS, 0
        for number, event in self._lines():
            if not isinstance(event, dict) or not isinstance(event.get("event_id"), int):
                return Chain(count, prev_hash, Break(prev_id + 1, f"line {number} is not an event "
                                                     "(the file was edited)"))
            event_id = event["event_id"]
            if event_id != prev_id + 1:
                where = f"event {event_id} follows event {prev_id}" if prev_id else \
                    f"the log starts at event {event_id}"
                return Chain(count, prev_hash, Break(prev_id + 1, f"event {prev_id + 1} was removed or "
                                                     f"moved ({where})"))
            if event.get("hash") != event_hash(event):
                return Chain(count, prev_hash, Break(event_id, f"event {event_id} was altered (its "
                                                     "content does not match its hash)"))
            if event.get("prev_hash") != prev_hash:  # intact itself: what it chains to was re-hashed
                culprit = prev_id or event_id
                return Chain(count, prev_hash, Break(culprit, f"event {culprit} was altered (event "
                                                     f"{event_id} does not chain to it)"))
            prev_id, prev_hash, count = event_id, event["hash"], count + 1
        return Chain(count, prev_hash, None)

    def _lines(self) -> Iterator[tuple[int, Any]]:
        """(line number, parsed JSON or None) for every non-empty line, streamed."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except ValueError:
                        yield number, None


def _id(event: dict[str, Any]) -> int:
    value = event.get("event_id")
    return value if isinstance(value, int) else 0


def _last_event(fd: int) -> dict[str, Any] | None:
    """The last complete line of the file as an event (read from the tail: the file only grows)."""
    size = os.fstat(fd).st_size
    if not size:
        return None
    start = max(0, size - TAIL_BYTES)
    tail = os.pread(fd, size - start, start).decode("utf-8", errors="replace")
    for line in reversed(tail.splitlines()):
        if line.strip():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a torn last line (a crash mid-write): chain after the last whole event
            if isinstance(event, dict) and isinstance(event.get("event_id"), int):
                return event
    return None


def _end_torn_line(fd: int) -> None:
    """A crash mid-write can leave a last line without its newline: end it, so the next event stays a
    line of its own (verify then names the torn one)."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")
