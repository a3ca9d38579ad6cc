"""The audit log: an append-only, hash-chained JSON Lines file beside the snapshot store.

Why a file beside the store and not a table in it: an event must be written whatever the store is
doing. A backup holds DuckDB's single writer for its whole run, while `runs`, `sql` or `export` in
other processes must still be recorded; a GDPR forget rewrites the store's file and must not rewrite
the evidence of it; and the store will later be a DuckLake catalog, not a file. One line per event,
appended under a flock and fsynced, survives all of that, and an auditor can read and re-hash it
with nothing but a JSON parser and SHA-256.

Each event carries `prev_hash` (the previous event's `hash`) and its own `hash`: SHA-256 of the
event's canonical JSON without `hash`. Editing, removing or reordering any event breaks the chain
at that event, and `verify` names it. A chain cannot show its last events cut off, so each append
also replaces `audit.head` (the last event's id and hash): a log that ends before its head lost
events. What neither shows: the whole log and head rewritten by someone with write access; compare
the head with a copy kept elsewhere for that.
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
    """One storage folder's audit file. `writable` is False for a folder that is not (yet) a store:
    nothing of ours was read or changed there, and a folder that is not ours gets no file from us."""

    def __init__(self, path: Path, *, writable: bool = True) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_suffix(".head")
        self.writable = writable

    def append(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Give the event the next id and the chain's hashes, append and fsync it; returns the event
        as written, or None when the folder is not a store (see `writable`)."""
        if not self.writable or not self.path.parent.is_dir():
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
            self._write_head(written)
            return written
        finally:
            os.close(fd)  # releases the flock

    def events(self, from_id: int | None = None) -> Iterator[dict[str, Any]]:
        """The events in file order, those up to and including `from_id` left out (the seed's `from`)."""
        for _, event in self._lines():
            if isinstance(event, dict) and (from_id is None or _id(event) > from_id):
                yield event

    def _write_head(self, event: dict[str, Any]) -> None:
        """Replace the head file atomically (called under the log's flock)."""
        fresh = self.head_path.with_suffix(".head.tmp")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps({"event_id": event["event_id"], "hash": event["hash"]}).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(fresh, self.head_path)

    def _head(self) -> dict[str, Any] | None:
        try:
            head = json.loads(self.head_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            return {}
        return head if isinstance(head, dict) else {}

    def verify(self) -> Chain:
        """Walk the whole chain, then hold its end against the head; name the first event that was
        altered, removed or moved."""
        head = self._head()
        head_id = head.get("event_id") if head else None
        chain, at_head = self._walk(head_id)
        if chain.broken is not None:
            return chain
        last = chain.events
        if head is None:
            return chain if not last else Chain(last, chain.head, Break(
                last + 1, f"{self.head_path.name} is missing: events after {last} may have been removed"))
        if not isinstance(head_id, int) or head.get("hash") is None:
            return Chain(last, chain.head, Break(last + 1, f"{self.head_path.name} was altered"))
        if head_id > last:
            gone = f"event {last + 1}" if head_id == last + 1 else f"events {last + 1} to {head_id}"
            return Chain(last, chain.head, Break(last + 1, f"{gone} removed from the end (the head "
                                                 f"records event {head_id}, the log ends at {last})"))
        if at_head != head["hash"]:
            return Chain(last, chain.head, Break(head_id, f"event {head_id} was altered (it does not "
                                                 "match the head)"))
        return chain

    def _walk(self, head_id: int | None) -> tuple[Chain, str | None]:
        """The chain as far as it holds, and the hash of the event the head names (if reached)."""
        prev_id, prev_hash, count, at_head = 0, GENESIS, 0, None
        for number, event in self._lines():
            problem = _problem(number, event, prev_id, prev_hash)
            if problem is not None:
                return Chain(count, prev_hash, problem), at_head
            prev_id, prev_hash, count = event["event_id"], event["hash"], count + 1
            if prev_id == head_id:
                at_head = prev_hash
        return Chain(count, prev_hash, None), at_head

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


def _problem(number: int, event: Any, prev_id: int, prev_hash: str) -> Break | None:
    """Why this line cannot follow the previous event in the chain, or None when it does."""
    if not isinstance(event, dict) or not isinstance(event.get("event_id"), int):
        return Break(prev_id + 1, f"line {number} is not an event (the file was edited)")
    event_id = event["event_id"]
    if event_id != prev_id + 1:
        where = f"event {event_id} follows event {prev_id}" if prev_id else \
            f"the log starts at event {event_id}"
        return Break(prev_id + 1, f"event {prev_id + 1} was removed or moved ({where})")
    if event.get("hash") != event_hash(event):
        return Break(event_id, f"event {event_id} was altered (its content does not match its hash)")
    if event.get("prev_hash") != prev_hash:  # intact itself: what it chains to was re-hashed
        culprit = prev_id or event_id
        return Break(culprit, f"event {culprit} was altered (event {event_id} does not chain to it)")
    return None


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
