"""Churn: deterministic org activity with ordered stamps, ties, cascading deletes, undeletes and purges."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_datagen import START, build, dangling, dump, one, rollup_mismatches
from test_datagen import schema as schema

from sfemu.churn import ChurnRates, churn
from sfemu.schema import Schema
from sfemu.store import Store

DAY = timedelta(days=1)


def max_stamp(store: Store, name: str):
    return one(store, f'SELECT max("SystemModstamp") FROM "{name}"')


def test_same_seed_and_step_give_the_same_changes(schema: Schema) -> None:
    a, b = build(schema, scale=1500), build(schema, scale=1500)
    ra = churn(a, seed=3, step=1, until=START + DAY, since=START)
    rb = churn(b, seed=3, step=1, until=START + DAY, since=START)
    assert ra.counts == rb.counts
    assert dump(a) == dump(b)
    c = build(schema, scale=1500)
    churn(c, seed=3, step=2, until=START + DAY, since=START)
    assert dump(a) != dump(c)


def test_changes_are_stamped_after_the_previous_max_within_the_window_with_ties(schema: Schema) -> None:
    store = build(schema)
    before = {n: max_stamp(store, n) for n in ("Account", "Contact", "Task")}
    report = churn(store, seed=1, step=1, until=START + DAY, rates=ChurnRates(update=0.05))
    assert report.total("update") > 100 and report.total("insert") > 0 and report.total("delete") > 0
    for name, prev in before.items():
        changed = store.cursor().execute(
            f'SELECT "SystemModstamp", "LastModifiedDate", "CreatedDate" FROM "{name}" '
            f'WHERE "SystemModstamp" > ? ORDER BY 1', [prev]).fetchall()
        assert len(changed) >= report.counts[name]["update"]
        assert all(START < s <= START + DAY and m <= s and c <= m for s, m, c in changed)
        stamps = [s for s, _, _ in changed]
        assert len(set(stamps)) < len(stamps)  # ties for cursor tests
    assert store.clock.now().replace(tzinfo=None) >= START + DAY
    later = churn(store, seed=1, step=2, until=START + 2 * DAY)
    assert later.start >= START + DAY
    assert one(store, 'SELECT min("SystemModstamp") FROM "Account" WHERE "SystemModstamp" > ?',
               [before["Account"]]) > START
    with pytest.raises(ValueError):
        churn(store, seed=1, step=3, until=START + DAY)


def test_updates_change_field_values(schema: Schema) -> None:
    store = build(schema)
    old = dict(store.cursor().execute('SELECT "Id", to_json(t) FROM "Account" t').fetchall())
    report = churn(store, seed=5, step=1, until=START + DAY,
                   rates=ChurnRates(update=0.2, insert=0, delete=0, undelete=0, objects=["Account"]))
    new = dict(store.cursor().execute('SELECT "Id", to_json(t) FROM "Account" t').fetchall())
    changed = [i for i in old if old[i] != new[i]]
    assert len(changed) == report.counts["Account"]["update"] > 0
    assert set(report.counts) == {"Account"}


def test_deletes_cascade_and_undeletes_restore_children(schema: Schema) -> None:
    store = build(schema)
    only_delete = ChurnRates(update=0, insert=0, delete=0.3, undelete=0, objects=["Invoice__c"])
    report = churn(store, seed=2, step=1, until=START + DAY, rates=only_delete)
    assert report.counts["Invoice_Line__c"]["delete"] > 0
    orphans = one(store, 'SELECT count(*) FROM "Invoice_Line__c" l JOIN "Invoice__c" i '
                         'ON l."Invoice__c" = i."Id" '
                         'WHERE i."IsDeleted" AND NOT l."IsDeleted"')
    assert orphans == 0
    same_time = one(store, 'SELECT count(*) FROM "Invoice_Line__c" l JOIN "Invoice__c" i '
                           'ON l."Invoice__c" = i."Id" '
                           'WHERE i."IsDeleted" AND l."_DeletedAt" <> i."_DeletedAt"')
    assert same_time == 0
    binned = one(store, 'SELECT count(*) FROM "Invoice__c" WHERE "IsDeleted"')
    only_undelete = ChurnRates(update=0, insert=0, delete=0, undelete=1.0, objects=["Invoice__c"])
    report = churn(store, seed=2, step=2, until=START + 2 * DAY, rates=only_undelete)
    assert report.counts["Invoice__c"]["undelete"] == binned
    assert one(store, 'SELECT count(*) FROM "Invoice__c" WHERE "IsDeleted"') == 0
    assert report.counts["Invoice_Line__c"]["undelete"] > 0
    assert one(store, 'SELECT count(*) FROM "Invoice__c" WHERE "SystemModstamp" > ?', [START + DAY]) >= binned
    assert rollup_mismatches(store) == 0


def test_churn_keeps_references_and_rollups_intact(schema: Schema) -> None:
    store = build(schema)
    for step in range(1, 4):
        churn(store, seed=9, step=step, until=START + step * DAY,
              rates=ChurnRates(update=0.05, insert=0.02, delete=0.02, undelete=0.3))
    assert dangling(store) == {}
    assert rollup_mismatches(store) == 0


def test_recycle_bin_is_purged_after_15_days(schema: Schema) -> None:
    store = build(schema)
    churn(store, seed=4, step=1, until=START + DAY, rates=ChurnRates(delete=0.05, undelete=0))
    in_bin = 'SELECT count(*) FROM "Account" WHERE "IsDeleted" AND "_DeletedAt" > ?'
    deleted = one(store, in_bin, [START])
    assert deleted > 0
    idle = ChurnRates(update=0, insert=0, delete=0, undelete=0)
    churn(store, seed=4, step=2, until=START + 10 * DAY, rates=idle)
    # the generator's own bin entries (deleted before START) may be purged already
    assert one(store, in_bin, [START]) == deleted
    report = churn(store, seed=4, step=3, until=START + 17 * DAY, rates=idle)
    assert report.purged >= deleted
    assert one(store, 'SELECT count(*) FROM "Account" WHERE "IsDeleted"') == 0
    assert dangling(store) == {}
