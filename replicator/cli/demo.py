"""`replicator demo`: a thin shell over replicator.demo that tells its story with rich rules and tables."""

from __future__ import annotations

from pathlib import Path

import click

from replicator.cli.output import CONTEXT_SETTINGS, emit, print_table
from replicator.cli.progress import RichProgress


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--state-dir", default=Path("var/demo"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
@click.option("--scale", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=42, show_default=True, type=int)
def demo(state_dir: Path, scale: int, seed: int) -> None:
    """Start the emulator's demo org, back it up, churn a day, back up again, then travel in time."""
    from replicator.demo import DemoRequest, DemoResult, DemoTable, run_demo

    def render(result: DemoResult) -> None:
        from rich.console import Console

        console = Console()
        for step in result.steps:
            console.rule(f"[bold]{step.title}")
            for item in step.items:
                if isinstance(item, DemoTable):
                    print_table(item.columns, item.rows)
                else:
                    console.print(item, markup=False)

    with RichProgress(enabled=True) as progress:
        result = run_demo(DemoRequest(state_dir, scale, seed), progress)
    emit(result, False, render)
