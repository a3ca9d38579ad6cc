"""The restore job: plan, run and retry a restore from the store into an org; list the ledger.

Flow: the store (records as of a run, selection.py) + the target org's describe and state
(plan.py) -> a LoadPlan -> THE loader (sinks/salesforce) -> the restores ledger and the id map. A
plan saved with `--out` names its store by the run's timestamp, so it is refused by another store;
running it re-reads the target's state, because the org may have changed since it was planned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from replicator.config import Config
from replicator.errors import InvalidInput, NotFound
from replicator.progress import Progress, Silent
from replicator.restore.owners import Overlay
from replicator.restore.plan import Planner, RestorePlan
from replicator.restore.selection import RELATED, BadSelection, Selection, Snapshot, Where, add_children, seed
from replicator.restore.switch import LEFT_ON, Automations, add_to_plan, off_during
from replicator.result import JobResult
from replicator.salesforce.client import OrgClient
from replicator.sinks.salesforce.load import load
from replicator.sinks.salesforce.model import Outcome
from replicator.sources.snapshot import APPLIED, UnknownRun, resolve_run
from replicator.store.idmap import StoreIdMap
from replicator.store.repository import Repository
from replicator.store.restores import RestoresLedger
from replicator.store.snapshot import SnapshotStore

__all__ = ["BadPlanFile", "RestoreRequest", "RestoreResult", "calls_spent", "execute", "org_client",
           "plan_restore", "resolve_as_of", "retry_restore", "run_restore"]

PLAN_FORMAT = "replicator-restore-plan/1"
_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")


class BadPlanFile(InvalidInput, ValueError):
    """A plan file that is not one, or was made from another store."""


class UnknownOrg(NotFound, ValueError):
    """A target org the config does not define."""


@dataclass(frozen=True)
class RestoreRequest:
    """What to restore (by Id, by filter or from a saved plan) and where to."""

    run: str = "last"
    object: str | None = None
    ids: tuple[str, ...] | None = None
    where: str | None = None
    with_related: str = "none"
    to_org: str | None = None
    plan_file: Path | None = None
    out: Path | None = None
    automations: Automations = LEFT_ON


@dataclass
class RestoreResult(JobResult):
    """A finished restore: per object inserted, updated, undeleted, skipped, failed; calls spent."""

    restore_id: int
    target: str
    run_id: int | None
    counts: dict[str, dict[str, int]]
    api_calls: int
    predicted_calls: int
    read_calls: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    automation_calls: int = 0  # switching automations off and back on (--disable-automations)

    @property
    def exit_code(self) -> int:
        """2 when some records failed (the others are restored), as a partial backup."""
        return 2 if self.failures else 0

    def text(self) -> str:
        """One line per object, then the failures."""
        switching = f", {self.automation_calls} to switch automations off and on" \
            if self.automation_calls else ""
        lines = [f"restore {self.restore_id} into {self.target}: {self.api_calls} API calls to write "
                 f"(planned {self.predicted_calls}), {self.read_calls} to read the org{switching}"]
        for obj, c in self.counts.items():
            lines.append(f"  {obj}: inserted {c.get('inserted', 0)}, updated {c.get('updated', 0)}, "
                         f"undeleted {c.get('undeleted', 0)}, skipped {c.get('skipped', 0)}, "
                         f"failed {c.get('failed', 0)}")
        lines += [f"  failed {f['sobject']} {f['source_id']} ({f['action']}): {f['error_code']}: "
                  f"{f['error_message']}" for f in self.failures[:20]]
        if len(self.failures) > 20:
            lines.append(f"  ... {len(self.failures) - 20} more (replicator restores show {self.restore_id})")
        return "\n".join(lines)


def resolve_as_of(store: SnapshotStore, run: str) -> int:
    """A run from 'last', its number, or an instant (the newest run committed at or before it)."""
    if run == "last" or run.isdigit():
        return resolve_run(store, run)
    try:
        moment = datetime.fromisoformat(run)
    except ValueError:
        raise BadSelection(f"a run is 'last', a run number or a timestamp, not {run!r}") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    before = [r["run_id"] for r in store.ledger.runs() if r["status"] in APPLIED and r["run_ts"] <= moment]
    if not before:
        raise UnknownRun(f"no run committed at or before {moment.isoformat()}")
    return before[-1]


def org_client(config: Config, name: str) -> OrgClient:
    if name not in config.orgs:
        known = ", ".join(sorted(config.orgs)) or "none defined"
        raise UnknownOrg(f"no org named {name!r} in the config (orgs: {known})")
    client = OrgClient(config.orgs[name])
    client.login()
    return client


def _saved(path: Path) -> dict[str, Any]:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadPlanFile(f"{path} is not a readable restore plan ({type(exc).__name__})") from None
    if not isinstance(saved, dict) or saved.get("format") != PLAN_FORMAT \
            or not isinstance(saved.get("records"), dict):
        raise BadPlanFile(f"{path} is not a restore plan saved by 'restore plan --out'")
    return saved


def _stamp(store: SnapshotStore, run_id: int) -> str:
    return store.reads.as_of_ts(run_id).isoformat()


def _validated(request: RestoreRequest) -> None:
    if request.with_related not in RELATED:
        raise BadSelection(f"related records are one of {', '.join(RELATED)}, not {request.with_related!r}")
    if request.plan_file is None and not request.object:
        raise BadSelection("choose an object (or a saved plan)")
    bad = [i for i in request.ids or () if not _ID.fullmatch(i)]
    if bad:
        raise BadSelection(f"not a Salesforce Id: {bad[0]!r}")
    if request.ids is not None and not request.ids:
        raise BadSelection("no Id given")


def build(store: SnapshotStore, config: Config, request: RestoreRequest,
          opened: dict[str, OrgClient] | None = None) -> tuple[RestorePlan, OrgClient]:
    """The plan of `request` against its target org (the org the run was taken from by default)."""
    _validated(request)
    saved = _saved(request.plan_file) if request.plan_file else None
    run_text = str(saved["run_id"]) if saved else request.run
    try:
        run_id = resolve_as_of(store, run_text)
    except UnknownRun:
        if saved:
            raise BadPlanFile(f"{request.plan_file} was made from another store (it has no run "
                              f"{saved['run_id']})") from None
        raise
    if saved and saved.get("run_ts") != _stamp(store, run_id):
        raise BadPlanFile(f"{request.plan_file} was made from another store (its run {run_id} "
                          "was taken at another time)")
    target = (saved or {}).get("target") or request.to_org or store.ledger.run(run_id)["org"]
    client = (opened or {}).get(target) or org_client(config, target)
    planner = _planner(store, config, client, run_id, target)
    if saved:
        _add_records(planner, saved["records"])
        related = "none"
    else:
        assert request.object is not None
        where = Where.parse(request.where) if request.where is not None else None
        seeds = seed(planner.snapshot, request.object, request.ids, where)
        planner.selection.add(request.object, seeds)
        related = request.with_related
        if related != "none":
            add_children(planner.snapshot, planner.describer, planner.selection, {request.object: seeds})
    planner.pull_parents(every=related == "all")
    if target != store.ledger.run(run_id)["org"]:
        planner.map_other_org()
    plan = planner.plan(run_id)
    add_to_plan(plan, client, request.automations)
    return plan, client


def _planner(store: SnapshotStore, config: Config, client: OrgClient, run_id: int, target: str) -> Planner:
    snapshot = Snapshot(store, store.reads.as_of_ts(run_id))
    return Planner(snapshot, client, StoreIdMap(store.db, target), target, Selection(),
                   Repository.for_storage(config.storage).blobs())


def _add_records(planner: Planner, records: dict[str, list[str]]) -> None:
    """Exactly these records (a saved plan's selection, a retry's failures)."""
    for obj, ids in sorted(records.items()):
        if not isinstance(ids, list) or not all(isinstance(i, str) and _ID.fullmatch(i) for i in ids):
            raise BadPlanFile(f"the records of {obj} are not a list of Salesforce Ids")
        planner.selection.add(obj, seed(planner.snapshot, obj, ids, None))


def _save(plan: RestorePlan, store: SnapshotStore, out: Path) -> None:
    if out.is_dir():
        raise BadSelection(f"{out} is a folder: name the plan file to write")
    if not out.parent.is_dir():
        raise BadSelection(f"the folder {out.parent} does not exist")
    body = {"format": PLAN_FORMAT, "run_id": plan.run_id, "run_ts": _stamp(store, plan.run_id),
            "target": plan.target, "records": plan.records, "plan": plan.to_json()}
    out.write_text(json.dumps(body, indent=1, default=str), encoding="utf-8")


def plan_restore(config: Config, request: RestoreRequest) -> RestorePlan:
    """Everything a restore would do and cost; nothing is written to the org or the store."""
    with Repository.for_storage(config.storage).open_read() as store:
        plan, _ = build(store, config, request)
        if request.out is not None:
            _save(plan, store, request.out)
    return plan


@contextmanager
def _recorded(store: SnapshotStore, kind: str, plan: RestorePlan, retry_of: int | None) -> Iterator[
        tuple[RestoresLedger, int]]:
    ledger = RestoresLedger(store.db)
    restore_id = ledger.begin(kind, plan.target, plan.run_id, plan.api_calls, retry_of)
    try:
        yield ledger, restore_id
    except BaseException as exc:
        ledger.finish(restore_id, "failed", 0, {}, str(exc) or type(exc).__name__)
        raise


def execute(store: SnapshotStore, client: OrgClient, plan: RestorePlan, kind: str, *, read_calls: int,
            progress: Progress, retry_of: int | None = None) -> RestoreResult:
    """Load `plan`, every outcome kept in the ledger as it comes; the entry closed with the counts."""
    with _recorded(store, kind, plan, retry_of) as (ledger, restore_id):
        ledger.record(restore_id, _with_parent_outcomes(plan))
        id_map = StoreIdMap(store.db, plan.target)
        loaded = Overlay(id_map, plan._substitutes) if plan._substitutes else id_map
        result = load(client, plan.load_plan, loaded, progress=progress,
                      record=lambda outcomes: ledger.record(restore_id, outcomes))
        counts = {obj: dict(c) for obj, c in result.counts.items()}
        for obj, ids in plan.with_parent.items():
            counts.setdefault(obj, {})["undeleted"] = counts.get(obj, {}).get("undeleted", 0) + len(ids)
        failures = ledger.outcomes(restore_id, failed_only=True)
        ledger.finish(restore_id, "partial" if failures else "completed", result.api_calls, counts)
    return RestoreResult(restore_id, plan.target, plan.run_id, counts, result.api_calls, plan.api_calls,
                         read_calls, failures)


def _with_parent_outcomes(plan: RestorePlan) -> list[Outcome]:
    """Records that came back with their parent's undelete (never sent on their own)."""
    return [Outcome(obj, i, i, "undelete", "ok", None, "undeleted with its parent")
            for obj, ids in plan.with_parent.items() for i in ids]


