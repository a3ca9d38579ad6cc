"""One backup run of one job: lock, plan, probe, extract, files, reconcile, apply, integrity, prune.

A run is the unit users judge a backup by: its status follows the rules of the products they know
(replicator/backup/status.py), and every way out of it is recorded (replicator/backup/outcome.py).
Everything it calls is a source or a sink; this file only sequences them.

The "nothing changed" fast path (replicator/backup/probe.py): before extracting, a run asks the org in a
few /composite calls which objects changed since the previous run's watermarks and whether the
cached plan still holds; only changed objects are extracted and counted. An org of 50 unchanged
objects costs 5 API calls (after waiting, at most a minute, for the org's minute-wide change log to
pass the run's start, so a change made just before the run is in it).

Where an incremental read cannot be trusted, the run reads whole and compares every field
(replicator/backup/exactness.py): objects without a cursor whose figures changed, a changed
schema, `--full` and the periodic full read, a count that would differ from the org's; it compares
ids only where Salesforce's deletion log no longer reaches back to the last run; and it re-reads by
Id the records whose lookups pointed at records purged since the last run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from replicator.backup.exactness import (
    full_due,
    held_figures,
    purged_ids,
    reconcile,
    reconcile_ids,
    referencing,
    schema_changes,
    stage_deletions,
)
from replicator.backup.files import fetch_bodies
from replicator.backup.outcome import Outcome, RunResult, storage_or
from replicator.backup.probe import Probe, next_watermarks, probe, wait_for_change_log
from replicator.backup.status import (
    OK_SECTION,
    SKIPPED_API_CAP,
    UNCHANGED,
    decide_status,
    failed_streaks,
    joined,
    mark_api_cap,
    status_of,
    stopped_by,
)
from replicator.config import Config, ConfigError, JobSettings
from replicator.errors import InvalidInput
from replicator.progress import Progress, Silent
from replicator.salesforce.catalog import FieldPlan, ObjectPlan
from replicator.salesforce.client import AuthenticationError, BudgetExceeded, OrgClient, OrgError
from replicator.salesforce.composite import Batcher
from replicator.sources.salesforce import connect_staging, extract, stage_ids
from replicator.store.blob_refs import migrate_body_refs
from replicator.store.failures import storage_problem
from replicator.store.forgotten import Forgotten
from replicator.store.lock import StoreLocked
from replicator.store.repository import Repository
from replicator.store.snapshot import Section as StoreSection
from replicator.store.snapshot import SnapshotStore
from replicator.store.versions import CountMismatch

log = logging.getLogger("replicator.backup.run")

PAUSE_ENV = "REPLICATOR_TEST_PAUSE_AT"  # test seam only: sleep at a named phase (see pause())
PAUSE_SECONDS_ENV = "REPLICATOR_TEST_PAUSE_SECONDS"


class BackupError(InvalidInput):
    """A run that cannot start: a selection of objects the org or the plan cannot back up."""


class RunInProgress(StoreLocked, BackupError):
    """Another writer (a backup, an export, ...) holds the storage lock."""


@dataclass(frozen=True)
class BackupRequest:
    """One backup: the job (None = the only one), optionally only some objects, and whether to
    reconcile every record id with the org (`full`, which finds purged deletes)."""

    job: str | None = None
    objects: Sequence[str] | None = None
    full: bool = False


# --- test seam ------------------------------------------------------------------------------------


def pause(phase: str) -> None:
    """Test-only: with REPLICATOR_TEST_PAUSE_AT=<phase>[,<phase>...] sleep at that phase.

    Kill tests start `replicator backup run` as a subprocess and SIGKILL it while it sleeps here;
    the marker line on stderr tells them the run reached the phase. Never set it in production.
    """
    wanted = {p.strip() for p in os.environ.get(PAUSE_ENV, "").split(",") if p.strip()}
    if phase in wanted:
        os.write(2, f"REPLICATOR_PAUSED_AT {phase}\n".encode())
        time.sleep(float(os.environ.get(PAUSE_SECONDS_ENV, "60")))


# --- job selection --------------------------------------------------------------------------------


def pick_job(config: Config, name: str | None) -> JobSettings:
    """The named job, or the only one; a clear error otherwise."""
    if name is None:
        if len(config.jobs) != 1:
            names = ", ".join(sorted(config.jobs)) or "none"
            raise ConfigError(config.path, "jobs", f"name the job to run (jobs: {names})")
        return next(iter(config.jobs.values()))
    if name not in config.jobs:
        names = ", ".join(sorted(config.jobs)) or "none"
        raise ConfigError(config.path, f"jobs.{name}", f"no such job (jobs: {names})")
    return config.jobs[name]


# --- cached plan and watermarks -------------------------------------------------------------------


@dataclass
class JobState:
    """What a job remembers between runs, outside the store: the plan and the probe watermarks.

    Written only after a run's apply committed, so a killed run leaves the previous state and
    the next run re-probes the same (older) windows: conservative, never lossy.
    """

    key: str = ""
    last_modified: str | None = None  # describeGlobal Last-Modified the plan was built from
    plans: list[dict[str, Any]] = field(default_factory=list)
    watermarks: dict[str, str] = field(default_factory=dict)  # object -> latestDateCovered (ISO)
    org_counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, key: str) -> JobState:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(key=key)
        if not isinstance(data, dict) or data.get("key") != key:
            return cls(key=key)  # the job's selection or API version changed: plan again
        return cls(**{k: data[k] for k in ("key", "last_modified", "plans", "watermarks", "org_counts")
                      if k in data})

    def save(self, path: Path) -> None:
        """Atomically (a full or read-only folder leaves the previous state and no half-written file)."""
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(asdict(self)))
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise

    def object_plans(self) -> list[ObjectPlan]:
        out = []
        for p in self.plans:
            fields = [FieldPlan(**f) for f in p["fields"]]
            filter_by = tuple(p["filter_by"]) if p.get("filter_by") else None
            out.append(ObjectPlan(**{**p, "fields": fields, "filter_by": filter_by}))
        return out


def _state_key(job: JobSettings, api_version: str) -> str:
    raw = json.dumps([job.org, api_version, asdict(job.objects)], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


# --- integrity counts ---------------------------------------------------------------------------


def org_counts(batcher: Batcher, plans: list[ObjectPlan]) -> dict[str, int | None]:
    """SELECT COUNT() per object (live records), batched; None where the org refused."""
    countable = [p for p in plans if p.filter_by is None]
    answers = batcher.get_many([(f"query/?q=SELECT+COUNT()+FROM+{p.name}", {}) for p in countable])
    out: dict[str, int | None] = {p.name: None for p in plans}
    for p, (status, body, _) in zip(countable, answers, strict=True):
        if status == 200:
            out[p.name] = int(body["totalSize"])
    return out


# --- the run --------------------------------------------------------------------------------------


def run_backup(config: Config, request: BackupRequest = BackupRequest(),
               progress: Progress = Silent()) -> RunResult:
    """Run one backup of a job; raises BackupError/ConfigError when it cannot start."""
    job = pick_job(config, request.job)
    repository = Repository.for_storage(config.storage)
    repository.blob_listing()  # a configured blob key that is missing or malformed: one line, nothing written
    try:
        store = repository.open_write("backup", job.name, create=True)
    except StoreLocked as exc:
        raise RunInProgress(exc.message, exc.holder) from None
    except Exception as exc:
        raise storage_or(exc, repository) from None
    try:
        with store:
            objects = list(request.objects) if request.objects else None
            return _Run(config, job, repository, store, objects, request.full, progress).execute()
    except Exception as exc:  # before the run was registered, or closing the store after it
        raise storage_or(exc, repository) from None


class _Run:
    """The state of one run while it executes (one instance per run)."""

    def __init__(self, config: Config, job: JobSettings, repository: Repository, store: SnapshotStore,
                 objects: list[str] | None, full: bool, progress: Progress) -> None:
        self.config, self.job, self.objects, self.full, self.progress = config, job, objects, full, progress
        self.org = config.orgs[job.org]
        self.repository = repository
        self.state_path = repository.job_state(job.name)
        self.state = JobState.load(self.state_path, _state_key(job, self.org.api_version))
        self.store = store
        self.client = OrgClient(self.org, api_cap_percent=job.api_cap_percent)
        self.batcher = Batcher(self.client)
        self.started = time.monotonic()
        self.run_id: int | None = None
        self.run_dir: Path | None = None
        self.run_ts = datetime.now(UTC)
        self.counted: set[str] = set()  # objects whose org count this run read fresh
        self.undescribed: list[str] = []  # objects the job wants whose describe failed this run

    def execute(self) -> RunResult:
        self._recover()
        if not self.full and full_due(self.store.ledger.runs(), self.job.name, self.job.full_every_days,
                                      datetime.now(UTC)):
            self.full = True  # the periodic whole read (jobs.<name>.full_every_days)
        kind = "full" if self.full else "incremental"
        self.run_id = self.store.ledger.begin_run(self.job.name, self.job.org, kind, self.full)
        self.run_dir = self.repository.run_folder(self.run_id)
        self.outcome = Outcome(self.store, self.repository, self.client, self.run_id, self.run_dir,
                               self.started)
        pause("started")
        try:
            return self._body()
        except AuthenticationError as exc:
            return self.outcome.finish("disabled", f"the org refused the credentials: {exc}")
        except BudgetExceeded as exc:
            return self.outcome.finish("partial", f"{SKIPPED_API_CAP} before any object was backed up: {exc}")
        except (OrgError, BackupError) as exc:
            return self.outcome.finish("failed", stopped_by(exc))
        except Exception as exc:
            problem = storage_problem(exc, self.repository.layout.root)
            if problem is None:
                self.outcome.crashed(exc)
                raise
            return self.outcome.storage_failed(problem)
        except KeyboardInterrupt:  # Ctrl-C: `runs` says so now, not 'running' until the next writer
            with suppress(Exception):  # past the commit the run stands as committed
                self.outcome.finish("aborted", "interrupted before its commit; nothing of it was committed")
            raise
        finally:
            if self.run_dir is not None:
                shutil.rmtree(self.run_dir, ignore_errors=True)  # staging holds raw rows

    def _recover(self) -> None:
        """Run folders of killed runs (the store marks their rows 'aborted') hold raw rows, and a run
        killed mid-download leaves a half-written body: remove both. Then hold the ballast a run
        frees to record its failure on a full disk. Blobs of a store from before keyed names are
        renamed here, once, whatever the run changes, and its body columns rewritten from sha256s
        to blob ids (store.blob_refs) before the files step carries any of them over."""
        self.repository.remove_run_folders()
        self.repository.blob_listing().discard_partial()
        if self.repository.layout.blobs.is_dir():
            blobs = self.repository.blobs()
            blobs.migrate_names()
            migrate_body_refs(self.store, blobs)
        self.repository.reserve_room()

    def _plan(self) -> list[ObjectPlan]:
        from replicator.salesforce.catalog import plan_org

        return plan_org(self.client, self.job.objects, keep=list(self.store.reads.current_counts()))

    def _selected(self, plans: list[ObjectPlan]) -> list[ObjectPlan]:
        included = [p for p in plans if p.included]
        if not self.objects:
            return included
        by_name = {p.name.lower(): p for p in plans}
        wanted, problems = [], []
        for name in self.objects:
            plan = by_name.get(name.lower())
            if plan is None:
                problems.append(f"{name} (not in the org)")
            elif not plan.included:
                problems.append(f"{name} ({plan.reason})")
            elif plan not in wanted:  # Account,account: one object
                wanted.append(plan)
        if problems:
            raise BackupError(f"cannot back up: {', '.join(problems)}")
        return wanted

    def _body(self) -> RunResult:
        self.progress.phase("plan")
        cached = bool(self.state.plans)
        plans = self.state.object_plans() if cached else self._plan()
        cursors = {p.name: self.store.reads.cursor(p.name) for p in plans if p.included}
        start = self.client.org_time()  # the org's clock as the run starts
        # a change made seconds before the run is in it: wait for the org's minute-wide change log
        waits = self.job.wait_for_change_log and not self.full and bool(self.state.watermarks)
        covers = wait_for_change_log(self.client, self.progress) if waits else None
        self.progress.phase("probe")
        asked = _described(self._selected(plans))
        held = {p.name: f for p in asked if (f := held_figures(self.store.reads, p))}
        found = probe(self.batcher, self.state, plans, asked, self.full, start=start, covers=covers,
                      held=held)
        if cached and not found.plan_valid:
            plans = self._plan()
            cursors = {p.name: self.store.reads.cursor(p.name) for p in plans if p.included}
        selected = _described(self._selected(plans))
        failed = [StoreSection(object=p.name, status="failed", message=p.error)
                  for p in self._selected(plans) if p.error]
        self.undescribed = [s.object for s in failed]
        recorded = self.store.reads.field_types
        events = {p.name: ev for p in selected if (ev := schema_changes(recorded(p.name), p))}
        unchanged = found.unchanged - events.keys()
        todo = [p for p in selected if p.name not in unchanged]
        # Read whole (and compare every field): --full, objects without a cursor, changed schemas.
        whole = {p.name for p in todo if self.full or p.cursor is None or p.name in events}
        pause("planned")

        self.progress.phase(f"extract {len(todo)} objects", len(todo))
        assert self.run_dir is not None
        staging = self.run_dir / "staging.duckdb"
        org_now = max((datetime.fromisoformat(c) for c in found.covered.values()), default=datetime.now(UTC))
        self.run_ts = max(org_now, datetime.now(UTC))
        sections = self._extract(todo, cursors, whole, staging)
        done = {s.object for s in sections if s.status == "ok"}
        stage_deletions(staging, {n: ids for n, ids in found.deletions.items() if n in done},
                        self.repository.key)
        self._gaps({n: why for n, why in found.gaps.items() if n in done and n not in whole}, todo, sections,
                   staging)
        cap_hit = mark_api_cap(sections)
        for s in sections:
            if s.object in events:
                s.message = joined(s.message, f"schema changed ({'; '.join(events[s.object])}): "
                                    "every record re-read and compared")
        sections += [StoreSection(object=p.name, status="ok", message=UNCHANGED)
                     for p in selected if p.name in unchanged]
        sections += failed
        self.progress.advance(n=len(todo))
        pause("extracted")

        ok_plans = [p for p in todo if status_of(sections, p.name) == "ok"]
        if ok_plans and not cap_hit:
            cap_hit = fetch_bodies(self.client, self.repository, self.store, ok_plans, sections, staging,
                                       self.progress)
            ok_plans = [p for p in ok_plans if status_of(sections, p.name) == "ok"]
        pause("files")
        self._reconcile([p for p in ok_plans if p.name in whole], staging)
        pause("reconciled")
        reread = self._cleared_lookups(selected, ok_plans, sections, staging)
        whole_or_reread = whole | reread
        cap_hit = self._count(selected, sections, unchanged) or cap_hit
        pause("applying")
        assert self.run_id is not None
        if not staging.exists():  # nothing extracted: apply still records the sections and status
            connect_staging(staging, self.repository.key).close()
        expect = {s.object: s.org_count for s in sections
                  if s.object in self.counted and s.org_count is not None and s.object not in whole}
        try:
            status, message = self._apply(staging, ok_plans, sections, cap_hit, whole_or_reread, expect)
        except CountMismatch as exc:
            # A count that differs after an incremental read means changes Salesforce did not report
            # (e.g. records purged long ago): read those objects whole and apply again.
            again = [p for p in ok_plans if p.name in exc.off]
            redone = {s.object: s for s in self._extract(again, cursors, set(exc.off), staging)}
            for i, s in enumerate(sections):
                if s.object in redone:
                    org, store = exc.off[s.object]
                    fresh = redone[s.object]
                    fresh.message = joined(fresh.message, f"the org held {org} records where the store "
                                            f"would have held {store}: re-read whole and reconciled")
                    fresh.org_count, fresh.items = s.org_count, s.items + fresh.items
                    sections[i] = fresh
            redo = [p for p in again if status_of(sections, p.name) == "ok"]
            if redo and not cap_hit:
                cap_hit = fetch_bodies(self.client, self.repository, self.store, redo, sections, staging,
                                       self.progress)
            self._reconcile(redo, staging)
            ok_plans = [p for p in ok_plans if status_of(sections, p.name) == "ok"]
            compare = whole_or_reread | set(exc.off)
            status, message = self._apply(staging, ok_plans, sections, cap_hit, compare, None)
        pause("applied")
        message = self._after_commit(plans, found, sections, message)
        return self.outcome.result(status, message, sections)

    def _after_commit(self, plans: list[ObjectPlan], found: Probe, sections: list[Any], message: str) -> str:
        """Save the job state, checkpoint and prune; returns the run's message.

        The run is committed (its versions and final row are in the store's WAL), so a storage
        failure here changes nothing it reported: the state file keeps the previous windows (the
        next run re-reads them), DuckDB replays the WAL on the next open, and the next run prunes.
        The message says so, in a sentence, instead of a traceback after a 'completed'.
        """
        try:
            self._remember(plans, found, sections)
            self.store.versions.checkpoint()
            self.progress.phase("retention")
            self.store.versions.prune(self.job.retention_months)
        except Exception as exc:
            problem = storage_problem(exc, self.repository.layout.root)
            if problem is None:
                raise
            log.warning("run %s committed, then: %s", self.run_id, problem.message)
            return joined(message, f"committed, but then {problem.message}: the next run finishes "
                           "its bookkeeping (job state, checkpoint, retention)")
        return message

    def _extract(self, plans: list[ObjectPlan], cursors: dict[str, datetime | None], whole: set[str],
                 staging: Path) -> list[Any]:
        """Stage `plans` from their store cursors, or from the beginning for those in `whole`."""
        if not plans:
            return []
        start = {p.name: None if p.name in whole else cursors.get(p.name) for p in plans}
        sections = [_store_section(s) for s in extract(self.client, plans, start, staging, run_ts=self.run_ts,
                                                        full=self.full, key=self.repository.key)]
        # GDPR: forgotten records never reach the history (nor their files the blob store) again
        Forgotten.of(self.store.db, self.repository.blob_key).purge_staging(staging)
        return sections

    def _cleared_lookups(self, selected: list[ObjectPlan], ok_plans: list[ObjectPlan], sections: list[Any],
                         staging: Path) -> set[str]:
        """Re-read by Id the stored records whose lookups point at records purged since the last run.

        Salesforce empties such lookups without moving the referencing record's stamp, so no cursor
        sees it. Returns the objects re-read (their staged rows are compared field by field); they
        join `ok_plans` for the apply when the probe had found them unchanged.
        """
        purged = purged_ids(staging, ok_plans, self.repository.key)
        if not purged:
            return set()
        touched = referencing(self.store.reads, selected, purged)
        by_name = {p.name: p for p in selected}
        for name, ids in touched.items():
            section = next(s for s in sections if s.object == name)
            if section.status != "ok":
                continue
            staged = stage_ids(self.client, by_name[name], ids, staging, self.repository.key)
            earlier = None if section.message == UNCHANGED else section.message
            section.message = joined(earlier, f"{staged} records re-read: lookups to purged records")
            section.items += staged
            if by_name[name] not in ok_plans:
                ok_plans.append(by_name[name])
        return set(touched)

    def _gaps(self, gaps: dict[str, str], plans: list[ObjectPlan], sections: list[Any],
              staging: Path) -> None:
        """Objects whose /deleted may miss deletions since the last run: their ids compared with the org's."""
        for plan in (p for p in plans if p.name in gaps):
            section = next(s for s in sections if s.object == plan.name)
            try:
                n = reconcile_ids(self.client, self.store, plan, staging)
            except OrgError as exc:
                section.status, section.message = "failed", f"ids could not be compared with the org: {exc}"
                continue
            section.message = joined(section.message, f"{gaps[plan.name]}: ids compared with the org, "
                                      f"{n} deleted")

    def _reconcile(self, plans: list[ObjectPlan], staging: Path) -> None:
        """Objects read whole: ids the store holds that the read did not return become deletions."""
        if plans:
            self.progress.phase("reconcile ids", len(plans))
            reconcile(self.store, plans, staging, self.progress)

    def _apply(self, staging: Path, ok_plans: list[ObjectPlan], sections: list[Any], cap_hit: bool,
               whole: set[str], expect: dict[str, int] | None) -> tuple[str, str]:
        """Decide the status and commit everything in one transaction (CountMismatch: nothing committed)."""
        streaks = failed_streaks(self.store.ledger, self.job.name, self.run_id, sections)
        status, message = decide_status(sections, streaks, cap_hit, self.undescribed)
        self.progress.phase("apply")
        assert self.run_id is not None
        # the store fills each section's store_count inside the same transaction (integrity check)
        self.store.versions.apply(self.run_id, staging, ok_plans, sections, status=status, message=message,
                                  counters={"api_calls": self.client.ledger.calls}, compare_all=whole,
                                  expect=expect, checkpoint=False)  # _after_commit checkpoints
        return status, message

    def _count(self, selected: list[ObjectPlan], sections: list[Any], unchanged: set[str]) -> bool:
        """Org counts for the integrity check and the 95% rule; unchanged objects keep the last count.

        Returns True when the API cap stopped the counting (the objects already staged still apply).
        """
        try:
            fresh = org_counts(self.batcher, [p for p in selected if p.name not in unchanged])
        except BudgetExceeded:
            fresh = {}
        self.counted = {o for o, n in fresh.items() if n is not None}
        planned = {p.name: p.records for p in selected}
        for s in sections:
            # the org refused the count (e.g. QUERY_TIMEOUT): the last known count, else the plan's,
            # so a failed big object weighs what it holds in the 95% rule, not one record
            known = fresh.get(s.object)
            s.org_count = known if known is not None else self.state.org_counts.get(
                s.object, planned.get(s.object))
        return not fresh and len(unchanged) < len(selected)

    def _remember(self, plans: list[ObjectPlan], found: Probe, sections: list[Any]) -> None:
        ok = {s.object for s in sections if s.status in OK_SECTION}
        # a plan with a failed describe is not kept: the next run describes the org again
        self.state.plans = [] if self.undescribed else [asdict(p) for p in plans]
        self.state.last_modified = found.last_modified
        self.state.watermarks = next_watermarks(self.state.watermarks, found, ok)
        self.state.org_counts.update({s.object: s.org_count for s in sections if s.org_count is not None})
        self.state.save(self.state_path)


def _described(plans: list[ObjectPlan]) -> list[ObjectPlan]:
    """The plans that can be read: those whose describe answered."""
    return [p for p in plans if p.error is None]


def _store_section(s: Any) -> StoreSection:
    """The source's Section as the store's ledger row (the source also counts /deleted ids)."""
    message = s.message
    if getattr(s, "deleted_ids", 0):
        message = joined(message, f"{s.deleted_ids} ids from /deleted")
    return StoreSection(object=s.object, status=s.status, message=message, items=s.items,
                        api_calls=s.api_calls, bulk_batches=s.bulk_batches, method=s.method,
                        seconds=s.seconds, org_count=s.org_count)
