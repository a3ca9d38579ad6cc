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
* no cursor at all (FeedComment: edits and undeletes move no stamp, so the object is read whole
  and compared every run), no watermark yet, a `--full` run, or any answer that is not a clean
  200: extracted.

A window ends at latestDateCovered (the last whole minute on Salesforce), so a change made in the
minute before a probe is reported by the next run's probe, never lost. A changed object's next
watermark is the probe's earliest latestDateCovered (taken before its extract), so it is read
once more by the next run if the change fell in that minute; the store's dedup makes that free.

Every probe is a GET that /composite carries (sObject resources and queries), so one API call
holds 25 of them, at most 5 of them queries; a describeGlobal with `If-Modified-Since` rides along
and a 304 keeps the cached plan (no describes). An org of 50 unchanged objects costs 5 API calls,
plus the whole read of its objects without a cursor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote_plus

from replicator.salesforce import soql
from replicator.salesforce.catalog import ObjectPlan
from replicator.salesforce.client import soql_datetime
from replicator.salesforce.composite import Answer, Batcher, is_query

REPLICATION_DAYS = 30  # /updated accepts a start at most 30 days back
STAMP = "SystemModstamp"  # the field Salesforce's replication resources read


# --- the probe -----------------------------------------------------------------------------------


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


def probe(batcher: Batcher, state: ProbeState, plans: Sequence[ObjectPlan], selected: Sequence[ObjectPlan],
          cursors: Mapping[str, datetime | None], full: bool) -> Probe:
    """Ask, in /composite calls, which of `selected` changed since their watermarks (module docstring).

    `plans` is the whole cached plan (its planned-empty objects are probed too); `cursors` are the
    store's, used only to learn the org's clock on a run where no object has a watermark yet.
    """
    asks: list[tuple[ObjectPlan, str, list[str]]] = []
    for plan in selected:
        mark = state.watermarks.get(plan.name)
        if mark is None or plan.cursor is None:
            continue  # extracted anyway
        since = datetime.fromisoformat(mark)
        if plan.cursor == STAMP and plan.filter_by is None:
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
    windows = [u for _, _, us in asks for u in us if not is_query(u)] or _clock(selected, cursors)
    counts = [u for _, _, us in asks for u in us if is_query(u)]
    # Windows go first: every COUNT() then runs after the earliest latestDateCovered was taken, so
    # the watermark a counted object borrows from it (org_now) never lies after the count's moment.
    describe_global = ("sobjects", {"If-Modified-Since": state.last_modified}
                       if state.last_modified and state.plans else {})
    urls = [describe_global, *((u, {}) for u in windows + counts)]
    position = {u: i for i, (u, _) in enumerate(urls)}
    asked = [_Asked(plan, kind, [position[u] for u in us]) for plan, kind, us in asks]
    return _read(batcher.get_many(urls), asked, state, selected, full)


def _clock(selected: Sequence[ObjectPlan], cursors: Mapping[str, datetime | None]) -> list[str]:
    """No window to ask yet: one /updated from the newest stamp the store holds, for latestDateCovered."""
    known = [(c, p) for p in selected if p.cursor == STAMP and (c := cursors.get(p.name)) is not None]
    if not known:
        return []
    newest, plan = max(known, key=lambda cp: cp[0])
    return [_window(plan, "updated", newest)]


def _read(answers: list[Answer], asked: list[_Asked], state: ProbeState, selected: Sequence[ObjectPlan],
          full: bool) -> Probe:
    status, _body, headers = answers[0]
    covers = [_parse_sf_time(body["latestDateCovered"]) for code, body, _ in answers[1:]
              if code == 200 and isinstance(body, dict) and "latestDateCovered" in body]
    org_now = min(covers) if covers else None
    unchanged: set[str] = set()
    covered: dict[str, str] = {}
    dormant: set[str] = set()
    awake = False
    for item in asked:
        replies = [answers[i] for i in item.at]
        if any(code != 200 for code, _, _ in replies):
            # window too old, resource refused...: the extract decides; a planned-empty object
            # loses its watermark (a COUNT() asks next time), or the plan is rebuilt if that failed
            awake = awake or item.kind == "dormant-count"
            continue
        bodies = [body for _, body, _ in replies]
        quiet = all(_empty(body) for body in bodies)
        own = [_parse_sf_time(b["latestDateCovered"]) for b in bodies if "latestDateCovered" in b]
        until = min(own) if own else org_now
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
                 dormant=dormant, org_now=org_now)


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
