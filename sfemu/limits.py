"""API-call ledger and the DailyApiRequests allocation.

Salesforce counts every API call against a rolling 24-hour allocation and reports usage in the
`Sforce-Limit-Info` header; backup tools budget on it. The ledger keeps every call (for tests and
the control API); the window is measured on the emulator's clock so tests can roll days forward.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sfemu.clock import Clock

WINDOW = timedelta(hours=24)


@dataclass
class Call:
    """One request as the ledger records it."""

    seq: int
    at: datetime
    method: str
    path: str
    status: int
    counted: bool
    user: str | None
    kind: str  # rest | bulk2 | bulk1 | tooling | auth | soap | control

    def to_json(self) -> dict:
        out = asdict(self)
        out["at"] = self.at.isoformat()
        return out


class ApiLimits:
    """Rolling-window counter of API calls plus the per-call ledger."""

    def __init__(self, clock: Clock, daily_max: int = 15000) -> None:
        self.clock = clock
        self.daily_max = daily_max
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._counted_at: list[datetime] = []  # times of counted calls, ascending
        self._bulk_batches_at: list[datetime] = []

    def used(self) -> int:
        """Calls counted in the last 24 hours of emulated time."""
        since = self.clock.now() - WINDOW
        with self._lock:
            return len(self._counted_at) - bisect_right(self._counted_at, since)

    def remaining(self) -> int:
        return max(self.daily_max - self.used(), 0)

    def exhausted(self) -> bool:
        return self.used() >= self.daily_max

    def header(self) -> str:
        """The Sforce-Limit-Info value, plain form only (tap-salesforce's regex needs it)."""
        return f"api-usage={self.used()}/{self.daily_max}"

    def record(self, method: str, path: str, status: int, counted: bool, user: str | None,
               kind: str) -> Call:
        now = self.clock.now()
        with self._lock:
            call = Call(len(self._calls) + 1, now, method, path, status, counted, user, kind)
            self._calls.append(call)
            if counted:
                if self._counted_at and now < self._counted_at[-1]:
                    now = self._counted_at[-1]  # clock moved back: keep the list sorted
                self._counted_at.append(now)
        return call

    def count_bulk_batches(self, n: int) -> None:
        """Bulk ingest counts one batch per 10,000 records against DailyBulkApiBatches."""
        now = self.clock.now()
        with self._lock:
            self._bulk_batches_at.extend([now] * n)

    def bulk_batches_used(self) -> int:
        since = self.clock.now() - WINDOW
        with self._lock:
            return sum(1 for t in self._bulk_batches_at if t > since)

    def ledger(self, since_seq: int = 0) -> list[Call]:
        with self._lock:
            return self._calls[since_seq:]

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._counted_at.clear()
            self._bulk_batches_at.clear()
