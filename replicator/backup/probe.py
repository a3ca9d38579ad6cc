"""The "nothing changed" fast path: which objects changed since the previous run, in few API calls.

A daily backup of a quiet org should cost almost nothing, so before extracting, a run asks the org
one question per object: "would the extract return anything the store does not hold yet?". Each
object's answer is exact for the window [watermark, latestDateCovered), where the watermark is the
`latestDateCovered` Salesforce reported at the previous run's probe (taken before that run's
extract, so windows chain without gaps; Salesforce sets it so that no transaction still in flight
commits an earlier stamp). An object is extracted unless its probe proves "no change":

* cursor SystemModstamp: `/sobjects/X/updated` (created, changed and undeleted records) plus
  `/sobjects/X/deleted` (deletions, those already purged from the recycle bin included) — the
  replication resources read SystemModstamp, the extract's own cursor;
* another cursor (LastModifiedDate without SystemModstamp): the extract's own question as a
  count, `SELECT COUNT() FROM X WHERE <cursor> >= <watermark>` through queryAll (the recycle bin
  too), plus `/deleted` (the extract also reads deletions from there);
* an object that needs a parent filter (ContentDocumentLink): the same count with the filter as a
  semi-join on its parent, `ContentDocumentId IN (SELECT Id FROM ContentDocument)`, and extracted
  whenever the parent itself changed (a deleted document takes its links along, and the semi-join
  cannot see documents in the recycle bin);
* planned but empty ("no records" in the cached plan): `/updated` (or a COUNT() before the object
  has a watermark); records there invalidate the cached plan, which is then rebuilt;
* no cursor (FeedComment: no SystemModstamp): `SELECT COUNT(Id), MAX(CreatedDate),
  MAX(LastEditDate)` compared with the same figures of the store's live records, plus `/deleted`;
  an insert moves the count and CreatedDate, an edit LastEditDate, a deletion the count and
  /deleted (Salesforce cannot undelete a FeedComment; a delete and an undelete in the emulator
  still show in /deleted). When any differs the object is read whole and compared field by field;
* no watermark yet, a `--full` run, or any answer that is not a clean 200: extracted.

A window ends at latestDateCovered, a whole minute on Salesforce, so before probing an incremental
run waits until the org's clock (the Date header of its answers, no API call) has passed the whole
minute after the run's start (at most a minute): every change made before the run started is then
inside the windows, and a window that still ends before that minute (a change log lagging behind
a long transaction) proves nothing. The next windows start where these ended.

Each /deleted window also tells the run which ids were deleted (staged as deletions, whatever the
age of the object's newest record) and whether its log still reaches back to the watermark:
earliestDateAvailable after it (records were removed for good since: hard delete, emptied recycle
bin) or a window refused as too old means deletions may have left no trace, and the run compares
the object's ids with the org's (exactness.reconcile_ids).

Every probe is a GET that /composite carries (sObject resources and queries), so one API call
holds 25 of them, at most 5 of them queries; a describeGlobal with `If-Modified-Since` rides along
and a 304 keeps the cached plan (no describes). An org of 50 unchanged objects costs 5 API calls.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote_plus

from replicator.progress import Progress
from replicator.salesforce import soql
from replicator.salesforce.catalog import ObjectPlan
from replicator.salesforce.client import soql_datetime
from replicator.salesforce.composite import Answer, Batcher, is_query

REPLICATION_DAYS = 30  # /updated accepts a start at most 30 days back
STAMP = "SystemModstamp"  # the field Salesforce's replication resources read
TOO_OLD = "INVALID_REPLICATION_DATE"  # a window starting before what the resource keeps


# --- objects without a stamp: the store's figures ---------------------------------------------


@dataclass(frozen=True)
class Figures:
    """An object's live records in a few numbers: how many, and the newest value of each edit field.

    For an object without SystemModstamp (FeedComment) these are what a change moves: an insert
    the count and CreatedDate, an edit LastEditDate, a deletion the count (and /deleted).
    """

    count: int
    newest: tuple[datetime | None, ...]


def figures_query(plan: ObjectPlan) -> str:
    """SELECT COUNT(Id) and MAX() of each edit field of the live records."""
    newest = ", ".join(f"MAX({soql.name(n)})" for n in plan.edit_fields)
    return "query/?q=" + quote_plus(f"SELECT COUNT(Id), {newest} FROM {soql.name(plan.name)}")


def _org_figures(body: Any, width: int) -> Figures | None:
    """The figures of a figures_query answer (aggregate aliases expr0, expr1, ...)."""
    try:
        row = body["records"][0]
        values = [row[f"expr{i}"] for i in range(width + 1)]
        return Figures(int(values[0]), tuple(_parse_sf_time(v) if v else None for v in values[1:]))
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _unchanged(found: Figures | None, held: Figures, since: datetime) -> bool:
    """The org's figures equal the store's, and every held value predates the window's start.

    A value at or after the start may have been stamped in the same instant as a later edit, so
    only values older than the last read prove that nothing moved since.
    """
    if found is None or found.count != held.count:
        return False
    pairs = list(zip(found.newest, held.newest, strict=True))
    return all(_ms(a) == _ms(b) and (b is None or b < since) for a, b in pairs)


def _ms(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- the probe -----------------------------------------------------------------------------------


class OrgClock(Protocol):
    """The org's clock as its answers tell it (OrgClient.org_time)."""

    def org_time(self) -> datetime | None: ...


