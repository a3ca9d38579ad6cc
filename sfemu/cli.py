"""`sfemu ...` (or `replicator emulator ...`): run the emulator, steer one, or summarise a demo org.

`serve` runs an org in this process; the other subcommands are thin clients of the control API
(/_emulator/) of an emulator that is already running, so scripts and people use the same calls
as the tests.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sfemu.faults import FaultConfig
from sfemu.org import OrgSettings
from sfemu.schema import STANDARD_SCHEMA

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEFAULT_URL = "https://127.0.0.1:8443"
DEFAULT_STATE_DIR = Path("var/emulator")
ENV = "REPLICATOR_EMULATOR_"
CHURN_KINDS = ("update", "insert", "delete", "undelete")  # the rate fields of churn.ChurnRates


@click.group(context_settings=CONTEXT_SETTINGS)
def emulator() -> None:
    """Run and control the Salesforce org emulator."""


def main() -> None:
    """The `sfemu` entry point: the emulator on its own, without Replicator."""
    emulator(prog_name="sfemu")


def _counts(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or not name.strip() or not number.strip().isdigit():
            raise click.BadParameter(f"expected Object=N, got {value!r}")
        out[name.strip()] = int(number)
    return out


def _faults(_ctx: click.Context, _param: click.Parameter, value: str | None) -> FaultConfig:
    """Fault settings as JSON text or the path of a JSON file."""
    if not value:
        return FaultConfig()
    text = Path(value).read_text() if not value.lstrip().startswith("{") and Path(value).is_file() else value
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return FaultConfig.from_json(data)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from None


def org_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--port/--state-dir/--scale/--seed, shared by `serve` and `start` (which passes them on)."""
    options = [
        click.option("--port", default=8443, show_default=True, type=click.IntRange(0, 65535),
                     help="Port to listen on; 0 picks a free one (reported at start and in the ready file)."),
        click.option("--state-dir", default=DEFAULT_STATE_DIR, show_default=True,
                     type=click.Path(file_okay=False, path_type=Path), help="Org data, TLS files and spool."),
        click.option("--scale", default=2000, show_default=True, type=click.IntRange(1),
                     help="Org size (records)."),
        click.option("--seed", default=42, show_default=True, type=int, help="Seed of the generated data."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@emulator.command(context_settings=CONTEXT_SETTINGS)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@org_options
@click.option("--count", "counts", multiple=True, callback=_counts, metavar="OBJECT=N",
              help="Exact record count of an object (repeatable).")
@click.option("--no-files", is_flag=True, help="Generate no file bodies (ContentVersion, Attachment).")
@click.option("--hostname", "hostnames", multiple=True,
              help="Extra DNS name or IP for the TLS certificate (repeatable).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Serve this certificate (PEM) instead of a generated one.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Private key (PEM) of --tls-cert.")
@click.option("--org-type", type=click.Choice(["production", "sandbox"]), default="production",
              show_default=True)
@click.option("--sandbox-type", type=click.Choice(["developer", "developer_pro", "partial", "full"]),
              default="partial", show_default=True,
              help="Kind of sandbox (with --org-type sandbox): its data storage allocation in /limits.")
@click.option("--schema", "schema_files", multiple=True, type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Extra schema YAML merged into the standard one (repeatable).")
@click.option("--session-seconds", default=7200, show_default=True, type=click.IntRange(1),
              help="Idle time after which a session expires.")
@click.option("--api-limit", default=15000, show_default=True, type=click.IntRange(0),
              help="DailyApiRequests maximum (rolling 24 h).")
@click.option("--faults", "fault_config", callback=_faults, metavar="JSON",
              help="Initial fault settings (JSON text or file), e.g. '{\"error_rate\": 0.1}'.")
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write connection details here (JSON) once the server accepts connections.")
@click.option("--reset-data", is_flag=True, help="Regenerate the org even if the state dir holds one.")
@click.option("--control-token", envvar=ENV + "CONTROL_TOKEN",
              help="Require this X-Emulator-Token header on /_emulator/ calls.")
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option("--request-timeout", "request_seconds", default=60.0, show_default=True,
              type=click.FloatRange(0.1), help="Seconds a client has to send a whole request.")
@click.option("--username", envvar=ENV + "USERNAME", default=OrgSettings.username, show_envvar=True)
@click.option("--password", envvar=ENV + "PASSWORD", default=OrgSettings.password, show_envvar=True)
@click.option("--security-token", envvar=ENV + "SECURITY_TOKEN", default=OrgSettings.security_token,
              show_envvar=True)
@click.option("--client-id", envvar=ENV + "CLIENT_ID", default=OrgSettings.client_id, show_envvar=True)
@click.option("--client-secret", envvar=ENV + "CLIENT_SECRET", default=OrgSettings.client_secret,
              show_envvar=True)
def serve(host: str, port: int, state_dir: Path, scale: int, seed: int, counts: dict[str, int],
          no_files: bool, hostnames: tuple[str, ...], tls_cert: Path | None, tls_key: Path | None,
          org_type: str, sandbox_type: str, schema_files: tuple[Path, ...], session_seconds: int,
          api_limit: int, fault_config: FaultConfig, ready_file: Path | None, reset_data: bool,
          control_token: str | None, access_log: bool, request_seconds: float, username: str, password: str,
          security_token: str, client_id: str, client_secret: str) -> None:
    """Serve an emulated org over HTTPS until interrupted."""
    from sfemu.serve import ServeOptions  # uvicorn only when serving
    from sfemu.serve import serve as run

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    settings = OrgSettings(
        state_dir=state_dir.resolve(), seed=seed, scale=scale, counts=counts, files=not no_files,
        org_type=org_type, sandbox_type=sandbox_type,
        schema_files=[STANDARD_SCHEMA, *schema_files] if schema_files else [], username=username,
        password=password, security_token=security_token, client_id=client_id,
        client_secret=client_secret, session_seconds=session_seconds, api_limit=api_limit,
        faults=fault_config,
    )
    options = ServeOptions(host=host, port=port, hostnames=list(hostnames), tls_cert=tls_cert,
                           tls_key=tls_key, ready_file=ready_file, control_token=control_token,
                           access_log=access_log, reset_data=reset_data, request_seconds=request_seconds)
    try:
        run(settings, options)
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc}") from None
    except KeyboardInterrupt:
        pass


@emulator.command(context_settings=CONTEXT_SETTINGS)
@org_options
@click.option("--org-type", type=click.Choice(["production", "sandbox"]), default="production",
              show_default=True)
@click.option("--reset-data", is_flag=True, help="Regenerate the org even if the state dir holds one.")
def start(port: int, state_dir: Path, scale: int, seed: int, org_type: str, reset_data: bool) -> None:
    """Serve an org in the background; print its connection facts as JSON once it is ready.

    For scripts: `sfemu start` returns when clients can connect, `sfemu stop` ends the server.
    """
    from sfemu.launch import start_emulator, wait_ready

    extra = ["--org-type", org_type, *(["--reset-data"] if reset_data else [])]
    process, ready = start_emulator(state_dir, port, scale, seed, extra)
    try:
        info = wait_ready(process, ready, state_dir / "emulator.log")
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    _print(info)


@emulator.command(context_settings=CONTEXT_SETTINGS)
@click.option("--state-dir", default=DEFAULT_STATE_DIR, show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="The state dir given to `start`.")
def stop(state_dir: Path) -> None:
    """Stop the emulator that `sfemu start` left running in STATE_DIR."""
    from sfemu.launch import stop_pid

    ready = state_dir / "ready.json"
    try:
        pid = int(json.loads(ready.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        raise click.ClickException(f"no running emulator recorded in {ready}") from None
    click.echo(f"stopped emulator {pid}" if stop_pid(pid) else f"emulator {pid} was not running")


# --- clients of a running emulator ---------------------------------------------------------------


class Control:
    """A small client of the control API."""

    def __init__(self, url: str, ca: str | None, token: str | None) -> None:
        import requests  # not needed by `serve`

        self.base = url.rstrip("/") + "/_emulator"
        self.http = requests.Session()
        self.verify: str | bool = ca or True  # per request: REQUESTS_CA_BUNDLE would override the session's
        if token:
            self.http.headers["X-Emulator-Token"] = token

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
             stream: bool = False) -> Any:
        import requests

        try:
            response = self.http.request(method, f"{self.base}/{path}", json=body, params=params,
                                         stream=stream, timeout=600, verify=self.verify)
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot reach the emulator at {self.base}: {exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json()[0]["message"]
            except (ValueError, LookupError, TypeError):
                message = response.text
            raise click.ClickException(f"{response.status_code}: {message}")
        return response if stream else response.json()


def _default_ca() -> str | None:
    """The CA of the default state dir, when the user runs the emulator from here."""
    path = DEFAULT_STATE_DIR / "tls" / "ca.pem"
    return str(path) if path.exists() else os.environ.get("REQUESTS_CA_BUNDLE")


def client_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--url/--ca/--token, turned into a `control` argument."""
    fn = click.option("--token", envvar=ENV + "CONTROL_TOKEN", help="X-Emulator-Token, if required.")(fn)
    fn = click.option("--ca", type=click.Path(exists=True, dir_okay=False),
                      help="CA PEM of the emulator (default: var/emulator/tls/ca.pem).")(fn)
    fn = click.option("--url", envvar=ENV + "URL", default=DEFAULT_URL, show_default=True,
                      help="Base URL of the running emulator.")(fn)
    return fn


def _control(url: str, ca: str | None, token: str | None) -> Control:
    return Control(url, ca or _default_ca(), token)


def _print(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


@emulator.command(context_settings=CONTEXT_SETTINGS)
@client_options
def status(url: str, ca: str | None, token: str | None) -> None:
    """Org identity, clock, record counts and API usage."""
    _print(_control(url, ca, token).call("GET", "status"))


@emulator.command(context_settings=CONTEXT_SETTINGS)
@client_options
@click.option("--seed", type=int, help="Regenerate with this seed (default: the current one).")
@click.option("--scale", type=click.IntRange(1), help="Regenerate at this scale.")
def reset(url: str, ca: str | None, token: str | None, seed: int | None, scale: int | None) -> None:
    """Regenerate the org and forget sessions, ledger, faults and clock offset."""
    body = {k: v for k, v in (("seed", seed), ("scale", scale)) if v is not None}
    _print(_control(url, ca, token).call("POST", "reset", body))


def _rates(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for value in values:
        kind, sep, number = value.partition("=")
        try:
            rate = float(number)
        except ValueError:
            rate = -1.0
        if not sep or kind.strip() not in CHURN_KINDS or not 0.0 <= rate <= 1.0:
            raise click.BadParameter(f"expected KIND=FRACTION with KIND one of {', '.join(CHURN_KINDS)} "
                                     f"and FRACTION from 0 to 1, got {value!r}")
        out[kind.strip()] = rate
    return out


@emulator.command(context_settings=CONTEXT_SETTINGS)
@client_options
@click.option("--days", default=1, show_default=True, type=click.IntRange(1), help="Simulated days.")
@click.option("--seed", type=int, help="Seed of the simulated activity.")
@click.option("--rate", "rates", multiple=True, callback=_rates, metavar="KIND=FRACTION",
              help="Share of records per kind of change and day (update, insert, delete, undelete).")
def churn(url: str, ca: str | None, token: str | None, days: int, seed: int | None,
          rates: dict[str, float]) -> None:
    """Simulate days of user activity (inserts, updates, deletes) on the org."""
    body: dict[str, Any] = {"days": days}
    if seed is not None:
        body["seed"] = seed
    if rates:
        body["rates"] = rates
    _print(_control(url, ca, token).call("POST", "churn", body))


@emulator.command(context_settings=CONTEXT_SETTINGS)
@client_options
@click.option("--set", "moment", metavar="ISO", help="Set the org clock to this moment.")
@click.option("--advance", type=float, metavar="SECONDS", help="Move the org clock forward.")
def clock(url: str, ca: str | None, token: str | None, moment: str | None, advance: float | None) -> None:
    """Show, set or advance the org's clock."""
    if moment and advance is not None:
        raise click.UsageError("--set and --advance exclude each other")
    control = _control(url, ca, token)
    if moment:
        _print(control.call("POST", "clock", {"now": moment}))
    elif advance is not None:
        _print(control.call("POST", "clock", {"advance_seconds": advance}))
    else:
        _print(control.call("GET", "clock"))


@emulator.command(context_settings=CONTEXT_SETTINGS)
@client_options
@click.option("--set", "settings", metavar="JSON", help="Replace the fault settings with this JSON.")
@click.option("--clear", is_flag=True, help="Switch all faults off.")
def faults(url: str, ca: str | None, token: str | None, settings: str | None, clear: bool) -> None:
    """Show or change injected faults."""
    control = _control(url, ca, token)
    if settings and clear:
        raise click.UsageError("--set and --clear exclude each other")
    if settings:
        try:
            body = json.loads(settings)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--set") from None
        _print(control.call("PUT", "faults", body))
    elif clear:
        _print(control.call("PUT", "faults", {}))
    else:
        _print(control.call("GET", "faults"))


@emulator.command(context_settings=CONTEXT_SETTINGS)
@client_options
@click.option("--since", default=0, show_default=True, type=click.IntRange(0), help="Calls after this seq.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
def ledger(url: str, ca: str | None, token: str | None, since: int, as_json: bool) -> None:
    """The calls the emulator answered, with counts per kind."""
    data = _control(url, ca, token).call("GET", "ledger", params={"since": since})
    if as_json:
        _print(data)
        return
    for call in data["calls"]:
        mark = "*" if call["counted"] else " "
        click.echo(f"{call['seq']:>6} {call['at']} {mark} {call['status']} {call['kind']:<8} "
                   f"{call['method']:<6} {call['path']}")
    summary, usage = data["summary"], data["api_usage"]
    click.echo(f"{summary['calls']} calls ({summary['counted']} counted *), by kind {summary['by_kind']}; "
               f"API usage {usage['used']}/{usage['max']}")


@emulator.command("add-field", context_settings=CONTEXT_SETTINGS)
@client_options
@click.argument("object_name", metavar="OBJECT")
@click.argument("field_name", metavar="FIELD")
@click.option("--type", "ftype", default="string", show_default=True,
              help="Field type as in a schema file (boolean, string, int, double, date, picklist...).")
@click.option("--length", type=click.IntRange(1), help="Text length.")
@click.option("--default", "default", metavar="VALUE", help="Default value (existing records get it too).")
@click.option("--label", help="Field label.")
def add_field(url: str, ca: str | None, token: str | None, object_name: str, field_name: str, ftype: str,
              length: int | None, default: str | None, label: str | None) -> None:
    """Add custom FIELD (ending in __c) to OBJECT while the org runs."""
    body: dict[str, Any] = {"object": object_name, "name": field_name, "type": ftype}
    if length is not None:
        body["length"] = length
    if label is not None:
        body["label"] = label
    if default is not None:
        body["default"] = {"true": True, "false": False}.get(default.lower(), default) \
            if ftype == "boolean" else default
    _print(_control(url, ca, token).call("POST", "fields", body))


@emulator.command(context_settings=CONTEXT_SETTINGS)
@client_options
@click.argument("object_name", metavar="OBJECT")
@click.option("--deleted", is_flag=True, help="Include records in the recycle bin.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
def dump(url: str, ca: str | None, token: str | None, object_name: str, deleted: bool, fmt: str,
         out: Path | None) -> None:
    """Ground truth: every stored field of every record of OBJECT, ordered by Id."""
    response = _control(url, ca, token).call(
        "GET", f"dump/{object_name}", params={"deleted": str(deleted).lower(), "format": fmt}, stream=True)
    sink = open(out, "wb") if out else sys.stdout.buffer  # noqa: SIM115 - stdout must stay open
    try:
        for chunk in response.iter_content(chunk_size=1 << 16):
            sink.write(chunk)
    finally:
        if out:
            sink.close()


@emulator.command("summary", context_settings=CONTEXT_SETTINGS)
@click.option("--state-dir", default=Path("var/emulator-summary"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", default=8443, show_default=True, type=click.IntRange(0, 65535),
              help="Port for the emulator (a free one is used if it is taken).")
@click.option("--scale", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--keep-running", is_flag=True, help="Leave the emulator running after the summary.")
def summary(state_dir: Path, port: int, scale: int, seed: int, keep_running: bool) -> None:
    """Start the emulator with a demo org, log in like a user and summarise the org."""
    from sfemu.summary import run_summary  # needs simple-salesforce and rich

    run_summary(state_dir=state_dir, port=port, scale=scale, seed=seed, keep_running=keep_running)
