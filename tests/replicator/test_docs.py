"""The README cannot drift from the CLI (datasette's test_docs): every command and subcommand the
click tree has, the emulator's included, appears as `replicator <command path>` in a code block."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from replicator.cli import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def command_paths(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()):
    """Every command path under `group`, groups included."""
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, ctx, (*prefix, name))


def code_blocks(text: str) -> str:
    """The README's fenced code blocks, joined."""
    return "\n".join(re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S))


def listed(path: tuple[str, ...], blocks: str) -> bool:
    """`replicator <path>` followed by a non-name character."""
    return re.search(rf"\breplicator {re.escape(' '.join(path))}(?![\w-])", blocks) is not None


with click.Context(cli) as _ctx:
    PATHS = sorted(command_paths(cli, _ctx))


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) for p in PATHS])
def test_readme_lists_every_command(path: tuple[str, ...]) -> None:
    assert listed(path, code_blocks(README.read_text(encoding="utf-8"))), (
        f"README.md's command sections lack `replicator {' '.join(path)}`")


def test_the_check_sees_a_missing_command() -> None:
    blocks = "replicator runs [--json]\nreplicator runs-other\n"
    assert listed(("runs",), blocks)
    assert not listed(("runs", "show"), blocks) and not listed(("runs-other", "x"), blocks)
