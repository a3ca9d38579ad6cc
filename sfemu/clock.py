"""The emulator's settable clock.

Tests simulate days of org activity in seconds, so every timestamp the emulator writes (audit
fields, recycle bin, API-limit window, session expiry) comes from this clock, never from
datetime.now() directly. The clock runs at real speed from an offset; it can be set or advanced,
within the years Salesforce stores date-times in (1700 to 4000): an absurd value is refused with a
ValueError instead of leaving a clock whose every reading overflows.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta

EARLIEST = datetime(1700, 1, 1, tzinfo=UTC)
LATEST = datetime(4000, 12, 31, tzinfo=UTC)


def truncate_ms(moment: datetime) -> datetime:
    """Salesforce keeps timestamps to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class Clock:
    """Real time plus an adjustable offset; monotonic per millisecond for audit stamps."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._last = datetime(1970, 1, 1, tzinfo=UTC)
        # The last moment the clock was explicitly put at: simulated activity (churn) starts here,
        # so replaying the same control calls gives the same timestamps whatever the wall time.
        self.anchor = truncate_ms(datetime.now(UTC))
        if start is not None:
            self.set(start)

    def now(self) -> datetime:
        """Current emulated UTC time, millisecond precision."""
        return truncate_ms(datetime.now(UTC) + self._offset)

    def stamp(self) -> datetime:
        """A strictly increasing timestamp for writes, so SystemModstamp ordering is total per call."""
        with self._lock:
            now = self.now()
            if now <= self._last:
                now = self._last + timedelta(milliseconds=1)
            self._last = now
            return now

    def set(self, moment: datetime) -> None:
        """Jump to a moment (naive datetimes are taken as UTC); ValueError outside 1700..4000."""
        moment = in_range(moment)
        with self._lock:
            self._offset = moment - datetime.now(UTC)
            self._last = min(self._last, truncate_ms(moment))
            self.anchor = truncate_ms(moment)

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward and return the new time; ValueError if that leaves 1700..4000."""
        span = (LATEST - EARLIEST).total_seconds()
        if not math.isfinite(seconds) or abs(seconds) > span:
            raise ValueError(f"cannot move the clock by {seconds} seconds")
        with self._lock:
            moved = self._offset + timedelta(seconds=seconds)
            in_range(datetime.now(UTC) + moved)
            self._offset = moved
        return self.now()


def in_range(moment: datetime) -> datetime:
    """The moment (naive = UTC) if Salesforce can hold it, else ValueError naming the range."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"{moment.isoformat()} is outside {EARLIEST.year}..{LATEST.year}, "
                         "the years Salesforce stores date-times in")
    return moment
