"""history.py: one record's history, run-to-run diffs, per-object analysis and alert inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_snapshot_store import Stager, plan, rid, row, run

from replicator.history import alerts, diff, object_analysis, record_history
from replicator.store.snapshot import SnapshotStore


@pytest.fixture
def store(tmp_path: Path):
    """Three runs of Account: 200 records, then changes, deletions, an undelete and new records."""
    stage, p = Stager(tmp_path), plan()
    s = SnapshotStore(tmp_path / "snapshot.duckdb")
    run(s, stage({"Account": (p, [row(i, f"n{i}", 1) for i in range(200)])}), [p])
    run(s, stage({"Account": (p, [row(1, "n1", 2, NumberOfEmployees=50), row(2, "two", 2),
                                  *[row(i, f"n{i}", 2, deleted=True) for i in range(100, 120)],
                                  row(300, "new", 2)])}), [p])
    run(s, stage({"Account": (p, [row(100, "n100", 3), row(2, "two", 4), row(301, "newer", 3)])}), [p])
    yield s
    s.close()


def test_record_history_lists_changed_fields(store):
    versions = record_history(store, "Account", rid(1))
    assert [v.run_id for v in versions] == [1, 2]
    assert versions[0].values["Name"] == "n1" and "Name" in versions[0].changed
    assert versions[1].changed == ["NumberOfEmployees", "SystemModstamp"]
    assert versions[0].valid_to == versions[1].valid_from and versions[1].valid_to is None
    deleted = record_history(store, "Account", rid(100))
    assert [(v.run_id, v.deleted, v.changed) for v in deleted[1:]] == [
        (2, True, ["IsDeleted", "SystemModstamp"]), (3, False, ["IsDeleted", "SystemModstamp"])]
    assert record_history(store, "Account", rid(999)) == []


def test_diff_between_runs(store):
    d = diff(store, "Account", 1, 2)
    assert d.added.column("Id").to_pylist() == [rid(300)]
    assert d.removed.column("Id").to_pylist() == [rid(i) for i in range(100, 120)]
    assert d.removed.column("Name").to_pylist()[0] == "n100"  # the state at run_a
    assert d.changed.column("Id").to_pylist() == [rid(1), rid(2)]
    assert d.changed.column("_changed_fields").to_pylist() == [
        ["NumberOfEmployees", "SystemModstamp"], ["Name", "SystemModstamp"]]
    assert "_valid_from" not in d.added.column_names
    # Across two runs: the undeleted record is neither added nor removed, but it changed.
    d13 = diff(store, "Account", 1, 3)
    assert d13.added.column("Id").to_pylist() == [rid(300), rid(301)]
    assert len(d13.removed) == 19 and rid(100) in d13.changed.column("Id").to_pylist()
    back = diff(store, "Account", 3, 1)
    assert back.added.column("Id").to_pylist() == d13.removed.column("Id").to_pylist()


def test_object_analysis_and_alerts(store):
    a = {r["object"]: r for r in object_analysis(store, 2).to_pylist()}["Account"]
    assert (a["records_before"], a["records_after"]) == (200, 181)
    assert (a["inserted"], a["updated"], a["deleted"]) == (1, 2, 20)
    assert a["deletion_rate"] == pytest.approx(0.1) and a["change_rate"] == pytest.approx(23 / 200)
    third = object_analysis(store, 3).to_pylist()[0]
    assert (third["inserted"], third["updated"], third["deleted"]) == (2, 1, 0)  # undelete counts as insert
    found = alerts(object_analysis(store, 2))
    assert [(f.object, f.kind) for f in found] == [("Account", "deletions")]
    assert "20 of 200" in found[0].message
    assert alerts(object_analysis(store, 2), max_deletion_rate=0.2) == []
    assert alerts(object_analysis(store, 2), min_records=1000) == []