class ProbeState(Protocol):
    """What the probe reads of a job's remembered state (backup.JobState)."""

    last_modified: str | None  # describeGlobal Last-Modified the cached plan was built from
    plans: list[Any]  # the cached plan (empty: none yet)
    watermarks: dict[str, str]  # object -> latestDateCovered of its last probe (ISO)


@dataclass
class Probe:
    """What the org said before extraction."""

    plan_valid: bool  # describeGlobal answered 304 and no planned-empty object got records
    last_modified: str | None
    changed: set[str]  # selected objects to extract
    unchanged: set[str]  # selected objects proven unchanged since their watermark
    covered: dict[str, str] = field(default_factory=dict)  # object -> next watermark (ISO)
    dormant: set[str] = field(default_factory=set)  # planned-empty objects proven still empty
    org_now: datetime | None = None  # the org's clock as the probe saw it (earliest latestDateCovered)
    # object -> (Id, deletedDate) /deleted reported in the object's window: the run stages them, so
    # deletions since the last run are applied whatever the age of the object's newest record
    deletions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # object -> why /deleted cannot list every deletion since its watermark (purged log, too old):
    # the run compares the object's ids with the org's (exactness.reconcile_ids)
    gaps: dict[str, str] = field(default_factory=dict)


@dataclass
class _Asked:
    """One object's subrequests (positions in the batch) and how to read them."""

    plan: ObjectPlan
    kind: str  # "replication" | "count" | "dormant" (/updated) | "dormant-count" (COUNT())
    at: list[int]


def _sf_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _parse_sf_time(text: str) -> datetime:
    return datetime.strptime(text.replace("+0000", "+00:00"), "%Y-%m-%dT%H:%M:%S.%f%z")


def _window(plan: ObjectPlan, kind: str, start: datetime) -> str:
    """/sobjects/X/updated or /deleted from `start`; the end lies far ahead, the org clamps it to its now."""
    end = start + timedelta(days=REPLICATION_DAYS)
    query = f"start={_sf_time(start)}&end={_sf_time(end)}".replace("+", "%2B")
    return f"sobjects/{soql.name(plan.name)}/{kind}/?{query}"


def count_query(plan: ObjectPlan, since: datetime | None) -> str:
    """SELECT COUNT() of the records the extract would read from `since` (None: all live records)."""
    clauses = []
    if plan.filter_by is not None:
        by, parent = (soql.name(n) for n in plan.filter_by)
        clauses.append(f"{by} IN (SELECT Id FROM {parent})")
    if since is not None and plan.cursor is not None:
        clauses.append(f"{soql.name(plan.cursor)} >= {soql_datetime(since)}")
    text = f"SELECT COUNT() FROM {soql.name(plan.name)}"
    if clauses:
        text += " WHERE " + " AND ".join(clauses)
    return ("queryAll" if since is not None else "query") + "/?q=" + quote_plus(text)


def dormant_plans(plans: Iterable[ObjectPlan]) -> list[ObjectPlan]:
    """Objects the job wants that the plan left out for having no records (the plan has their fields)."""
    return [p for p in plans if not p.included and p.records == 0 and p.fields]


def change_log_target(start: datetime) -> datetime:
    """The first whole minute a window must reach to cover every change made before `start`.

    `start` is the org's Date header (whole seconds, so the true moment lies within the second
    after it); windows end at whole minutes, so they must end at the minute after that second.
    """
    latest = start + timedelta(seconds=1)
    return latest.replace(second=0, microsecond=0) + timedelta(minutes=1)


