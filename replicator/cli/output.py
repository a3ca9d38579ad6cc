"""What every command shares: the `--json` flag, loading the config, printing a result, and the ONE
place that turns a `ReplicatorError` into an exit code and a message (or a JSON error).

Commands stay thin because of it: they build a request, call a job and `emit` its result; any
failure a user can act on reaches them as a `ReplicatorError` and is mapped in `fail`, so no
traceback ever shows for one.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import click

from replicator.config import Config, ConfigError, load_config
from replicator.errors import ReplicatorError
from replicator.result import JobResult

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
JSON_KEY = "replicator.as_json"
RESULT_KEY = "replicator.result"


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    """Note `--json` where the error mapping finds it (ctx.meta is shared by the whole command line)."""
    ctx.meta[JSON_KEY] = value
    return value


json_option = click.option("--json", "as_json", is_flag=True, callback=_remember_json,
                           help="Print JSON instead of text.")


def load(ctx: click.Context) -> Config:
    """The config named by the root `--config` (a ConfigError goes to the error mapping)."""
    return load_config(ctx.obj)


def names(text: str | None) -> list[str] | None:
    """A comma-separated list of API names (duplicates dropped, case-insensitively: API names are), or
    None when the option is not given. A given list that names nothing (`--objects ,`) is an error,
    never "everything"."""
    if text is None:
        return None
    found: dict[str, str] = {}
    for name in (part.strip() for part in text.split(",")):
        if name:
            found.setdefault(name.casefold(), name)
    if not found:
        raise click.UsageError(f"{text!r} names no object: give API names separated by commas")
    return list(found.values())


def print_json(data: Any) -> None:
    """JSON on stdout as every `--json` has printed it (indented, keys in their order)."""
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def print_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def print_rows(result: Any) -> None:
    """A table result (its `columns()` and `cells()`) as a rich table."""
    print_table(result.columns(), result.cells())


def emit(result: JobResult, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print the result (JSON, the command's own rendering, or its text) and exit with its code.
    The result is also left in the context, where the audit hook (cli/audit.py) takes its ids."""
    click.get_current_context().meta[RESULT_KEY] = result
    if as_json:
        print_json(result.to_json())
    elif render is not None:
        render(result)
    else:
        click.echo(result.text())
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)


def error_json(exc: ReplicatorError) -> dict[str, Any]:
    """The error object under `--json`; a config error keeps its file, key and message shape."""
    if isinstance(exc, ConfigError):
        return {"path": str(exc.path), "key": exc.key, "message": exc.message}
    return exc.to_json()


def fail(exc: ReplicatorError, as_json: bool) -> NoReturn:
    """Exit with the error's code: `{"ok": false, "error": ...}` on stdout under --json, else
    `Error: message` on stderr."""
    if as_json:
        print_json({"ok": False, "error": error_json(exc)})
        raise click.exceptions.Exit(exc.exit_code)
    error = click.ClickException(str(exc))
    error.exit_code = exc.exit_code
    raise error


class LazyChoice(click.Choice):
    """Choices read from a registry when first needed (`module:attribute`, its keys): registries
    import pyarrow and sqlglot, which every other command would otherwise pay for at startup."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        """The registry's names."""
        module_name, attr = self.source.split(":")
        return tuple(getattr(importlib.import_module(module_name), attr))
