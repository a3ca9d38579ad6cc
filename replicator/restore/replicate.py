"""Replicate: a whole snapshot (or chosen objects) copied into another org, typically a sandbox.

Why it streams: a replicate is the whole backup, so each object's rows go from the store to the
loader as Arrow batches (never an object in memory), and records the id map already holds for the
target (an earlier replicate) are left out in SQL, so running it again sends only what is missing.
Owners are matched by username or email in the target (others fall back to the running user) and
references to records of objects left out that the target lacks are emptied, both listed in the
plan. The plan and the result are the restore's own (plan.py, job.py): the same loader, the same
output.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from replicator.config import Config
from replicator.errors import InvalidInput, NotFound
from replicator.progress import Progress, Silent
from replicator.restore.job import RestoreResult, org_client, resolve_as_of, switched
from replicator.restore.model import Describer, ObjectModel
from replicator.restore.order import load_order
from replicator.restore.owners import kind_of, other_org
from replicator.restore.plan import RestorePlan
from replicator.restore.selection import Snapshot
from replicator.restore.switch import LEFT_ON, Automations, add_to_plan
from replicator.restore.target import find
from replicator.salesforce.client import OrgClient
from replicator.sinks.salesforce.model import LoadPlan, ObjectStep, Reference
from replicator.sinks.salesforce.price import price
from replicator.store.repository import Repository
from replicator.store.schema import as_of_select, quote
from replicator.store.snapshot import SnapshotStore

__all__ = ["ReplicateRequest", "replicate"]

BATCH_ROWS = 5000


class SameOrg(InvalidInput, ValueError):
    """A replicate into the org the run was taken from (it would copy every record twice)."""


@dataclass(frozen=True)
class ReplicateRequest:
    """Which run, into which org, which objects (all by default); `plan_only` writes nothing."""

    to_org: str
    run: str = "last"
    objects: list[str] | None = None
    plan_only: bool = False
    automations: Automations = LEFT_ON


class _Source:
    """One object's rows as of the run, minus those the target already has a copy of."""

    def __init__(self, store: SnapshotStore, snapshot: Snapshot, obj: str, target: str) -> None:
        self.store, self.obj = store, obj
        self.params = [snapshot.as_of, target]
        self.where = (as_of_select(obj, "$1") + ' AND "Id" NOT IN '
                      "(SELECT source_id FROM main.id_map WHERE target = $2)")

    def count(self) -> int:
        return int(self.store.reads.read(f"SELECT count(*) AS n FROM ({self.where})", self.params)
                   .column("n")[0].as_py())

    def distinct(self, column: str) -> list[str]:
        """The distinct values of a reference column (few: owners, parents outside the set)."""
        q = quote(column)
        query = f"SELECT DISTINCT {q} AS v FROM ({self.where}) WHERE {q} IS NOT NULL"
        table = self.store.reads.read(query, self.params)
        return [v for v in table.column("v").to_pylist() if isinstance(v, str)]

    def batches(self, fields: list[str]) -> Any:
        select = ", ".join(quote(f) for f in ["Id", *fields])
        query = f'SELECT {select} FROM ({self.where}) ORDER BY "Id"'

        def stream() -> Iterator[pa.RecordBatch]:
            yield from self.store.reads.stream(query, self.params, BATCH_ROWS)

        return stream


def _objects(store: SnapshotStore, wanted: list[str] | None) -> list[str]:
    known = store.reads.objects()
    if not wanted:
        return known
    by_lower = {o.lower(): o for o in known}
    missing = [o for o in wanted if o.lower() not in by_lower]
    if missing:
        raise NotFound(f"the store holds no object {', '.join(missing)}")
    return [by_lower[o.lower()] for o in wanted]


def _outside(client: OrgClient, describer: Describer, values: set[str]) -> set[str]:
    """The Ids among `values` the target org does not hold live."""
    grouped: dict[str, set[str]] = {}
    for v in values:
        obj = describer.object_of(v)
        if obj is not None:
            grouped.setdefault(obj, set()).add(v)
    absent = set()
    for obj, ids in grouped.items():
        model = describer.model(obj)
        if model is None:
            absent |= ids
            continue
        live = {i for i, f in find(client, model, ids).items() if not f.deleted}
        absent |= ids - live
    return absent


