"""`replicator automations`: list an org's active automations, switch them off and on by hand, and
switch back on what a killed run left off.

The mechanism lives in replicator.salesforce.automations (restore and seeding use it directly); this
job only resolves the org and its journal from the config and shapes results for the CLI and the
REST service. `recover_interrupted` is what makes "the next command against that org" safe: the CLI
calls it before any command that names an org.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from replicator.config import Config
from replicator.errors import Locked, NotFound
from replicator.result import JobResult
from replicator.salesforce.automations import (
    MANAGED,
    TYPES,
    Automation,
    Recovery,
    SwitchReport,
    list_automations,
    recover,
    switch_off,
    switch_on,
)
from replicator.salesforce.client import OrgClient
from replicator.store.automation_journal import AutomationJournal
from replicator.store.repository import Repository

__all__ = ["ActiveAutomations", "AutomationsRequest", "OnResult", "SwitchResult", "active_automations",
           "automations_off", "automations_on", "recover_interrupted"]


@dataclass
class AutomationsRequest:
    """Which org, and for switching off, optionally only these `Type:Name` items."""

    org: str
    only: list[str] | None = None


def _client(config: Config, org: str) -> OrgClient:
    if org not in config.orgs:
        known = ", ".join(config.orgs) or "none"
        raise NotFound(f"no org {org!r} in {config.path} (orgs: {known})", key=f"orgs.{org}")
    return OrgClient(config.orgs[org])


def _journal(config: Config, org: str) -> AutomationJournal:
    return Repository(config.storage.path).automation_journal(org)


@dataclass
class ActiveAutomations(JobResult):
    """Active automations per type; managed ones are listed apart (Salesforce will not switch them)."""

    org: str
    sandbox: bool
    active: dict[str, list[str]]
    managed: dict[str, list[str]]

    def to_json(self) -> Any:
        """OwnBackup's "active automations" shape: type -> names, managed packages excluded."""
        return self.active

    def text(self) -> str:
        lines = [f"org {self.org} ({'sandbox' if self.sandbox else 'production'})"]
        for t in TYPES:
            lines.append(f"{t}: {', '.join(self.active[t]) or '-'}")
            if self.managed[t]:
                lines.append(f"  not switchable ({MANAGED}): {', '.join(self.managed[t])}")
        if not self.sandbox and self.active["ApexTrigger"]:
            lines.append("Apex triggers cannot be switched off in a production org")
        return "\n".join(lines)


def active_automations(config: Config, request: AutomationsRequest) -> ActiveAutomations:
    """The org's active ApexTrigger, ValidationRule, Flow and WorkflowRule names per type."""
    org = request.org
    sandbox, _, found = list_automations(_client(config, org))

    def names(items: Iterable[Automation], t: str) -> list[str]:
        return sorted(a.full_name for a in items if a.type == t)

    own = [a for a in found if not a.namespace]
    managed = [a for a in found if a.namespace]
    return ActiveAutomations(org, sandbox, {t: names(own, t) for t in TYPES},
                             {t: names(managed, t) for t in TYPES})


@dataclass
class SwitchResult(JobResult):
    """What `automations off` switched off, and what stays on and why."""

    org: str
    switched_off: list[str]
    kept_on: list[dict[str, str]]
    recovered: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"switched back on first: {', '.join(self.recovered)}"] if self.recovered else []
        lines.append(f"switched off in org {self.org}: {', '.join(self.switched_off) or 'nothing'}")
        lines += [f"  kept on: {k['type']} {k['name']} ({k['reason']})" for k in self.kept_on]
        lines.append(f"switch them back on with: replicator automations on --org {self.org}")
        return "\n".join(lines)


def automations_off(config: Config, request: AutomationsRequest) -> SwitchResult:
    """Switch the org's automations (or `only` Type:Name items) off until `automations_on`."""
    org = request.org
    report: SwitchReport = switch_off(_client(config, org), _journal(config, org), only=request.only)
    plan = report.plan.to_json()
    return SwitchResult(org, [a.label for a in report.switched], plan["kept_on"],
                        report.recovered.switched_on if report.recovered else [])


@dataclass
class OnResult(JobResult):
    """What a journal named and is now switched back on (nothing: the org was as its users left it)."""

    org: str
    switched_on: list[str]
    message: str

    def text(self) -> str:
        return self.message


def automations_on(config: Config, request: AutomationsRequest) -> OnResult:
    """Switch back on everything Replicator switched off in the org (by hand or by a killed run)."""
    org = request.org
    recovery = switch_on(_client(config, org), _journal(config, org))
    if recovery is None:
        return OnResult(org, [], f"no automations of org {org} are switched off by Replicator")
    return OnResult(org, recovery.switched_on, recovery.text())


def recover_interrupted(config: Config, orgs: Iterable[str]) -> list[Recovery]:
    """Switch back on what killed runs left off in these orgs (journals held by a live process and
    those of a manual `off` are left alone). Cheap when there is nothing to do: one folder listing."""
    repository = Repository(config.storage.path)
    pending = set(repository.automation_journals())
    done = []
    for org in orgs:
        if org not in pending or org not in config.orgs:
            continue
        try:
            with repository.automation_journal(org).hold() as journal:
                recovery = recover(OrgClient(config.orgs[org]), journal)
        except Locked:  # a live process is switching them: its own exit switches them back on
            continue
        if recovery is not None:
            done.append(recovery)
    return done
