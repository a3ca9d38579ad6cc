"""`replicator restores [show N]`: the restores ledger as a job result (read-only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replicator.config import Config
from replicator.result import JobResult, jsonable
from replicator.store.repository import Repository
from replicator.store.restores import RestoresLedger

__all__ = ["RestoresRequest", "RestoresResult", "restores_ledger"]


@dataclass(frozen=True)
class RestoresRequest:
    """All restores, or one with every record's outcome."""

    restore_id: int | None = None


@dataclass
class RestoresResult(JobResult):
    """Ledger rows, and with one restore its records."""

    entries: list[dict[str, Any]]
    records: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> Any:
        """The entries (and records) as JSON values."""
        return jsonable({"restores": self.entries, "records": self.records} if self.records
                        else {"restores": self.entries})

    def text(self) -> str:
        """One line per restore, then one per record."""
        lines = []
        for e in self.entries:
            calls = f"{e['api_calls']} calls" if e["api_calls"] is not None else "calls unknown"
            totals: dict[str, int] = {}
            for c in (e["counts"] or {}).values():
                for k, v in c.items():
                    totals[k] = totals.get(k, 0) + v
            summary = ", ".join(f"{k} {v}" for k, v in sorted(totals.items())) or "nothing written"
            retry = f" (retry of {e['retry_of']})" if e["retry_of"] else ""
            lines.append(f"{e['restore_id']}  {e['kind']}{retry} into {e['target']} from run {e['run_id']}  "
                         f"{e['status']}  {summary}; {calls}  {e['started_at']:%Y-%m-%d %H:%M:%S}"
                         + (f"  {e['message']}" if e["message"] else ""))
        for r in self.records:
            error = f"  {r['error_code']}: {r['error_message']}" if r["status"] == "failed" else ""
            lines.append(f"  {r['sobject']} {r['source_id']} -> {r['target_id'] or '-'}  {r['action']} "
                         f"{r['status']}{error}")
        return "\n".join(lines) or "no restores yet"


def restores_ledger(config: Config, request: RestoresRequest) -> RestoresResult:
    """The ledger (or one restore with its records)."""
    with Repository.for_storage(config.storage).open_read() as store:
        ledger = RestoresLedger(store.db)
        if request.restore_id is None:
            return RestoresResult(ledger.entries())
        return RestoresResult([ledger.entry(request.restore_id)], ledger.outcomes(request.restore_id))
