"""The settings jobs: check a config file (a summary an admin can eyeball) and show it in full.

`load_config` already refuses a bad file with `file: key: message`; these jobs turn a loaded config
into what a person verifies before scheduling a job: where backups go, which orgs and jobs exist,
and which secret variables are still unset (reported, not fatal, so a file can be checked on a
machine that does not hold the secrets).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replicator.config import Config, ConfigError
from replicator.progress import Progress, Silent
from replicator.result import JobResult

__all__ = ["ConfigCheckRequest", "ConfigCheckResult", "ConfigShowRequest", "ConfigShowResult",
           "check_config", "show_config"]


@dataclass(frozen=True)
class ConfigCheckRequest:
    """Nothing to choose: the loaded file is the subject."""


@dataclass
class ConfigCheckResult(JobResult):
    """The loaded config and the secret variables it names that are not set."""

    config: Config
    unset: list[str]

    def to_json(self) -> dict[str, Any]:
        """Path, storage, orgs and jobs in brief, and the unset variables."""
        cfg = self.config
        return {
            "ok": True,
            "path": str(cfg.path),
            "storage": str(cfg.storage.path),
            "orgs": {name: {"login_url": org.login_url, "auth": org.auth.method, "sandbox": org.sandbox}
                     for name, org in cfg.orgs.items()},
            "jobs": {name: {"org": job.org, "kind": job.kind, "schedule": job.schedule}
                     for name, job in cfg.jobs.items()},
            "unset_env": self.unset,
        }

    def text(self) -> str:
        """`<file>: OK`, then storage, one line per org and per job."""
        cfg = self.config
        lines = [f"{cfg.path}: OK", f"  storage: {cfg.storage.path}"]
        for name, org in cfg.orgs.items():
            kind = "sandbox" if org.sandbox else "production"
            lines.append(f"  org {name}: {org.login_url} ({kind}, auth {org.auth.method}, "
                         f"API v{org.api_version})")
        for name, job in cfg.jobs.items():
            lines.append(f"  job {name}: {job.kind} at {job.schedule} on org {job.org}, "
                         f"API cap {job.api_cap_percent}%, retention {job.retention}")
        return "\n".join(lines)

    def warnings(self) -> list[str]:
        """One warning per unset secret variable (a terminal shows them apart from the summary)."""
        return [f"warning: environment variable {env} is not set" for env in self.unset]


def check_config(config: Config, request: ConfigCheckRequest = ConfigCheckRequest(),
                 progress: Progress = Silent()) -> ConfigCheckResult:
    """Summarise the loaded config; unset secret variables are listed, not raised, but a file the
    config names that is missing (CA bundle, JWT key) or a storage path that is a file is an error
    now rather than a traceback at the first run."""
    for key, problem in _file_problems(config):
        raise ConfigError(config.path, key, problem)
    return ConfigCheckResult(config, [secret.env for _, secret in config.secrets() if not secret.is_set])


def _file_problems(config: Config) -> Iterator[tuple[str, str]]:
    """(dotted key, message) for each path in the config that cannot be what it must be."""
    storage = config.storage.path
    if storage.exists() and not storage.is_dir():
        yield "storage.path", f"{storage} is a file, not a folder"
    files: dict[str, Path | None] = {"storage.blob_key_file": config.storage.blob_key_file}
    for name, org in config.orgs.items():
        files[f"orgs.{name}.ca_bundle"] = org.ca_bundle
        files[f"orgs.{name}.private_key_file"] = getattr(org.auth, "private_key_file", None)
    for key, path in files.items():
        if path is not None and not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            yield key, f"{path} {what}"


@dataclass(frozen=True)
class ConfigShowRequest:
    """Nothing to choose: every setting is shown."""


@dataclass
class ConfigShowResult(JobResult):
    """The effective settings with defaults filled in; secrets as their variable and `***`."""

    settings: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The settings tree."""
        return self.settings

    def text(self) -> str:
        """The tree indented by two spaces per level; a secret shows where it comes from and if set."""
        return "\n".join(_tree(self.settings, 0))


def _tree(data: dict[str, Any], depth: int) -> list[str]:
    pad, lines = "  " * depth, []
    for key, value in data.items():
        if isinstance(value, dict) and set(value) == {"env", "value", "set"}:
            state = "set" if value["set"] else "NOT SET"
            lines.append(f"{pad}{key}: {value['value']} (from ${value['env']}, {state})")
        elif isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines += _tree(value, depth + 1)
        else:
            lines.append(f"{pad}{key}: {json.dumps(value)}")
    return lines


def show_config(config: Config, request: ConfigShowRequest = ConfigShowRequest(),
                progress: Progress = Silent()) -> ConfigShowResult:
    """The effective settings; secrets are always masked (`Config.as_dict` never reveals them)."""
    return ConfigShowResult(config.as_dict())
