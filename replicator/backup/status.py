"""A backup run's status and the notes its sections carry, as the products users know decide them.

Backupify's rules: `completed` when at least 95% of the org's records are backed up, `partial`
when less, when the API cap stopped the run, when the same object failed 7 runs in a row, or when
an object could not even be described (the plan has a hole, whatever its size); `failed` when
nothing could be backed up; `disabled` when the org's credentials no longer work. Kept apart from
the run's sequencing (run.py) so the rules read in one place and are tested without an org.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from replicator.store.ledger import RunLedger

COMPLETED_SHARE = 0.95  # Backupify: "at least 95% of the data was backed up"
FAILED_RUNS_FOR_PARTIAL = 7  # ... "unable to backup the same object for at least 7 days in a row"
STATUSES = ("completed", "partial", "failed", "disabled")
SKIPPED_API_CAP = "skipped: API cap"
UNCHANGED = "unchanged since the previous run"
OK_SECTION = ("ok",)
CAP_CODES = ("API_CAP_REACHED", "REQUEST_LIMIT_EXCEEDED")


def decide_status(sections: list[Any], failed_streaks: dict[str, int], cap_hit: bool,
                  undescribed: Sequence[str] = ()) -> tuple[str, str]:
    """The run's status from its sections, as Backupify users know it (see module docstring)."""
    total = sum(_records(s) for s in sections)
    backed = sum(_records(s) for s in sections if s.status in OK_SECTION)
    failed = [s.object for s in sections if s.status not in OK_SECTION]
    share = backed / total if total else (0.0 if failed and not any(
        s.status in OK_SECTION for s in sections) else 1.0)
    chronic = sorted(o for o, n in failed_streaks.items() if n >= FAILED_RUNS_FOR_PARTIAL)
    if sections and not any(s.status in OK_SECTION for s in sections) and not cap_hit:
        return "failed", f"no object could be backed up: {_named(failed)}"
    notes = [f"{share:.1%} of records backed up"]
    if failed:
        notes.append(f"not backed up: {_named(failed)}")
    if cap_hit:
        notes.append("stopped at the job's API usage cap; the next run resumes")
    if chronic:
        notes.append(f"failing {FAILED_RUNS_FOR_PARTIAL}+ runs in a row: {', '.join(chronic)}")
    if undescribed:
        notes.append(f"describe failed: {', '.join(undescribed)}")
    status = "partial" if share < COMPLETED_SHARE or cap_hit or chronic or undescribed else "completed"
    return status, "; ".join(notes)


def failed_streaks(ledger: RunLedger, job: str, run_id: int | None, sections: list[Any]) -> dict[str, int]:
    """Per failing object, how many runs of `job` in a row (run `run_id` included) it failed."""
    streaks: dict[str, int] = {}
    failing = {s.object for s in sections if s.status not in OK_SECTION}
    previous = [r for r in ledger.runs() if r["job"] == job and r["run_id"] != run_id]
    previous.sort(key=lambda r: r["run_id"], reverse=True)
    history = [{s["object"]: s["status"] for s in ledger.sections(r["run_id"])}
               for r in previous[:FAILED_RUNS_FOR_PARTIAL - 1]]
    for name in failing:
        n = 1
        for statuses in history:
            if statuses.get(name) in (None, *OK_SECTION):
                break
            n += 1
        streaks[name] = n
    return streaks


def _named(objects: list[str]) -> str:
    """Up to ten object names, then how many more (a message stays one readable line)."""
    more = f" and {len(objects) - 10} more" if len(objects) > 10 else ""
    return ", ".join(objects[:10]) + more


def _records(section: Any) -> int:
    """Weight of an object in the 95% rule: its org count (at least 1, so empty objects still count)."""
    return max(section.org_count or 0, 1)


def stopped_by(exc: Exception) -> str:
    """The message of a run Salesforce stopped: what the org answered, not only its text (a bare
    "Service temporarily unavailable" does not say the org, not the store, failed)."""
    status = getattr(exc, "status", None)
    if status is None:
        return str(exc)
    code = getattr(exc, "code", None)
    return f"the org answered HTTP {status}{f' {code}' if code else ''}: {exc}"


def status_of(sections: list[Any], name: str) -> str | None:
    """The status of object `name`'s section, None when the run has none."""
    return next((s.status for s in sections if s.object == name), None)


def joined(message: str | None, note: str) -> str:
    """A section's message with one more note after it (a section may collect several)."""
    return f"{message}; {note}" if message else note


def mark_api_cap(sections: list[Any]) -> bool:
    """Sections the API cap stopped become 'skipped: API cap'; True when that happened."""
    hit = False
    for s in sections:
        if s.status != "ok" and any(code in (s.message or "") for code in CAP_CODES):
            s.status, s.message, hit = "skipped", f"{SKIPPED_API_CAP} ({s.message})", True
    return hit