def calls_spent(client: OrgClient) -> int:
    """Calls spent so far that the org counts (logins are not)."""
    return client.ledger.calls - client.ledger.by_kind["auth"]


def run_restore(config: Config, request: RestoreRequest, progress: Progress | None = None) -> RestoreResult:
    """Plan and execute a restore (the plan re-read from the org, so it matches the org of now).

    The plan is built on the store opened read-only: bad input is refused before the store is
    opened for writing, so it leaves the store file as it was."""
    repository = Repository.for_storage(config.storage)
    with repository.open_read() as store:
        plan, client = build(store, config, request)
    with repository.open_write("restore") as store:
        return switched(config, store, client, plan, "restore", request.automations, progress or Silent())


def switched(config: Config, store: SnapshotStore, client: OrgClient, plan: RestorePlan, kind: str,
             automations: Automations, progress: Progress, retry_of: int | None = None) -> RestoreResult:
    """`execute` with the target's automations off if asked; the calls switching spent counted apart."""
    start = calls_spent(client)
    with off_during(config, client, plan.order, automations):
        result = execute(store, client, plan, kind, read_calls=start, progress=progress, retry_of=retry_of)
    result.automation_calls = calls_spent(client) - start - result.api_calls
    return result


def retry_restore(config: Config, restore_id: int, progress: Progress | None = None,
                  automations: Automations = LEFT_ON) -> RestoreResult:
    """Restore again only the records restore `restore_id` failed, with the same run and target."""
    repository = Repository.for_storage(config.storage)
    with repository.open_read() as store:
        ledger = RestoresLedger(store.db)
        entry = ledger.entry(restore_id)
        failed = ledger.outcomes(restore_id, failed_only=True)
        if not failed:
            raise BadSelection(f"restore {restore_id} has no failed records to retry")
        records: dict[str, list[str]] = {}
        for row in failed:
            records.setdefault(row["sobject"], []).append(row["source_id"])
        client = org_client(config, entry["target"])
        planner = _planner(store, config, client, int(entry["run_id"]), entry["target"])
        _add_records(planner, records)
        planner.pull_parents(every=False)
        plan = planner.plan(int(entry["run_id"]))
        add_to_plan(plan, client, automations)
    with repository.open_write("restore") as store:
        return switched(config, store, client, plan, "retry", automations, progress or Silent(), restore_id)
