"""Verify a storage folder, as restic's `check` verifies a repository: the store must be restorable.

A backup nobody can restore is worse than none, because it is trusted. This job reads (never writes)
the store and names what would make a restore or an as-of read wrong: overlapping or missing current
versions, versions of runs that never committed, body columns naming blobs that are gone (and, when
asked, blobs that no longer decrypt or no longer match their hash), ledger rows left open by a
process that died, run folders that still hold raw staged rows, and an audit log whose hash chain
no longer holds (so one command proves both the data and the record of who touched it are whole).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from replicator.config import Config
from replicator.errors import Locked
from replicator.result import JobResult
from replicator.store import integrity
from replicator.store.lock import holder_of
from replicator.store.repository import Repository

__all__ = ["CheckRequest", "CheckResult", "check"]

BLOB_NAME = re.compile(r"[0-9a-f]{64}")
SHOWN = 20  # problems listed in the text; the JSON has them all


@dataclass
class CheckRequest:
    """What to verify beyond the structure: `read_blobs` decrypts and hashes every referenced blob."""

    read_blobs: bool = False


@dataclass
class CheckResult(JobResult):
    """What was checked and the problems found, first ones first."""

    objects: int = 0
    versions: int = 0
    runs: int = 0
    blobs: int = 0
    blobs_read: int = 0
    audit_events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when any problem was found (scripts and schedulers alert on it)."""
        return 1 if self.problems else 0

    def text(self) -> str:
        """A summary line, then the first problems."""
        read = f", {self.blobs_read} read and verified" if self.blobs_read else ""
        summary = (f"{self.objects} objects, {self.versions} versions, {self.runs} runs, "
                   f"{self.blobs} referenced blobs{read}, {self.audit_events} audit events")
        if not self.problems:
            return f"no problems found ({summary})"
        lines = [f"{len(self.problems)} problems found ({summary}):"]
        lines += [f"  {p}" for p in self.problems[:SHOWN]]
        if len(self.problems) > SHOWN:
            lines.append(f"  ... and {len(self.problems) - SHOWN} more")
        return "\n".join(lines)


def check(config: Config, request: CheckRequest) -> CheckResult:
    """Check the configured storage folder; raises NoBackups before the first backup and Locked while a
    writer holds the store (its work in progress would look like problems)."""
    repository = Repository.for_storage(config.storage)
    holder = holder_of(repository.layout)
    if holder is not None:
        raise Locked(f"a {holder.get('what') or 'backup'} (pid {holder.get('pid', '?')}, started "
                     f"{holder.get('started', '?')}) is writing to {repository.layout.root}; "
                     "check it afterwards")
    result = CheckResult()
    blobs = repository.blobs() if request.read_blobs else None
    presence = repository.blob_listing()
    with repository.open_read() as store:
        result.runs = len(store.ledger.runs())
        for obj in store.reads.objects():
            result.objects += 1
            result.versions += integrity.version_count(store, obj)
            result.problems += integrity.history_problems(store, obj)
            for sha in integrity.body_shas(store, obj):
                result.blobs += 1
                if not BLOB_NAME.fullmatch(sha):
                    result.problems.append(f"{obj}: a body column holds {sha[:80]!r}, not a blob id")
                elif not presence.has(sha):
                    result.problems.append(f"{obj}: blob {sha} is referenced but missing")
                elif blobs is not None:
                    result.blobs_read += 1
                    if not blobs.verify(sha):
                        result.problems.append(f"{obj}: blob {sha} does not decrypt or match its sha256")
        result.problems += integrity.open_ledger_rows(store)
    result.problems += [f"run folder {path} was left behind by a killed run (it holds raw records)"
                        for path in repository.leftover_run_folders()]
    result.problems += [f"{path} was left behind by a killed rewrite of the store (it may hold erased or "
                        "plain values; the next writer removes it)"
                        for path in repository.leftover_rewrites()]
    chain = repository.audit_log().verify()
    result.audit_events = chain.events
    if chain.broken is not None:
        result.problems.append(f"audit log {repository.layout.audit.name} broken at event "
                               f"{chain.broken.event_id}: {chain.broken.problem}")
    return result