def plan_replicate(store: SnapshotStore, client: OrgClient, run_id: int, names: list[str], target: str,
                   config: Config) -> RestorePlan:
    """The plan of copying `names` as of `run_id` into `target` (streams; nothing held per record)."""
    snapshot = Snapshot(store, store.reads.as_of_ts(run_id))
    describer = Describer(client)
    notes: list[str] = []
    models: dict[str, ObjectModel] = {}
    for name in names:
        model = describer.model(name)
        if model is None or not model.createable:
            notes.append(f"{name} is not replicated: the target org cannot create its records")
        else:
            models[name] = model
    order = load_order(models, set(models))
    sources = {n: _Source(store, snapshot, n, target) for n in models}
    values: dict[str, set[str]] = {}
    for name, model in models.items():
        columns = snapshot.columns(name)
        for field_name, (targets, _) in model.references.items():
            if field_name not in columns or any(t in models for t in targets):
                continue
            values.setdefault(kind_of(targets) or "", set()).update(sources[name].distinct(field_name))
    foreign = values.pop("", set())
    substitutes, other_notes = other_org(snapshot, client, values)
    notes += other_notes
    emptied = _outside(client, describer, foreign)
    if emptied:
        notes.append(f"{len(emptied)} referenced record(s) of objects not replicated are not in the target: "
                     "those references are emptied")
        substitutes.update(dict.fromkeys(emptied))
    steps, counts = [], {}
    for name in order.objects:
        model, columns = models[name], snapshot.columns(name)
        fields = [f for f in model.insertable if f in columns]
        refs = tuple(Reference(f, targets, required, f in order.deferred.get(name, frozenset()))
                     for f, (targets, required) in sorted(model.references.items()) if f in columns)
        count = sources[name].count()
        inserts = sources[name].batches(fields) if count else None
        steps.append(ObjectStep(name, tuple(fields), refs, inserts=inserts, insert_count=count))
        counts[name] = {"selected": count, "insert": count, "undelete": 0, "update": 0, "skip": 0,
                        "with_parent": 0}
    blobs = Repository.for_storage(config.storage).blobs()
    load = LoadPlan(target, tuple(steps), blobs, tuple(notes))
    pricing = price(load)
    return RestorePlan(run_id=run_id, as_of=snapshot.as_of, target=target, objects=counts,
                       order=list(order.objects),
                       cycles=[{"objects": list(c.objects), "deferred": list(c.deferred),
                                "unbreakable": list(c.unbreakable), "text": c.text()} for c in order.cycles],
                       remapped=[], conflicts=[], files=[], notes=notes, api_calls=pricing.calls,
                       api_calls_by_object=pricing.per_object, _load=load, _substitutes=substitutes)


def replicate(config: Config, request: ReplicateRequest,
              progress: Progress | None = None) -> RestorePlan | RestoreResult:
    """Copy a run into another org (or, with `plan_only`, show what that would do and cost)."""
    repository = Repository.for_storage(config.storage)
    with repository.open_read() as store:
        run_id = resolve_as_of(store, request.run)
        names = _objects(store, request.objects)
        source_org = store.ledger.run(run_id)["org"]
        if request.to_org == source_org:
            raise SameOrg(f"run {run_id} was taken from {source_org}: replicate copies into another org "
                          "(restore puts records back into the same one)")
        client = org_client(config, request.to_org)
        if request.plan_only:
            plan = plan_replicate(store, client, run_id, names, request.to_org, config)
            add_to_plan(plan, client, request.automations)
            return plan
    with repository.open_write("replicate") as store:
        plan = plan_replicate(store, client, run_id, names, request.to_org, config)
        add_to_plan(plan, client, request.automations)
        return switched(config, store, client, plan, "replicate", request.automations, progress or Silent())