def wait_for_change_log(client: OrgClock, progress: Progress) -> datetime | None:
    """Wait until the org's change log covers the run's start; return the minute it must reach.

    /updated and /deleted report whole minutes only, so a record edited seconds before the run
    would otherwise be reported by the next run. Waiting (at most a minute, no API call: the
    clock comes from the Date header of the org's answers) makes the probe exact up to the moment
    the run started. None when the org tells no time (then the probe is exact to the last minute).
    """
    now = client.org_time()
    if now is None:
        return None
    target = change_log_target(now)
    pause = (target - now).total_seconds()
    if pause > 0:
        progress.phase(f"waiting {pause:.0f} s for the org's change log to pass the run's start")
        time.sleep(pause)
    return target


def probe(batcher: Batcher, state: ProbeState, plans: Sequence[ObjectPlan], selected: Sequence[ObjectPlan],
          full: bool, *, start: datetime | None = None, covers: datetime | None = None,
          held: Mapping[str, Figures] | None = None) -> Probe:
    """Ask, in /composite calls, which of `selected` changed since their watermarks (module docstring).

    `plans` is the whole cached plan (its planned-empty objects are probed too). `start` is the
    org's clock as the run began (OrgClient.org_time): with no window to ask (a first run), its
    whole minute is where the extracted objects' next windows start. `covers`
    (wait_for_change_log): a window that ends before it proves nothing, the object is extracted
    (the org's change log may lag behind its clock during long transactions). `held`: the store's
    Figures of objects without a cursor; those are compared instead of read whole.
    """
    held = held or {}
    asks: list[tuple[ObjectPlan, str, list[str]]] = []
    for plan in selected:
        mark = state.watermarks.get(plan.name)
        if mark is None or (plan.cursor is None and plan.name not in held):
            continue  # extracted anyway
        since = datetime.fromisoformat(mark)
        if plan.cursor is None:
            asks.append((plan, "figures", [figures_query(plan), _window(plan, "deleted", since)]))
        elif plan.cursor == STAMP and plan.filter_by is None:
            asks.append((plan, "replication", [_window(plan, k, since) for k in ("updated", "deleted")]))
        elif plan.filter_by is None:
            asks.append((plan, "count", [count_query(plan, since), _window(plan, "deleted", since)]))
        else:
            asks.append((plan, "count", [count_query(plan, since)]))
    for plan in dormant_plans(plans):
        mark = state.watermarks.get(plan.name)
        if mark is not None and plan.cursor == STAMP and plan.filter_by is None:
            asks.append((plan, "dormant", [_window(plan, "updated", datetime.fromisoformat(mark))]))
        else:
            asks.append((plan, "dormant-count", [count_query(plan, None)]))
    windows = [u for _, _, us in asks for u in us if not is_query(u)]
    counts = [u for _, _, us in asks for u in us if is_query(u)]
    # Windows go first: every COUNT() then runs after the earliest latestDateCovered was taken, so
    # the watermark a counted object borrows from it (org_now) never lies after the count's moment.
    describe_global = ("sobjects", {"If-Modified-Since": state.last_modified}
                       if state.last_modified and state.plans else {})
    urls = [describe_global, *((u, {}) for u in windows + counts)]
    position = {u: i for i, (u, _) in enumerate(urls)}
    asked = [_Asked(plan, kind, [position[u] for u in us]) for plan, kind, us in asks]
    clock = start.replace(second=0, microsecond=0) if start is not None else None
    return _read(batcher.get_many(urls), asked, state, selected, full, clock, covers, held)


