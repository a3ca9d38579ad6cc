"""Change files between two runs: <Object>_added/_changed/_removed.csv, the CLI, and the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_data import build, tid
from test_export_csv import read_csv

from replicator.export import diff_files


@pytest.fixture
def es(tmp_path: Path):
    built = build(tmp_path / "store")
    yield built
    built.store.close()


def test_added_changed_removed_files(es, tmp_path: Path) -> None:
    out = tmp_path / "diff"
    result = diff_files(es.store, out, es.run1, "last", objects=["Thing__c"])
    assert result.rows == {"Thing__c": 3}
    added, changed, removed = (read_csv(out / f"Thing__c_{k}.csv") for k in ("added", "changed", "removed"))
    assert [r["Id"] for r in added] == [tid(12)]
    assert [(r["Id"], r["Name"], r["Amount__c"]) for r in changed] == [(tid(1), "changed ✓", "2.50")]
    assert set(changed[0]["_changed_fields"].split(";")) == {"Name", "Amount__c", "SystemModstamp"}
    assert [r["Id"] for r in removed] == [tid(2)]
    assert list(removed[0]) == list(added[0])  # same columns as the object
    # nothing changed between a run and itself: header-only files
    same = diff_files(es.store, tmp_path / "same", es.run2, es.run2)
    assert same.rows == {"ContentVersion": 0, "Thing__c": 0}
    assert (tmp_path / "same" / "Thing__c_added.csv").read_text().startswith('"Id",')
    ledger = es.store.exports.entries()
    assert (ledger[0]["kind"], ledger[0]["from_run"], ledger[0]["run_id"], ledger[0]["objects"]) == (
        "diff", es.run1, es.run2, ["Thing__c"])
    with pytest.raises(ValueError, match="run 9 does not exist"):
        diff_files(es.store, tmp_path / "bad", 9, es.run2)
