"""The seed jobs: list templates, plan a seed, run it, read the seeds ledger.

Why a run holds the store for writing: the selection, the id map and the seeds ledger all live in
it, and a backup must not move the state being copied underneath a seed. The seed's status row is
written before the target is touched and after every chunk, so a killed seed is visible as RUNNING
with its counters, and every record's outcome is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replicator.config import Config
from replicator.errors import InvalidInput, NotFound, ReplicatorError
from replicator.progress import Progress, Silent
from replicator.result import JobResult
from replicator.salesforce.automations import SwitchPlan, plan_switch, switched_off
from replicator.salesforce.client import OrgClient
from replicator.seed.masking import Masker
from replicator.seed.plan import ObjectPlan, Prepared, TargetOrg, inspect_target, prepare
from replicator.seed.template import (
    Template,
    TemplateProblem,
    find_template,
    load_template,
    parameters,
    shipped_folder,
    template_names,
)
from replicator.sinks.salesforce.clean import clean
from replicator.sinks.salesforce.load import load
from replicator.sinks.salesforce.model import Outcome
from replicator.sources.snapshot import resolve_run
from replicator.store.database import StoreInUse
from replicator.store.idmap import StoreIdMap
from replicator.store.repository import Repository
from replicator.store.seeds import SeedsLedger, read_status_file
from replicator.store.snapshot import SnapshotStore

__all__ = ["SeedRequest", "SeedsRequest", "TemplatesRequest", "seed_plan", "seed_run", "seed_templates",
           "seeds"]

DUPLICATE_CODES = ("DUPLICATE_VALUE", "DUPLICATES_DETECTED")


def template_folders(config: Config) -> list[Path]:
    """The user's templates (`seed-templates/` beside the config file) first, then the shipped ones."""
    return [config.path.parent / "seed-templates", shipped_folder()]


def seeds_folder(config: Config) -> Path:
    """Where running seeds write their status (read while the seed holds the store)."""
    return Path(config.storage.path) / "seeds"


# --- seed templates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplatesRequest:
    """No options: every template of the folders."""


@dataclass
class TemplatesResult(JobResult):
    templates: list[dict[str, Any]]

    def columns(self) -> list[str]:
        return ["name", "root", "params", "description"]

    def cells(self) -> list[list[str]]:
        return [[t["name"], t["root"] or "", ", ".join(t.get("params") or ()),
                 t["description"] or t.get("problem") or ""] for t in self.templates]

    def text(self) -> str:
        return "\n".join(f"{t['name']:<24} {t['root'] or '?':<14} {t['description'] or t.get('problem')}"
                         for t in self.templates) or "no seed templates"


def seed_templates(config: Config, request: TemplatesRequest) -> TemplatesResult:
    """Every template by name; one that does not read says why instead of hiding."""
    out = []
    for name, path in template_names(template_folders(config)).items():
        try:
            t = load_template(path, None)
            out.append({"name": name, "root": t.root.object, "description": t.description,
                        "params": parameters(path), "path": str(path)})
        except TemplateProblem as exc:
            out.append({"name": name, "root": None, "description": None, "problem": exc.message,
                        "path": str(path)})
    return TemplatesResult(out)


# --- seed plan / seed run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedRequest:
    """A seed of `template` into the org named `to_org`, as of a run of the store."""

    template: str
    to_org: str
    method: str = "incremental"
    params: dict[str, str] = field(default_factory=dict)
    run: str = "last"
    allow_production: bool = False
    disable_automations: bool = False
    only: tuple[str, ...] = ()  # Type:Name of the automations to switch off (default: all)


@dataclass
class SeedPlanResult(JobResult):
    template: str
    target: str
    method: str
    run_id: int
    objects: list[ObjectPlan]
    api_calls: int
    notes: list[str]
    automations: dict[str, Any] | None = None  # what is switched off for the seed, and what stays on

    def text(self) -> str:
        lines = [f"seed {self.template} -> {self.target} ({self.method}, as of run {self.run_id})"]
        if self.automations is not None:
            off = [f"{t} {n}" for t, names in self.automations["switch_off"].items() for n in names]
            lines.append(f"  automations switched off: {', '.join(off) or 'none'}")
            lines.extend(f"  stays on: {k['type']} {k['name']} ({k['reason']})"
                         for k in self.automations["kept_on"])
        for o in self.objects:
            lines.append(f"  {o.object}: {o.records} to {'upsert' if o.upsert_key else 'insert'}"
                         + (f", {o.skipped} already seeded" if o.skipped else "")
                         + (f", {o.deletions} deleted first" if o.deletions else "")
                         + f", {o.api_calls} API calls")
            for ref in o.references:
                lines.append(f"      {ref}")
            for name, rule in o.masked.items():
                lines.append(f"      mask {name}: {rule}")
        lines.extend(f"  note: {n}" for n in self.notes)
        lines.append(f"{sum(o.records for o in self.objects)} records, {self.api_calls} API calls")
        return "\n".join(lines)