def _read(answers: list[Answer], asked: list[_Asked], state: ProbeState, selected: Sequence[ObjectPlan],
          full: bool, clock: datetime | None, covers: datetime | None,
          held: Mapping[str, Figures]) -> Probe:
    status, _body, headers = answers[0]
    ends = [_parse_sf_time(body["latestDateCovered"]) for code, body, _ in answers[1:]
            if code == 200 and isinstance(body, dict) and "latestDateCovered" in body]
    org_now = min(ends) if ends else clock
    unchanged: set[str] = set()
    covered: dict[str, str] = {}
    dormant: set[str] = set()
    deletions: dict[str, list[tuple[str, str]]] = {}
    gaps: dict[str, str] = {}
    awake = False
    for item in asked:
        replies = [answers[i] for i in item.at]
        for code, body, _ in replies:
            if code == 200 and isinstance(body, dict) and body.get("deletedRecords"):
                deletions[item.plan.name] = [(r["id"], r["deletedDate"]) for r in body["deletedRecords"]]
        if not item.kind.startswith("dormant") and (gap := _gap(replies, state.watermarks[item.plan.name])):
            gaps[item.plan.name] = gap
            continue  # extracted, and its ids compared with the org's
        if any(code != 200 for code, _, _ in replies):
            # window too old, resource refused...: the extract decides; a planned-empty object
            # loses its watermark (a COUNT() asks next time), or the plan is rebuilt if that failed
            awake = awake or item.kind == "dormant-count"
            continue
        bodies = [body for _, body, _ in replies]
        if item.kind == "figures":
            found = _org_figures(bodies[0], len(item.plan.edit_fields))
            mark = datetime.fromisoformat(state.watermarks[item.plan.name])
            quiet = _unchanged(found, held[item.plan.name], mark) and _empty(bodies[1])
            bodies = bodies[1:]  # the aggregate tells no latestDateCovered
        else:
            quiet = all(_empty(body) for body in bodies)
        own = [_parse_sf_time(b["latestDateCovered"]) for b in bodies if "latestDateCovered" in b]
        until = min(own) if own else org_now
        if covers is not None and until is not None and until < covers:
            awake = awake or item.kind.startswith("dormant")
            continue  # the window stops short of the run's start: the extract decides
        if item.kind.startswith("dormant"):
            if not quiet:
                awake = True
            elif until is not None:
                dormant.add(item.plan.name)
                covered[item.plan.name] = until.isoformat()
        elif quiet and until is not None:
            unchanged.add(item.plan.name)
            covered[item.plan.name] = until.isoformat()
    # an object read through its parent (ContentDocumentLink) changes whenever the parent does
    for plan in selected:
        if plan.filter_by is not None and plan.filter_by[1] not in unchanged:
            unchanged.discard(plan.name)
    if full:
        unchanged.clear()
    changed = {p.name for p in selected if p.name not in unchanged}
    if org_now is not None:
        covered.update({name: org_now.isoformat() for name in changed})
    return Probe(plan_valid=status == 304 and not awake, last_modified=headers.get("last-modified")
                 or state.last_modified, changed=changed, unchanged=unchanged, covered=covered,
                 dormant=dormant, org_now=org_now, deletions=deletions, gaps=gaps)


def _gap(replies: list[Answer], mark: str) -> str | None:
    """Why deletions since `mark` may be missing from /deleted, or None when it lists them all.

    Salesforce's earliestDateAvailable is when records of the object were last removed for good
    (or the 15-day horizon of its deletion log); one at or after the watermark, or a window the org
    refuses as too old (INVALID_REPLICATION_DATE), means deletions may have left no trace.
    """
    since = datetime.fromisoformat(mark)
    for code, body, _ in replies:
        if code == 200 and isinstance(body, dict) and body.get("earliestDateAvailable"):
            earliest = _parse_sf_time(body["earliestDateAvailable"])
            if earliest >= since:  # whole minutes: a removal in the watermark's own minute counts
                return f"its deletion log starts at {earliest:%Y-%m-%d %H:%M} UTC, after the last run"
        elif isinstance(body, list) and TOO_OLD in (e.get("errorCode") for e in body if isinstance(e, dict)):
            return "its deletion log no longer reaches back to the last run"
    return None


def _empty(body: Any) -> bool:
    """An /updated, /deleted or COUNT() answer that reports nothing."""
    if not isinstance(body, dict):
        return False
    if "totalSize" in body:
        return body["totalSize"] == 0
    return not body.get("ids") and not body.get("deletedRecords")


def next_watermarks(previous: Mapping[str, str], found: Probe, ok: set[str]) -> dict[str, str]:
    """Watermarks to remember once the run's apply committed.

    Objects backed up in this run (`ok`) move to the probe's window end, or keep their old mark
    when the probe learned no clock; objects that failed lose it (their next run extracts, from the
    store's cursor). Planned-empty objects proven still empty move on too.
    """
    marks = {k: v for k, v in previous.items() if k in ok}
    marks.update({k: v for k, v in found.covered.items() if k in ok or k in found.dormant})
    return marks
