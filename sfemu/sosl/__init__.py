"""SOSL for the emulator: `FIND {...}` statements and parameterized searches over the store.

Public API: parse_sosl, parameterized, run_search.
"""

from sfemu.sosl.engine import run_search
from sfemu.sosl.statement import parameterized, parse_sosl

__all__ = ["parameterized", "parse_sosl", "run_search"]
