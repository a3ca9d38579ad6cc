"""Simulated org activity between two moments: updates, inserts, deletes, undeletes, bin purge.

Incremental backups are only tested if the org changes between runs the way real orgs do:
audit stamps move forward, some updates share a SystemModstamp (cursor ties), deletes cascade
to master-detail children and sit in the recycle bin, undeletes bring them back, and after 15
days the bin is emptied. Everything is set-based SQL over hash-sampled ids, deterministic from
(seed, step), so a day of churn on a million-row object takes seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from sfemu.datagen import (
    Batch,
    Generator,
    IdSource,
    dependency_order,
    id_array,
    ids_to_matrix,
    refresh_rollups,
    rng_for,
    run_fixups,
    skipped_by_backup,
)
from sfemu.ids import make_id
from sfemu.recyclebin import purge, soft_delete, undelete, unrestricted
from sfemu.schema import Field, SObject
from sfemu.store import DELETED_AT, Store, quote

# Setup objects and objects whose rows only make sense generated together stay still by default.
STATIC = frozenset({"Organization", "RecordType", "Profile", "UserRole", "User", "Pricebook2",
                    "PricebookEntry",
                    "ContentDocument", "ContentVersion", "ContentDocumentLink"})
TIE_GROUPS = 3  # per object and step: groups of updates sharing one SystemModstamp
_LIVE = f"{quote(DELETED_AT)} IS NULL"


@dataclass
class ChurnRates:
    """Fractions per call: of each object's live rows (update, insert, delete) and of its bin (undelete)."""

    update: float = 0.01
    insert: float = 0.002
    delete: float = 0.001
    undelete: float = 0.10
    objects: list[str] | None = None  # None: every business object


@dataclass
class ChurnReport:
    """What one churn call did: rows per object and kind (update, insert, delete, undelete, rollup)."""

    start: datetime
    end: datetime
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    purged: int = 0

    def add(self, obj: str, kind: str, n: int) -> None:
        if n:
            kinds = self.counts.setdefault(obj, {})
            kinds[kind] = kinds.get(kind, 0) + n

    def total(self, kind: str) -> int:
        return sum(k.get(kind, 0) for k in self.counts.values())


class LiveIdSource(IdSource):
    """References of inserted rows point at live records, sampled once per step and target."""

    def __init__(self, store: Store, salt: str) -> None:
        super().__init__(store, {})
        self.salt = salt
        self._counts: dict[str, int] = {}
        self._sample: dict[str, np.ndarray] = {}
        self._ordered: dict[str, np.ndarray] = {}

    def _query(self, target: str, order: str, limit: int, params: list) -> np.ndarray:
        obj = self.store.schema.get(target)
        rows = self.store.cursor().execute(
            f'SELECT "Id" FROM {self.store.table(obj)} WHERE {_LIVE} ORDER BY {order} LIMIT {limit}',
            params).fetchall()
        return ids_to_matrix([r[0] for r in rows])

    def count(self, target: str) -> int:
        obj = self.store.schema.get(target)
        if obj is None or not obj.key_prefix:
            return 0
        if target not in self._counts:
            self._counts[target] = self.store.count(obj)
        return self._counts[target]

    def pick(self, target: str, rng: np.random.Generator, n: int) -> np.ndarray:
        if target not in self._sample:
            self._sample[target] = self._query(target, 'hash("Id" || ?)', 20_000, [self.salt])
        pool = self._sample[target]
        return pool[rng.integers(0, len(pool), n)]

    def nth(self, target: str, index: np.ndarray) -> np.ndarray:
        if target not in self._ordered:
            self._ordered[target] = self._query(target, '"Id"', 10_000, [])
        pool = self._ordered[target]
        return pool[np.asarray(index) % len(pool)]

    def self_parents(self, b: Batch, fill: float) -> pa.Array:
        if not self.count(b.obj.name):
            return pa.nulls(b.n, pa.string())
        return id_array(self.pick(b.obj.name, b.rng, b.n), b.rng.random(b.n) < fill)


def churn_objects(store: Store, rates: ChurnRates) -> list[SObject]:
    """The objects one churn call touches, parents first."""
    schema = store.schema
    if rates.objects is not None:
        objs = [schema.get(n) for n in rates.objects]
        missing = [n for n, o in zip(rates.objects, objs, strict=True) if o is None or not o.key_prefix]
        if missing:
            raise ValueError(f"cannot churn {', '.join(missing)}")
    else:
        objs = [o for o in schema if o.key_prefix and o.createable and o.updateable
                and o.name not in STATIC and not skipped_by_backup(o.name)]
    return [schema.get(n) for n in dependency_order(schema, [o.name for o in objs])]