@dataclass
class SeedRunResult(JobResult):
    seed: dict[str, Any]
    counts: dict[str, dict[str, int]]
    notes: list[str]

    @property
    def exit_code(self) -> int:
        return 0 if self.seed["status"] == "COMPLETED" else 3

    def text(self) -> str:
        s = self.seed
        lines = [f"seed {s['id']} {s['status']}: {s['insert_success_records']}/{s['total_insert_records']} "
                 f"inserted, {s['insert_fail_records']} failed, {s['delete_success_records']} deleted, "
                 f"{s['duplicated_records']} duplicated, {s['api_calls']} API calls"]
        lines.extend(f"  {obj}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                     for obj, c in sorted(self.counts.items()))
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _org(config: Config, name: str) -> OrgClient:
    if name not in config.orgs:
        known = ", ".join(config.orgs) or "none"
        raise NotFound(f"no org {name!r} in {config.path} (orgs: {known})", key=f"orgs.{name}")
    return OrgClient(config.orgs[name])


@dataclass
class _Seed:
    """A request made concrete: its checked template, the target org and the describes fetched once."""

    config: Config
    request: SeedRequest
    template: Template
    client: OrgClient
    target: TargetOrg
    masker: Masker = field(default_factory=Masker.from_environment)  # one cache for every pass
    describes: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: list[str] = field(default_factory=list)  # the seeded objects, once prepared

    @classmethod
    def of(cls, config: Config, request: SeedRequest) -> _Seed:
        template = load_template(find_template(request.template, template_folders(config)), request.params)
        client = _org(config, request.to_org)
        return cls(config, request, template, client, inspect_target(client, request.to_org))

    def switch_scope(self) -> dict[str, Any]:
        """Which automations a seed switches off: those named, else every one on the seeded objects."""
        if self.request.only:
            return {"only": list(self.request.only)}
        return {"objects": list(self.objects)}

    def switch_plan(self) -> SwitchPlan | None:
        """What --disable-automations will switch (checked and priced before anything is written)."""
        if not self.request.disable_automations:
            if self.request.only:
                raise InvalidInput("naming automations to switch off needs disable_automations")
            return None
        return plan_switch(self.client, **self.switch_scope())

    def prepare(self, store: SnapshotStore) -> Prepared:
        prepared = prepare(self.template, store, self.client, self.target, method=self.request.method,
                           run_id=resolve_run(store, self.request.run), masker=self.masker,
                           allow_production=self.request.allow_production, describes=self.describes)
        self.objects = [o.object for o in prepared.objects]
        return prepared


def seed_plan(config: Config, request: SeedRequest) -> SeedPlanResult:
    """What a seed would do and cost; writes nothing to the target, the store or the ledger."""
    seed = _Seed.of(config, request)
    with Repository.for_storage(config.storage).open_read() as store:
        prepared = seed.prepare(store)
        prepared.selection.close()
    switch = seed.switch_plan()
    return SeedPlanResult(prepared.template.name, request.to_org, request.method, prepared.run_id,
                          prepared.objects, prepared.api_calls + (switch.calls() if switch else 0),
                          prepared.notes, switch.to_json() if switch else None)


class _Recorder:
    """Outcomes to the ledger, counters and progress kept current as chunks complete."""

    def __init__(self, ledger: SeedsLedger, seed_id: int, total: int, id_map: StoreIdMap) -> None:
        self.ledger, self.seed_id, self.total, self.id_map = ledger, seed_id, max(total, 1), id_map
        self.c = {"insert_success_records": 0, "insert_fail_records": 0, "delete_success_records": 0,
                  "delete_fail_records": 0, "duplicated_records": 0}
        self.done = 0

    def __call__(self, outcomes: Sequence[Outcome]) -> None:
        self.ledger.outcomes(self.seed_id, outcomes)
        self.id_map.forget([o.target_id for o in outcomes if o.action == "delete" and o.status == "ok"
                            and o.target_id])
        for o in outcomes:
            if o.action == "update" and o.source_id == o.target_id:
                continue  # deferred lookups a killed seed left unset (the loader's updates carry target Ids)
            if o.action == "delete":
                self.c["delete_success_records" if o.status == "ok" else "delete_fail_records"] += 1
            elif o.action in ("insert", "update"):
                self.c["insert_success_records" if o.status == "ok" else "insert_fail_records"] += 1
                if o.action == "update" or o.error_code in DUPLICATE_CODES:
                    self.c["duplicated_records"] += 1
            elif o.action == "skip":
                self.c["duplicated_records"] += 1
            if o.action != "relink":
                self.done += 1
        self.ledger.update(self.seed_id, progress=min(99, self.done * 100 // self.total), **self.c)


def seed_run(config: Config, request: SeedRequest, progress: Progress | None = None) -> SeedRunResult:
    """Run a seed: automations off (when asked), clean (clean_and_insert), load through the loader,
    automations back on; every outcome in the ledger."""
    progress = progress or Silent()
    seed = _Seed.of(config, request)
    repository = Repository.for_storage(config.storage)
    with repository.open_read() as store:  # every refusal comes here, before anything is written
        seed.prepare(store).selection.close()
        switch = seed.switch_plan()  # a bad --only too
    with repository.open_write("seed") as store:
        prepared, client = seed.prepare(store), seed.client
        ledger = SeedsLedger(store.db, seeds_folder(config))
        totals = {"insert": sum(o.records for o in prepared.objects),
                  "delete": sum(o.deletions for o in prepared.objects)}
        seed_id = ledger.start(template=prepared.template.name, dest=request.to_org, method=request.method,
                               run_id=prepared.run_id, disable_automations=request.disable_automations,
                               automations=_to_disable(switch), totals=totals)
        stored = StoreIdMap(store.db, request.to_org)
        record = _Recorder(ledger, seed_id, totals["insert"] + totals["delete"]
                           + sum(o.skipped for o in prepared.objects), stored)
        start = client.ledger.calls
        try:
            with ExitStack() as stack:
                if switch is not None:  # journaled: a killed seed's automations come back on next time
                    stack.enter_context(switched_off(client, repository.automation_journal(request.to_org),
                                                     **seed.switch_scope()))
                if prepared.deletes:
                    progress.phase("delete", totals["delete"])
                    clean(client, prepared.deletes, record)
                id_map = _SeedIdMap(stored, prepared.matched)
                result = load(client, prepared.load, id_map, progress=progress, record=record)
        except (ReplicatorError, OSError) as exc:
            ledger.update(seed_id, api_calls=client.ledger.calls - start)
            ledger.finish(seed_id, "FAILED", str(exc))
            raise
        finally:
            prepared.selection.close()
        ledger.update(seed_id, api_calls=client.ledger.calls - start)
        failed = record.c["delete_fail_records"] + sum(c.get("failed", 0) for c in result.counts.values())
        ledger.finish(seed_id, "COMPLETED" if not failed else "COMPLETED_WITH_ERRORS")
        status = ledger.status(seed_id)
        assert status is not None
        return SeedRunResult(status, result.counts, prepared.notes)


def _to_disable(switch: SwitchPlan | None) -> dict[str, list[str]] | None:
    """OwnBackup's `automations_to_disable`: names by automation type."""
    if switch is None:
        return None
    return {t: names for t, names in switch.to_json()["switch_off"].items() if names}


class _SeedIdMap:
    """The target's id map, with the users, record types and pricebooks matched for this seed in front."""

    def __init__(self, stored: StoreIdMap, matched: dict[str, str | None]) -> None:
        self.stored = stored
        self.matched = {k: v for k, v in matched.items() if v}

    def lookup(self, source_ids: Sequence[str]) -> dict[str, str]:
        found = {i: self.matched[i] for i in source_ids if i in self.matched}
        found.update(self.stored.lookup([i for i in source_ids if i not in found]))
        return found

    def add(self, sobject: str, pairs: Any) -> None:
        self.stored.add(sobject, pairs)


# --- the seeds ledger -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedsRequest:
    """All seeds, or one (`seed_id`) with its failed records."""

    seed_id: int | None = None


@dataclass
class SeedsResult(JobResult):
    seeds: list[dict[str, Any]]
    failures: list[dict[str, Any]] = field(default_factory=list)
    single: bool = False  # `seeds show N`: one seed in OwnBackup's shape, with its failed records

    def to_json(self) -> Any:
        if self.single:
            return {**self.seeds[0], "failures": self.failures}
        return self.seeds

    def columns(self) -> list[str]:
        return ["id", "template", "to", "method", "status", "progress", "inserted", "failed", "deleted",
                "started"]

    def cells(self) -> list[list[str]]:
        return [[str(s["id"]), s["template"], s["dest_service_id"], s["seeding_method"], s["status"],
                 f"{s['progress']}%", str(s["insert_success_records"]), str(s["insert_fail_records"]),
                 str(s["delete_success_records"]), s["started_at"] or ""] for s in self.seeds]

    def text(self) -> str:
        lines = [" ".join(row) for row in self.cells()]
        lines.extend(f"  failed {f['sobject']} {f['source_id']} ({f['action']}): {f['error_code']} "
                     f"{f['error_message']}" for f in self.failures)
        return "\n".join(lines) or "no seeds yet"


def seeds(config: Config, request: SeedsRequest) -> SeedsResult:
    """The seeds ledger; while a seed holds the store, a seed's status comes from its status file."""
    folder = seeds_folder(config)
    try:
        with Repository.for_storage(config.storage).open_read() as store:
            ledger = SeedsLedger(store.db, folder)
            if request.seed_id is None:
                return SeedsResult(ledger.entries())
            status = ledger.status(request.seed_id)
            failures = ledger.failures(request.seed_id) if status else []
    except StoreInUse:
        if request.seed_id is None:
            raise
        status, failures = read_status_file(folder / f"{request.seed_id}.json"), []
    if status is None:
        raise NotFound(f"no seed {request.seed_id}")
    return SeedsResult([status], failures, single=True)


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """`--param k=v` pairs as a dict; a pair without '=' is a usage error."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"a parameter is key=value, not {pair!r}")
        out[key.strip()] = value
    return out
