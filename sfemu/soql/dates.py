"""SOQL date literals (TODAY, LAST_N_DAYS:n, THIS_FISCAL_YEAR, ...) as half-open ranges of local dates.

Salesforce evaluates them in the org's time zone with weeks starting on Sunday (en_US); this org's
fiscal year is the calendar year. A range is [start, end): `=` means inside, `<` before start,
`>` on or after end. A range reaching past the years Salesforce holds (LAST_N_DAYS:2147483647)
stops at them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sfemu.clock import EARLIEST, LATEST

_UNITS = {"DAY": "day", "DAYS": "day", "WEEK": "week", "WEEKS": "week", "MONTH": "month", "MONTHS": "month",
          "QUARTER": "quarter", "QUARTERS": "quarter", "YEAR": "year", "YEARS": "year",
          "FISCAL_QUARTER": "quarter", "FISCAL_QUARTERS": "quarter", "FISCAL_YEAR": "year",
          "FISCAL_YEARS": "year"}
_FIXED = {"YESTERDAY": ("day", -1, 1), "TODAY": ("day", 0, 1), "TOMORROW": ("day", 1, 1),
          "LAST_90_DAYS": ("day", -90, 91), "NEXT_90_DAYS": ("day", 1, 90)}
_RELATIVE = re.compile(r"^(LAST|THIS|NEXT)_([A-Z_]+)$")
_PARAMETERISED = re.compile(r"^(?:(LAST|NEXT)_N_([A-Z_]+)|N_([A-Z_]+)_AGO)$")


def date_range(word: str, n: int | None, today: date) -> tuple[date, date] | None:
    """The [start, end) local dates a literal covers, or None when the word is not a date literal."""
    word = word.upper()
    if word in _FIXED:
        if n is not None:
            return None
        unit, offset, count = _FIXED[word]
    elif (m := _PARAMETERISED.match(word)) and (unit := _UNITS.get(m.group(2) or m.group(3))):
        if n is None:
            return None
        direction = m.group(1)
        if unit == "day":
            offset, count = {"LAST": (-n, n + 1), "NEXT": (1, n)}.get(direction, (-n, 1))
        else:
            offset, count = {"LAST": (-n, n), "NEXT": (1, n)}.get(direction, (-n, 1))
    elif (m := _RELATIVE.match(word)) and (unit := _UNITS.get(m.group(2))) and m.group(2)[-1] != "S":
        if n is not None:
            return None
        offset, count = {"LAST": -1, "THIS": 0, "NEXT": 1}[m.group(1)], 1
    else:
        return None
    base = _unit_start(today, unit)
    return _shift(base, unit, offset), _shift(base, unit, offset + count)


def _unit_start(d: date, unit: str) -> date:
    if unit == "day":
        return d
    if unit == "week":
        return d - timedelta(days=(d.weekday() + 1) % 7)  # Sunday
    if unit == "month":
        return d.replace(day=1)
    if unit == "quarter":
        return date(d.year, (d.month - 1) // 3 * 3 + 1, 1)
    return date(d.year, 1, 1)


def _shift(d: date, unit: str, k: int) -> date:
    """`d` moved by k units, kept within the years Salesforce holds (EARLIEST..LATEST)."""
    first, last = EARLIEST.date(), LATEST.date()
    try:
        if unit == "day":
            moved = d + timedelta(days=k)
        elif unit == "week":
            moved = d + timedelta(weeks=k)
        else:
            total = d.year * 12 + d.month - 1 + {"month": 1, "quarter": 3, "year": 12}[unit] * k
            moved = date(total // 12, total % 12 + 1, 1)
    except (OverflowError, ValueError):
        return first if k < 0 else last
    return min(max(moved, first), last)


def local_today(now: datetime, tz: str) -> date:
    aware = now if now.tzinfo else now.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(tz)).date()


def local_midnight_utc(d: date, tz: str) -> datetime:
    """Start of a local date in the org time zone, as naive UTC (the store's TIMESTAMP convention)."""
    return datetime.combine(d, time(), tzinfo=ZoneInfo(tz)).astimezone(UTC).replace(tzinfo=None)
