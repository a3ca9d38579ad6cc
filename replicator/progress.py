"""The small protocol a job reports its progress to; rendering it (rich bars, JSON events) is the caller's.

Jobs never import a terminal library: the CLI passes a rich-backed `Progress`, the service one
that records events, tests and library callers the silent default.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Phases with an optional total, and steps within the current phase."""

    def phase(self, name: str, total: int | None = None) -> None:
        """A new phase begins; `total` is the number of steps when it is known."""

    def advance(self, step: str = "", n: int = 1) -> None:
        """`n` steps of the current phase are done; `step` names the last one."""


class Silent:
    """Progress that goes nowhere: the default for callers that do not show any."""

    def phase(self, name: str, total: int | None = None) -> None:
        """Ignored."""

    def advance(self, step: str = "", n: int = 1) -> None:
        """Ignored."""
