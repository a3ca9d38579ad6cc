"""`--disable-automations` for restore and replicate: the target's automations off for the load only.

Why a module of its own: restore and replicate (and their plans) share it. The mechanism and the
journal that brings automations back on after a crash belong to salesforce/automations.py; here the
switch is planned with the load (so the plan shows what stays on and why, e.g. Apex triggers a
production org refuses to change, and what switching costs) and wrapped around the load.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from replicator.config import Config
from replicator.restore.plan import RestorePlan
from replicator.salesforce.automations import plan_switch, switched_off
from replicator.salesforce.client import OrgClient
from replicator.store.repository import Repository


@dataclass(frozen=True)
class Automations:
    """Whether to switch the target's automations off, and which (Type:Name items; all by default)."""

    disable: bool = False
    only: tuple[str, ...] | None = None


LEFT_ON = Automations()  # the default: automations stay as the org has them


def add_to_plan(plan: RestorePlan, client: OrgClient, automations: Automations) -> None:
    """Show in the plan what switching off would do to the automations of the loaded objects."""
    if automations.disable:
        switch = plan_switch(client, only=automations.only, objects=plan.order)
        plan.automations = switch.to_json()
        plan.automation_calls = switch.calls()


@contextmanager
def off_during(config: Config, client: OrgClient, objects: Sequence[str],
               automations: Automations) -> Iterator[None]:
    """The block runs with the automations of `objects` off, exactly those switched back on after
    (also after a crash: the journal's recovery)."""
    if not automations.disable:
        yield
        return
    journal = Repository.for_storage(config.storage).automation_journal(client.settings.name)
    with switched_off(client, journal, only=automations.only, objects=objects):
        yield
