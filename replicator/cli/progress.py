"""Progress of a job as rich bars on stderr (one bar per phase): the terminal's `Progress`.

Jobs report to `replicator.progress.Progress` and never import rich; this is the CLI's rendering.
Bars go to stderr so `--json` output and piped text stay clean.
"""

from __future__ import annotations

from typing import Any


class RichProgress:
    """A `Progress` drawing one rich bar per phase; disabled (e.g. under --json) it draws nothing."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

        self.progress = Progress(SpinnerColumn(), "{task.description}", BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True), disable=not enabled)
        self.task: Any = None

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()
        self.progress.stop()

    def _close(self) -> None:
        """Fill the current bar: a phase that ends is complete, whatever its steps said."""
        if self.task is not None:
            total = self.progress.tasks[-1].total
            self.progress.update(self.task, completed=total if total is not None else 1, total=total or 1)

    def phase(self, name: str, total: int | None = None) -> None:
        """Close the current bar and start one for the new phase."""
        self._close()
        self.task = self.progress.add_task(name, total=total)

    def advance(self, step: str = "", n: int = 1) -> None:
        """Move the current bar by `n`."""
        if self.task is not None:
            self.progress.advance(self.task, n)