def _changeable(obj: SObject) -> list[Field]:
    """Fields an update may change: plain data, not names derived from others or keys."""
    person = obj.field("FirstName") is not None
    return [f for f in obj.stored_fields
            if not (f.system or f.rollup or f.auto_number or f.unique or f.external_id or f.calculated)
            and f.createable and f.updateable and f.type not in ("reference", "base64", "id")
            and f.name not in ("IsDeleted", "RecordTypeId")
            and not (person and f.name in ("FirstName", "LastName", "Name"))]


def _k(rate: float, n: int, rng: np.random.Generator) -> int:
    """rate * n rounded at random, so small objects still change now and then."""
    x = rate * n
    return int(x) + int(rng.random() < x - int(x))


def _stamps(low_ms: int, high_ms: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct sorted milliseconds in (low, high] (ties only if the window is too short)."""
    width = high_ms - low_ms
    if n == 0:
        return np.zeros(0, np.int64)
    if width < n:
        return low_ms + 1 + np.floor(np.linspace(0, max(width - 1, 0), n)).astype(np.int64)
    picks = np.unique(rng.integers(1, width + 1, n * 2 + 16))
    return np.sort(low_ms + rng.choice(picks, n, replace=False))


def _ms(moment: datetime) -> int:
    return int(np.datetime64(moment.replace(tzinfo=None), "ms").astype(np.int64))


def _ts(ms: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(ms, np.int64).astype("datetime64[ms]"))


def churn(store: Store, *, seed: int, step: int, rates: ChurnRates | None = None, until: datetime,
          since: datetime | None = None) -> ChurnReport:
    """Simulate activity from the store clock's now (or `since`) to `until`, then set the clock to `until`.

    All stamps lie after the window start and every existing SystemModstamp, and at most `until`.
    The clock runs in real time, so its now differs between runs: pass `since` (e.g. the previous
    `until`) to make the stamps, like everything else, a function of (seed, step) only.
    """
    rates = rates or ChurnRates()
    until = until.replace(tzinfo=None, microsecond=until.microsecond // 1000 * 1000)
    now = (since or store.clock.now()).replace(tzinfo=None)
    objs = churn_objects(store, rates)
    cur = store.cursor()
    rng = rng_for(seed, "churn", step)
    salt = f"{seed}:{step}"
    with store.write_lock:
        floor = max([_ms(now)] + [_ms(m) for o in store.schema if o.key_prefix and o.field("SystemModstamp")
                                  for (m,) in [cur.execute(f'SELECT max("SystemModstamp") FROM '
                                                           f'{store.table(o)}').fetchone()] if m])
        if _ms(until) <= floor:
            raise ValueError(f"until {until} is not after the org's latest change")
        plan = {}
        for o in objs:
            live = store.count(o)
            binned = store.count(o, include_deleted=True) - live
            plan[o.name] = {"insert": _k(rates.insert, live, rng), "update": _k(rates.update, live, rng),
                            "delete": _k(rates.delete, live, rng),
                            "undelete": _k(rates.undelete, binned, rng)}
        total = sum(sum(p.values()) for p in plan.values())
        stamps = _stamps(floor, _ms(until), total + 1, rng)
        pool = stamps[:-1][rng.permutation(total)]  # interleave kinds and objects in time
        blocks: dict[tuple[str, str], np.ndarray] = {}
        at = 0
        for name, kinds in plan.items():
            for kind, k in kinds.items():
                blocks[name, kind] = np.sort(pool[at:at + k])
                at += k
        report = ChurnReport(now, until)
        gen = Generator(store, LiveIdSource(store, salt), seed=int(rng.integers(1 << 31)), start=until,
                        files=True, pool_seed=seed)
        for kind, action in (("insert", _insert), ("update", _update), ("delete", _delete),
                             ("undelete", _undelete)):
            for o in objs:
                if len(blocks[o.name, kind]):
                    action(store, gen, o, blocks[o.name, kind], rng, f"{salt}:{kind}", report)
        last = datetime(1970, 1, 1) + timedelta(milliseconds=int(stamps[-1]))
        for name, n in refresh_rollups(store, last).items():
            report.add(name, "rollup", n)
        report.purged = purge(store, until)
        store.clock.set(until)
    return report


def _insert(store: Store, gen: Generator, obj: SObject, stamps: np.ndarray, rng: np.random.Generator,
            salt: str, report: ChurnReport) -> None:
    k = len(stamps)
    first, _ = store.id_range(obj, k)
    index = store.count(obj, include_deleted=True) + np.arange(k)
    batch = Batch(obj, index, first + np.arange(k), stamps, stamps, stamps, rng_for(gen.seed, obj.name, salt))
    report.add(obj.name, "insert", store.append(obj, [gen.table(batch)]))
    run_fixups(store, obj, make_id(obj.key_prefix, first))


def _sample(store: Store, obj: SObject, where: str, k: int, salt: str) -> list[str]:
    rows = store.cursor().execute(f'SELECT "Id" FROM {store.table(obj)} WHERE {where} '
                                  f'ORDER BY hash("Id" || ?) LIMIT {int(k)}', [salt]).fetchall()
    return [r[0] for r in rows]


def _update(store: Store, gen: Generator, obj: SObject, stamps: np.ndarray, rng: np.random.Generator,
            salt: str, report: ChurnReport) -> None:
    fields = _changeable(obj)
    ids = _sample(store, obj, _LIVE, len(stamps), salt)
    if not fields or not ids:
        return
    stamps = stamps[:len(ids)].copy()
    if len(stamps) >= 2 * TIE_GROUPS:  # a few updates share their predecessor's stamp: cursor ties
        for j in rng.choice(np.arange(1, len(stamps)), TIE_GROUPS, replace=False):
            stamps[j] = stamps[j - 1]
        stamps = np.maximum.accumulate(stamps)
    chosen = [fields[i] for i in rng.choice(len(fields), min(2, len(fields)), replace=False)]
    n = len(ids)
    batch = Batch(obj, np.arange(n), np.zeros(n, np.int64), stamps, stamps, stamps,
                  rng_for(gen.seed, obj.name, salt))
    cols = {"Id": pa.array(ids), "_ts": _ts(stamps)}
    for f in chosen:
        value = gen.value(batch, f, {})
        if value is not None:
            cols[f.name] = value
    sets = [f"{quote(c)} = u.{quote(c)}" for c in cols if c not in ("Id", "_ts")]
    # an edit moves the stamps; on feed objects (FeedComment has no stamp) LastEditDate too
    sets += [f'{quote(c)} = u."_ts"' for c in ("LastModifiedDate", "SystemModstamp", "LastEditDate")
             if obj.field(c)]
    cur = store.cursor()
    cur.register("_upd", pa.table(cols))
    try:
        n = cur.execute(f'UPDATE {store.table(obj)} AS t SET {", ".join(sets)} FROM _upd u '
                        f'WHERE t."Id" = u."Id"').fetchone()[0]
    finally:
        cur.unregister("_upd")
    report.add(obj.name, "update", n)


def _delete(store: Store, gen: Generator, obj: SObject, stamps: np.ndarray, rng: np.random.Generator,
            salt: str, report: ChurnReport) -> None:
    ids = _sample(store, obj, f"{_LIVE} AND {unrestricted(store, obj)}", len(stamps), salt)
    if ids:
        rows = pa.table({"Id": pa.array(ids), "ts": _ts(stamps[:len(ids)])})
        for name, n in soft_delete(store, obj, rows).items():
            report.add(name, "delete", n)


def _undelete(store: Store, gen: Generator, obj: SObject, stamps: np.ndarray, rng: np.random.Generator,
              salt: str, report: ChurnReport) -> None:
    """Restore bin rows deleted on their own (not with a master), with the children deleted with them."""
    where = [f"{quote(DELETED_AT)} IS NOT NULL"]
    for f in obj.stored_fields:
        if f.cascade_delete:
            for target in f.reference_to:
                parent = store.schema.get(target)
                where.append(f'({store.column(f)} IS NULL OR {store.column(f)} IN '
                             f'(SELECT "Id" FROM {store.table(parent)} WHERE {_LIVE}))')
    ids = _sample(store, obj, " AND ".join(where), len(stamps), salt)
    if ids:
        rows = pa.table({"Id": pa.array(ids), "ts": _ts(stamps[:len(ids)])})
        for name, n in undelete(store, obj, rows).items():
            report.add(name, "undelete", n)
