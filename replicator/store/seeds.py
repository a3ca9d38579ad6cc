"""The seeds ledger: every seed into a sandbox, its status in OwnBackup's seed shape, and the outcome
of every record it touched.

Why in the store: a seed copies (masked) production data into another org, so who seeded what,
where and when belongs beside the backups it came from; every record's outcome lets a failed seed
be explained record by record. Why also a status file: while a seed runs it holds the store, and
DuckDB lets no other process read it, so `seeds show` reads the file the seed rewrites as it goes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from replicator.store.database import Database, now

__all__ = ["SEED_FIELDS", "SeedsLedger", "read_status_file"]

DDL = (
    """CREATE TABLE IF NOT EXISTS main.seeds (id INTEGER NOT NULL, template VARCHAR NOT NULL,
        dest_service_id VARCHAR NOT NULL, seeding_method VARCHAR NOT NULL, disable_automations BOOLEAN,
        automations_to_disable JSON, run_id INTEGER, status VARCHAR NOT NULL, progress INTEGER,
        total_insert_records BIGINT, insert_success_records BIGINT, insert_fail_records BIGINT,
        total_delete_records BIGINT, delete_success_records BIGINT, delete_fail_records BIGINT,
        duplicated_records BIGINT, api_calls BIGINT, created_at TIMESTAMPTZ NOT NULL,
        started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, message VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS main.seed_outcomes (seed_id INTEGER NOT NULL, sobject VARCHAR NOT NULL,
        source_id VARCHAR, target_id VARCHAR, action VARCHAR NOT NULL, status VARCHAR NOT NULL,
        error_code VARCHAR, error_message VARCHAR)""",
)
# The status a seed reports, in the order of OwnBackup's seed JSON (seed_id is our own id too).
SEED_FIELDS = ("created_at", "delete_fail_records", "delete_success_records", "dest_service_id",
               "disable_automations", "duplicated_records", "finished_at", "id", "insert_fail_records",
               "insert_success_records", "progress", "seed_id", "seeding_method", "started_at", "status",
               "template", "total_delete_records", "total_insert_records")
OUTCOME_FIELDS = ("sobject", "source_id", "target_id", "action", "status", "error_code", "error_message")
COUNTERS = ("total_insert_records", "insert_success_records", "insert_fail_records", "total_delete_records",
            "delete_success_records", "delete_fail_records", "duplicated_records", "progress", "api_calls")


def read_status_file(path: Path) -> dict[str, Any] | None:
    """A seed's last written status, or None when there is none."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class SeedsLedger:
    """main.seeds and main.seed_outcomes of one open store."""

    def __init__(self, db: Database, status_folder: Path) -> None:
        self.db = db
        self.status_folder = status_folder

    def status_file(self, seed_id: int) -> Path:
        return self.status_folder / f"{seed_id}.json"

    def start(self, *, template: str, dest: str, method: str, run_id: int, disable_automations: bool,
              automations: dict[str, list[str]] | None, totals: dict[str, int]) -> int:
        """A RUNNING row before anything is written to the target; returns the seed's id."""
        self.db.require_writable()
        for ddl in DDL:
            self.db.execute(ddl)
        self._mark_abandoned()
        seed_id = int(self.db.execute("SELECT coalesce(max(id), 0) + 1 FROM main.seeds").fetchone()[0])
        at = now()
        self.db.execute(
            "INSERT INTO main.seeds (id, template, dest_service_id, seeding_method, disable_automations, "
            "automations_to_disable, run_id, status, progress, total_insert_records, insert_success_records, "
            "insert_fail_records, total_delete_records, delete_success_records, delete_fail_records, "
            "duplicated_records, api_calls, created_at, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'RUNNING', 0, ?, 0, 0, ?, 0, 0, ?, 0, ?, ?)",
            [seed_id, template, dest, method, disable_automations, json.dumps(automations or {}), run_id,
             totals.get("insert", 0), totals.get("delete", 0), totals.get("duplicated", 0), at, at])
        self._write_file(seed_id)
        return seed_id

    def _mark_abandoned(self) -> None:
        """RUNNING seeds whose process died: only the writer-lock holder seeds, and it is us."""
        for (seed_id,) in self.db.execute("SELECT id FROM main.seeds WHERE status = 'RUNNING'").fetchall():
            self.finish(seed_id, "ABORTED", "the process running the seed ended before it finished")

    def outcomes(self, seed_id: int, outcomes: Sequence[Any]) -> None:
        """Keep every record's fate (the loader's Outcome records: sobject, ids, action, status, error).

        One Arrow insert per chunk: DuckDB's executemany costs ~10 ms a row."""
        if not outcomes:
            return
        table = pa.table({
            "seed_id": pa.array([seed_id] * len(outcomes), pa.int32()),
            **{name: pa.array([getattr(o, name) for o in outcomes], pa.string()) for name in OUTCOME_FIELDS},
        })
        self.db.con.register("_seed_outcomes", table)
        try:
            self.db.execute("INSERT INTO main.seed_outcomes SELECT * FROM _seed_outcomes")
        finally:
            self.db.con.unregister("_seed_outcomes")

    def update(self, seed_id: int, **counters: int) -> None:
        """New counter values (progress, successes, failures) while the seed runs."""
        sets = ", ".join(f"{name} = ?" for name in counters if name in COUNTERS)
        self.db.execute(f"UPDATE main.seeds SET {sets} WHERE id = ?",
                        [v for k, v in counters.items() if k in COUNTERS] + [seed_id])
        self._write_file(seed_id)

    def finish(self, seed_id: int, status: str, message: str | None = None) -> None:
        self.db.execute("UPDATE main.seeds SET status = ?, message = ?, finished_at = ?, "
                        "progress = CASE WHEN ? IN ('FAILED', 'ABORTED') THEN progress ELSE 100 END "
                        "WHERE id = ?",
                        [status, message, now(), status, seed_id])
        self._write_file(seed_id)

    def _write_file(self, seed_id: int) -> None:
        """The status as JSON beside the store, replaced atomically."""
        self.status_folder.mkdir(parents=True, exist_ok=True)
        path = self.status_file(seed_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status(seed_id), indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)

    def status(self, seed_id: int) -> dict[str, Any] | None:
        """One seed in OwnBackup's seed shape, plus our run, message and call count."""
        if not self.db.has_table("seeds"):
            return None
        rows = self.db.rows("SELECT * FROM main.seeds WHERE id = ?", [seed_id])
        if not rows:
            return None
        row = rows[0]
        row["seed_id"] = row["id"]
        shaped = {k: row[k] for k in SEED_FIELDS}
        shaped.update(run_id=row["run_id"], api_calls=row["api_calls"], message=row["message"],
                      automations_to_disable=json.loads(row["automations_to_disable"] or "{}"))
        for key in ("created_at", "started_at", "finished_at"):
            if shaped[key] is not None:
                shaped[key] = shaped[key].isoformat()
        return shaped

    def entries(self) -> list[dict[str, Any]]:
        """Every seed, oldest first."""
        if not self.db.has_table("seeds"):
            return []
        ids = self.db.execute("SELECT id FROM main.seeds ORDER BY id").fetchall()
        return [self.status(int(r[0])) for r in ids]

    def failures(self, seed_id: int) -> list[dict[str, Any]]:
        """The records that failed, with Salesforce's error."""
        if not self.db.has_table("seed_outcomes"):
            return []
        return self.db.rows("SELECT sobject, source_id, action, error_code, error_message "
                            "FROM main.seed_outcomes WHERE seed_id = ? AND status = 'failed' "
                            "ORDER BY sobject, source_id", [seed_id])
