"""Who did what, when: the audit trail's job functions (record an event, list events, verify the chain).

Events have the shape of OwnBackup's account event history (event_id, created_at, ip_address, key,
parameters, source, user_email, user_id), so the people who read those read ours; each also carries
`prev_hash` and `hash` (store.audit_log). The CLI records one event per command it runs, in one
place (cli/audit.py), so a command added later is audited without doing anything; the REST service
will call `record` with its own actor. Parameters never hold a secret, nor the personal values a
GDPR request names: both are masked before anything is written, and free text (a SQL query) and
record ids are recorded as their digests.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from replicator.config import MASK, Config, Secret
from replicator.errors import InvalidInput
from replicator.result import JobResult, jsonable
from replicator.store.audit_log import AuditLog, Break
from replicator.store.repository import Repository

__all__ = ["Actor", "EventsRequest", "EventsResult", "VerifyResult", "digest", "events", "local_actor",
           "masked", "record", "verify"]

SECRET_WORDS = ("password", "secret", "token", "credential", "passphrase")
PERSONAL = frozenset({"email", "phone", "value"})  # a GDPR subject, or a value written to a record
# `gdpr search --name/--address/--text`: elsewhere a name is a job's or an object's, a text a label's
# and the Id of a record to forget (remembered only as a keyed hash, store.forgotten)
GDPR_PERSONAL = frozenset({"name", "address", "text", "record_id"})
# Recorded as digests: free text may quote anyone's values, and a record id is one of the values a
# GDPR forget must leave nowhere in the storage folder.
DIGESTED = frozenset({"query", "where", "filter", "comment", "sql", "id", "ids", "record_id", "params"})
USER_EMAIL_ENV = "REPLICATOR_USER_EMAIL"


@dataclass(frozen=True)
class Actor:
    """Who acts, as the event history names them."""

    ip_address: str
    source: str
    user_email: str
    user_id: int | str


def local_actor(environ: Mapping[str, str] | None = None) -> Actor:
    """The person at this terminal: their login (and REPLICATOR_USER_EMAIL when set), their SSH client's
    address when they came over SSH, else loopback."""
    env = os.environ if environ is None else environ
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a passwd entry and no LOGNAME/USER
        user = f"uid{os.getuid()}"
    ssh = (env.get("SSH_CONNECTION") or env.get("SSH_CLIENT") or "").split()
    return Actor(ip_address=ssh[0] if ssh else "127.0.0.1", source="cli",
                 user_email=env.get(USER_EMAIL_ENV) or f"{user}@{socket.gethostname()}",
                 user_id=os.getuid())


def masked(key: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values, with secrets and personal values replaced by `***`, and free text
    (a SQL query, a filter, a comment) and record ids by their digest: a GDPR forget must find no
    copy of a person's values in the storage folder, yet whoever holds the text can prove it ran."""
    personal = PERSONAL | (GDPR_PERSONAL if key.startswith("gdpr") else frozenset())
    out: dict[str, Any] = {}
    for name, value in parameters.items():
        lowered = name.lower()
        hidden = (isinstance(value, Secret) or any(word in lowered for word in SECRET_WORDS)
                  or lowered == "key" or lowered.endswith("_key") or lowered in personal)
        if hidden and value is not None:
            out[name] = MASK
        elif lowered in DIGESTED and isinstance(value, str):
            out[name] = digest(value)
        elif lowered in DIGESTED and isinstance(value, list | tuple):  # a repeated option
            out[name] = [digest(v) if isinstance(v, str) else _plain(v) for v in value]
        else:
            out[name] = _plain(value)
    return out


def digest(text: str) -> str:
    """`sha256:<hex> (<n> chars)`: what free text is recorded as."""
    return f"sha256:{hashlib.sha256(text.encode('utf-8')).hexdigest()} ({len(text)} chars)"


def _plain(value: Any) -> Any:
    value = jsonable(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def record(config: Config, key: str, parameters: Mapping[str, Any], actor: Actor,
           at: datetime | None = None) -> dict[str, Any] | None:
    """Append one event (parameters masked); None when the storage folder does not exist yet (a
    command before the first backup touched no data)."""
    moment = at or datetime.now(UTC)
    event = {"created_at": format_datetime(moment.astimezone(UTC), usegmt=True),
             "ip_address": actor.ip_address, "key": key, "parameters": masked(key, parameters),
             "source": actor.source, "user_email": actor.user_email, "user_id": actor.user_id}
    return _log(config).append(event)


def _log(config: Config) -> AuditLog:
    return Repository(config.storage.path).audit_log()


@dataclass
class EventsRequest:
    """`from_id`: leave out that event and every one before it (the seed's `from`)."""

    from_id: int | None = None

    def __post_init__(self) -> None:
        if self.from_id is not None and self.from_id < 0:
            raise InvalidInput(f"an event id is a positive number (got {self.from_id})")


@dataclass
class EventsResult(JobResult):
    """The events asked for, oldest first."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> Any:
        """The list itself, as the seed's event history route returns it."""
        return self.events

    def text(self) -> str:
        """One line per event: id, when, who, from where, what, with which parameters."""
        if not self.events:
            return "no events"
        return "\n".join(
            f"{e.get('event_id')}  {e.get('created_at')}  {e.get('user_email')} ({e.get('ip_address')}, "
            f"{e.get('source')})  {e.get('key')}  {json.dumps(e.get('parameters'), ensure_ascii=False)}"
            for e in self.events)


def events(config: Config, request: EventsRequest) -> EventsResult:
    """The audit log's events after `from_id` (all of them without it)."""
    return EventsResult(list(_log(config).events(request.from_id)))


@dataclass
class VerifyResult(JobResult):
    """Whether the chain holds: events checked, the head's hash, and the first break."""

    log: Path
    events: int
    head: str
    broken: Break | None = None

    @property
    def exit_code(self) -> int:
        """1 when the chain is broken (a scheduler alerts on it)."""
        return 1 if self.broken else 0

    def to_json(self) -> Any:
        """`ok` first, then what was checked."""
        return {"ok": self.broken is None, **jsonable(self)}

    def text(self) -> str:
        """One line: intact with its head, or the first event altered or removed."""
        if self.broken is None:
            return f"audit log intact: {self.events} events, head {self.head}"
        return (f"audit log BROKEN at event {self.broken.event_id}: {self.broken.problem} "
                f"({self.events} events before it verify)")


def verify(config: Config) -> VerifyResult:
    """Re-hash the whole chain and name the first event that was altered, removed or moved."""
    log = _log(config)
    chain = log.verify()
    return VerifyResult(log=log.path, events=chain.events, head=chain.head, broken=chain.broken)
