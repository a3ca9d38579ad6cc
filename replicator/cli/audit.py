"""`replicator audit [--from ID]` and `audit verify`, and the ONE place every command is audited.

Why here and not in each job: `audited` wraps the callback of every command the root group hands out
(cli.Root.get_command), so a command someone adds later is recorded without a line of its own. An
event is written when the command ends, with its outcome; a request refused as bad input (a usage
error, an unknown object or run, a config mistake) changed nothing and is not recorded, so "bad
input changes nothing on disk" holds. The audit commands themselves are not audited: reading the
log touches no data, and `verify` must leave the file exactly as it found it.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from click.core import ParameterSource

from replicator.cli.output import CONTEXT_SETTINGS, RESULT_KEY, emit, json_option, load
from replicator.config import ConfigError, load_config
from replicator.errors import ReplicatorError
from replicator.result import JobResult

__all__ = ["audit", "audit_tree"]

MARK = "_replicator_audited"
REFUSED = frozenset({"invalid_input", "not_found", "config"})  # changed nothing: not an action


def audit_tree(command: click.Command) -> click.Command:
    """Wrap the callbacks of `command` and of every command below it (once)."""
    if getattr(command, MARK, False):
        return command
    setattr(command, MARK, True)
    if command.callback is not None:
        command.callback = _audited(command.callback)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            audit_tree(sub)
    return command


def _audited(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        if isinstance(ctx.command, click.Group) and ctx.invoked_subcommand is not None:
            return callback(*args, **kwargs)  # the subcommand is the action; it records itself
        started, clock = datetime.now(UTC), time.monotonic()
        outcome: dict[str, Any] | None = {"status": "ok", "exit_code": 0}
        try:
            return callback(*args, **kwargs)
        except click.exceptions.Exit as exc:
            outcome = {"status": "ok" if exc.exit_code == 0 else "failed", "exit_code": exc.exit_code}
            raise
        except click.UsageError:
            outcome = None
            raise
        except ReplicatorError as exc:
            outcome = None if exc.kind in REFUSED else {"status": "error", "exit_code": exc.exit_code,
                                                        "error": exc.kind}
            raise
        except BaseException as exc:
            outcome = {"status": "interrupted" if isinstance(exc, KeyboardInterrupt) else "crashed",
                       "exit_code": 1}
            raise
        finally:
            if outcome is not None:
                outcome["seconds"] = round(time.monotonic() - clock, 3)
                outcome.update(_result_ids(ctx.meta.get(RESULT_KEY)))
                _record(ctx, outcome, started)

    setattr(run, MARK, True)
    return run


def _result_ids(result: JobResult | None) -> dict[str, int]:
    """What the command created or read, by id (`run_id` of a backup, `export_id`, `request_id`...),
    so an event leads to its ledger row; ids are numbers, never record values."""
    if result is None:
        return {}
    try:
        data = result.to_json()
    except Exception:  # a result that cannot render has already failed the command
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k.endswith("_id") and isinstance(v, int)
            and not isinstance(v, bool)}


def _given(ctx: click.Context) -> dict[str, Any]:
    """The parameters a person gave (not defaults), the root's (--config) included."""
    given: dict[str, Any] = {}
    for level in reversed([ctx, *_parents(ctx)]):
        for name, value in level.params.items():
            if level.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
                given[name] = value
    return given


def _parents(ctx: click.Context) -> list[click.Context]:
    out = []
    while ctx.parent is not None:
        ctx = ctx.parent
        out.append(ctx)
    return out


def _record(ctx: click.Context, outcome: dict[str, Any], started: datetime) -> None:
    """Append the command's event; a command never fails because its event could not be written,
    but the person is told."""
    from replicator.audit import local_actor, record

    key = ".".join(ctx.command_path.split()[1:]) or ctx.command_path
    try:
        config = load_config(ctx.find_root().obj)
    except ConfigError:
        return  # no storage folder known: nothing was read or changed
    try:
        record(config, key, {**_given(ctx), "outcome": outcome}, local_actor(), started)
    except (OSError, ReplicatorError) as exc:
        print(f"Warning: the audit event for {key!r} was not written: {exc}", file=sys.stderr)


@click.group("audit", context_settings=CONTEXT_SETTINGS, invoke_without_command=True)
@click.option("--from", "from_id", type=int, help="Only events after this event id.")
@json_option
@click.pass_context
def audit(ctx: click.Context, from_id: int | None, as_json: bool) -> None:
    """The audit log: who read or changed what, when (`audit verify` proves it was not altered)."""
    if ctx.invoked_subcommand is not None:
        return
    from replicator.audit import EventsRequest, events

    emit(events(load(ctx), EventsRequest(from_id)), as_json)


@audit.command("verify", context_settings=CONTEXT_SETTINGS)
@json_option
@click.pass_context
def audit_verify(ctx: click.Context, as_json: bool) -> None:
    """Re-hash the chain; name the first event altered, removed or moved (exit code 1)."""
    from replicator.audit import verify

    emit(verify(load(ctx)), as_json)


setattr(audit, MARK, True)  # see the module's docstring
for _sub in audit.commands.values():
    setattr(_sub, MARK, True)
