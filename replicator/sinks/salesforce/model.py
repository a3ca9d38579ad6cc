"""What the loader is asked to do and what it answers: the contract between the jobs that build
plans (restore, replicate, seed) and the loader that executes them.

Plans stream: each step's rows come from a callable that yields Arrow batches, so a replicate of a
whole snapshot never holds an object in memory. Ids in the rows are the *source* Ids (the backed-up
ones); the loader replaces every reference it can through the id map and reports the new Ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import pyarrow as pa

Action = Literal["undelete", "insert", "update", "relink", "skip", "delete"]
Status = Literal["ok", "failed", "skipped"]
Batches = Callable[[], Iterator[pa.RecordBatch]]
# Rows of an object's batch the load may write: the others (GDPR-forgotten records) are refused.
Keep = Callable[[str, pa.RecordBatch], pa.RecordBatch]

# Column of an update row naming the fields to send for that record (list<string>): Salesforce's
# own restore overwrites only the fields that differ, and so do we.
CHANGED = "__changed"


@dataclass(frozen=True)
class Reference:
    """A reference field of a step's object, as the target org's describe has it."""

    field: str  # e.g. "AccountId", "WhatId", "ParentId"
    targets: tuple[str, ...]  # referenced sObjects; several for polymorphic fields
    required: bool = False  # not nillable on create (master-detail or required lookup)
    deferred: bool = False  # breaks a cycle: inserted empty, set by a second pass ("relink")


@dataclass(frozen=True)
class ObjectStep:
    """One object's share of a plan. Steps run in plan order (parents first)."""

    sobject: str
    fields: tuple[str, ...]  # writable fields to send on insert (createable in the target)
    references: tuple[Reference, ...] = ()
    undelete: tuple[str, ...] = ()  # Ids in the target's recycle bin: undeleted, Ids kept
    inserts: Batches | None = None  # rows: "Id" (source Id) + fields
    insert_count: int = 0
    updates: Batches | None = None  # rows: "Id" (existing in target) + fields + CHANGED
    update_count: int = 0
    skipped: tuple[str, ...] = ()  # Ids left alone (unchanged SystemModstamp): reported, not sent
    upsert_key: str | None = None  # inserts go as upserts by this external id field (seed --method upsert)


@dataclass(frozen=True)
class Outcome:
    """One record's fate, kept in the restores ledger so `restore retry` resends only failures."""

    sobject: str
    source_id: str
    target_id: str | None
    action: Action
    status: Status
    error_code: str | None = None  # Salesforce's statusCode, e.g. FIELD_CUSTOM_VALIDATION_EXCEPTION
    error_message: str | None = None


class IdMap(Protocol):
    """Source Id -> target Id per target org, persisted so a second restore reuses it."""

    def lookup(self, source_ids: Sequence[str]) -> dict[str, str]:
        """The known target Ids of these source Ids."""
        ...

    def add(self, sobject: str, pairs: pa.Table) -> None:
        """Remember new pairs (columns `source_id`, `target_id`)."""
        ...


class BodyReader(Protocol):
    """File bodies by the content hash the store keeps in VersionData/Body columns."""

    def get(self, sha: str) -> bytes:
        ...


@dataclass(frozen=True)
class LoadPlan:
    """Everything the loader needs; built by a job, executed (or only priced) by the loader."""

    target: str  # the target org's name in the config (the id map's key)
    steps: tuple[ObjectStep, ...]
    bodies: BodyReader | None = None
    notes: tuple[str, ...] = field(default=())  # plan-time warnings shown with the result
    keep: Keep | None = None  # the last guard of "never write a forgotten subject" (issue 12)
