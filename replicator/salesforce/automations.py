"""An org's automations: list them, switch them off for a load, and reliably switch them back on.

Why here (salesforce/, not a job): restore, replicate and seeding all load with automations off, and
jobs must not import each other. The mechanism is the Tooling API (sf_api.md section 6): validation
and workflow rules through `Metadata.active`, flows through `FlowDefinition.activeVersionNumber`, Apex
triggers through the deployment route (MetadataContainer, ApexTriggerMember, ContainerAsyncRequest),
which is the documented one; a production org refuses Apex changes, so `plan_switch` says so before
anything is touched. Managed-package components refuse every change and are never planned.

"Reliably back on" rests on the journal (store.automation_journal): what will be switched off, with
everything needed to switch it on again (rule metadata, flow version, trigger body), is written and
synced BEFORE the first switch, and cleared only after the last switch back. A process killed in
between leaves the journal behind; `recover` (called by the next command against the org) switches
its entries back on. Every switch back is idempotent, so an entry that never got switched off is
harmless to replay.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from replicator.errors import InvalidInput, OrgProblem
from replicator.salesforce.client import OrgClient, OrgError

__all__ = ["TYPES", "Automation", "Kept", "Recovery", "SwitchPlan", "SwitchReport", "list_automations",
           "plan_switch", "recover", "switch_off", "switch_on", "switched_off"]

log = logging.getLogger("replicator.salesforce.automations")

TYPES = ("ApexTrigger", "ValidationRule", "Flow", "WorkflowRule")
DEPLOY_DONE = frozenset({"Completed", "Failed", "Error", "Aborted", "Invalidated"})
DEPLOY_POLL_SECONDS, DEPLOY_TIMEOUT_SECONDS = 0.5, 600.0
PRODUCTION_APEX = ("a production org refuses Apex trigger changes (ENTITY_IS_LOCKED): deploy it Inactive "
                   "through the Metadata API with tests, or load into a sandbox")
MANAGED = "managed package component: Salesforce does not let it be switched off"


class Journal(Protocol):
    """What switching needs of the crash-safe journal (store.automation_journal.AutomationJournal)."""

    org: str

    def hold(self) -> Any: ...
    def read(self) -> dict[str, Any] | None: ...
    def write(self, state: dict[str, Any]) -> None: ...
    def clear(self) -> None: ...


@dataclass(frozen=True)
class Automation:
    """One active automation: `id` is the record switched (a FlowDefinition's for flows).

    `metadata` (rules), `version` (flows) and `body`/`api_version` (triggers) are what switching it
    back on needs; they travel in the journal so a later process can do it without asking the org.
    """

    type: str
    id: str
    name: str
    object: str | None = None
    namespace: str | None = None
    version: int | None = None
    api_version: float | None = None
    body: str | None = field(default=None, repr=False, compare=False)
    metadata: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def full_name(self) -> str:
        """`Object.Name`, as OwnBackup's "active automations" route names them."""
        return f"{self.object}.{self.name}" if self.object else self.name

    @property
    def label(self) -> str:
        return f"{self.type} {self.full_name}"

    def matches(self, type_name: str, name: str) -> bool:
        """`--only Type:Name`: the type, and the full name or the bare name (case-insensitive)."""
        return (self.type.casefold() == type_name.casefold()
                and name.casefold() in (self.full_name.casefold(), self.name.casefold()))


@dataclass(frozen=True)
class Kept:
    """An active automation that cannot be switched off, and why."""

    automation: Automation
    reason: str


@dataclass
class SwitchPlan:
    """What switching off would do in this org, found before anything is switched."""

    org_id: str
    sandbox: bool
    switch: list[Automation] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    listing_calls: int = 0  # what finding the active automations cost (switched_off lists them again)

    def calls(self) -> int:
        """API calls `switched_off` spends for this plan: listing the automations again, reading the
        validation rules' metadata, switching off and back on (a trigger deployment polls once when the
        org answers at once, as the emulator does; a real org may need more polls)."""
        rules = sum(a.type in ("ValidationRule", "WorkflowRule") for a in self.switch)
        flows = sum(a.type == "Flow" for a in self.switch)
        triggers = sum(a.type == "ApexTrigger" for a in self.switch)
        vr_reads = sum(a.type == "ValidationRule" for a in self.switch)
        deploys = 2 * (3 + triggers) if triggers else 0
        return self.listing_calls + vr_reads + 2 * rules + 2 * flows + deploys

    def to_json(self) -> dict[str, Any]:
        return {"org_id": self.org_id, "sandbox": self.sandbox, "api_calls": self.calls(),
                "switch_off": {t: [a.full_name for a in self.switch if a.type == t] for t in TYPES},
                "kept_on": [{"type": k.automation.type, "name": k.automation.full_name, "reason": k.reason}
                            for k in self.kept]}


@dataclass
class Recovery:
    """Automations a journal named that were switched back on (a killed run's, or a manual `off`)."""

    org: str
    pid: int | None
    started: str | None
    switched_on: list[str]
    manual: bool = False

    def text(self) -> str:
        who = ("`automations off`" if self.manual
               else f"an interrupted run (pid {self.pid}, started {self.started})")
        names = ", ".join(self.switched_on)
        return f"automations of org {self.org} left off by {who} were switched back on: {names}"


@dataclass
class SwitchReport:
    """What `switched_off` did: its plan, what it switched off, and any earlier run's leftovers it
    switched back on first."""

    plan: SwitchPlan
    switched: list[Automation] = field(default_factory=list)
    recovered: Recovery | None = None


# --- listing ---------------------------------------------------------------------------------------


def _tooling_query(client: OrgClient, soql: str) -> list[dict[str, Any]]:
    data = client.get_json("tooling/query", q=soql)
    records = list(data["records"])
    while not data.get("done", True) and data.get("nextRecordsUrl"):
        data = client.get_json(data["nextRecordsUrl"])
        records += data["records"]
    return records


def _tooling_record(client: OrgClient, sobject: str, rid: str) -> dict[str, Any]:
    return client.get_json(f"tooling/sobjects/{sobject}/{rid}")


def list_automations(client: OrgClient) -> tuple[bool, str, list[Automation]]:
    """(org is a sandbox, org Id, every active automation of the four types, managed ones included)."""
    org = client.get_json("query", q="SELECT Id, IsSandbox FROM Organization")["records"][0]
    found: list[Automation] = []
    for t in _tooling_query(client, "SELECT Id, Name, TableEnumOrId, NamespacePrefix, ApiVersion, Body "
                                    "FROM ApexTrigger WHERE Status = 'Active'"):
        found.append(Automation("ApexTrigger", t["Id"], t["Name"], t["TableEnumOrId"], t["NamespacePrefix"],
                                api_version=t["ApiVersion"], body=t["Body"]))
    for v in _tooling_query(client, "SELECT Id, ValidationName, EntityDefinition.QualifiedApiName, "
                                    "NamespacePrefix FROM ValidationRule WHERE Active = true"):
        entity = (v.get("EntityDefinition") or {}).get("QualifiedApiName")
        found.append(Automation("ValidationRule", v["Id"], v["ValidationName"], entity, v["NamespacePrefix"]))
    for f in _tooling_query(client, "SELECT Id, DeveloperName, ActiveVersionId, ActiveVersion.VersionNumber, "
                                    "NamespacePrefix FROM FlowDefinition WHERE ActiveVersionId != null"):
        meta = _tooling_record(client, "Flow", f["ActiveVersionId"]).get("Metadata") or {}
        start = meta.get("start") or {}
        found.append(Automation("Flow", f["Id"], f["DeveloperName"], start.get("object"),
                                f["NamespacePrefix"], version=f["ActiveVersion"]["VersionNumber"]))
    for w in _tooling_query(client, "SELECT Id, Name, TableEnumOrId, NamespacePrefix FROM WorkflowRule"):
        if w["NamespacePrefix"]:  # managed: listed as kept on without reading its state
            found.append(Automation("WorkflowRule", w["Id"], w["Name"], w["TableEnumOrId"],
                                    w["NamespacePrefix"]))
            continue
        meta = _tooling_record(client, "WorkflowRule", w["Id"])["Metadata"]
        if meta.get("active"):
            found.append(Automation("WorkflowRule", w["Id"], w["Name"], w["TableEnumOrId"], metadata=meta))
    return bool(org["IsSandbox"]), org["Id"], found


def _api_calls(client: OrgClient) -> int:
    """Calls the org counts against its API allocation (logins are not)."""
    return client.ledger.calls - client.ledger.by_kind["auth"]


def _parse_only(only: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in only:
        type_name, sep, name = item.partition(":")
        canonical = next((t for t in TYPES if t.casefold() == type_name.strip().casefold()), None)
        if not sep or not name.strip() or canonical is None:
            raise InvalidInput(f"{item!r} is not Type:Name (types: {', '.join(TYPES)})")
        pairs.append((canonical, name.strip()))
    return pairs


def plan_switch(client: OrgClient, *, only: Sequence[str] | None = None,
                objects: Sequence[str] | None = None) -> SwitchPlan:
    """What switching off would switch, and what stays on and why (managed, Apex in production).

    `only` (Type:Name items) must name active automations that can be switched, or nothing at all is
    switched: InvalidInput names the first that cannot. `objects` keeps the automations of those
    sObjects (a flow whose object is unknown is then left out).
    """
    before = _api_calls(client)
    sandbox, org_id, active = list_automations(client)
    listing = _api_calls(client) - before
    if objects is not None:
        wanted = {o.casefold() for o in objects}
        active = [a for a in active if a.object and a.object.casefold() in wanted]
    plan = SwitchPlan(org_id, sandbox, listing_calls=listing)
    for a in active:
        if a.namespace:
            plan.kept.append(Kept(a, MANAGED))
        elif a.type == "ApexTrigger" and not sandbox:
            plan.kept.append(Kept(a, PRODUCTION_APEX))
        else:
            plan.switch.append(a)
    if only is None:
        return plan
    chosen: list[Automation] = []
    for type_name, name in _parse_only(only):
        hit = next((a for a in plan.switch if a.matches(type_name, name)), None)
        if hit is None:
            kept = next((k for k in plan.kept if k.automation.matches(type_name, name)), None)
            if kept is not None:
                raise InvalidInput(f"{type_name} {kept.automation.full_name} cannot be switched off: "
                                   f"{kept.reason}")
            names = ", ".join(a.full_name for a in plan.switch if a.type == type_name) or "none"
            raise InvalidInput(f"no active {type_name} named {name!r} in this org (active: {names})")
        if hit not in chosen:
            chosen.append(hit)
    plan.kept = [k for k in plan.kept if any(k.automation.matches(t, n) for t, n in _parse_only(only))]
    plan.switch = chosen
    return plan


# --- switching ----------------------------------------------------------------------------------


def _with_metadata(client: OrgClient, a: Automation) -> Automation:
    """A rule with the full Metadata its PATCH must send back (read once, kept in the journal)."""
    if a.type != "ValidationRule" or a.metadata is not None:
        return a
    meta = _tooling_record(client, "ValidationRule", a.id)["Metadata"]
    return Automation(a.type, a.id, a.name, a.object, a.namespace, metadata=meta)


def _set_rule(client: OrgClient, a: Automation, active: bool) -> None:
    client.request("PATCH", f"tooling/sobjects/{a.type}/{a.id}", json_body={"Metadata": {**(a.metadata or {}),
                                                                                         "active": active}},
                   expect=(204,))


def _set_flow(client: OrgClient, a: Automation, active: bool) -> None:
    client.request("PATCH", f"tooling/sobjects/FlowDefinition/{a.id}",
                   json_body={"Metadata": {"activeVersionNumber": a.version if active else 0}}, expect=(204,))


def _deploy_triggers(client: OrgClient, triggers: Sequence[Automation], active: bool) -> None:
    """One MetadataContainer deployment setting every trigger's status; OrgError when it fails."""
    def create(sobject: str, body: dict[str, Any]) -> str:
        resp = client.request("POST", f"tooling/sobjects/{sobject}", json_body=body, expect=(200, 201),
                              idempotent=False)
        return resp.json()["id"]

    container = create("MetadataContainer", {"Name": f"replicator{uuid.uuid4().hex[:22]}"})
    status = "Active" if active else "Inactive"
    for t in triggers:
        create("ApexTriggerMember", {"MetadataContainerId": container, "ContentEntityId": t.id,
                                     "Body": t.body, "Metadata": {"apiVersion": t.api_version,
                                                                  "status": status}})
    request = create("ContainerAsyncRequest", {"MetadataContainerId": container, "IsCheckOnly": False})
    deadline = time.monotonic() + DEPLOY_TIMEOUT_SECONDS
    while True:
        state = client.get_json(f"tooling/sobjects/ContainerAsyncRequest/{request}")
        if state["State"] == "Completed":
            return
        if state["State"] in DEPLOY_DONE:
            names = ", ".join(t.full_name for t in triggers)
            why = state.get("ErrorMsg") or state["State"]
            raise OrgError(f"setting Apex triggers {names} {status} failed: {why}", "DEPLOY_FAILED")
        if time.monotonic() > deadline:
            raise OrgError(f"the Apex trigger deployment {request} is not done after "
                           f"{DEPLOY_TIMEOUT_SECONDS:.0f}s", "DEPLOY_TIMEOUT")
        time.sleep(DEPLOY_POLL_SECONDS)


def _switch(client: OrgClient, items: Sequence[Automation], active: bool) -> list[tuple[Automation, str]]:
    """Switch every item, going on after a failure; the failures (item, message) are returned."""
    failures: list[tuple[Automation, str]] = []
    for a in items:
        if a.type == "ApexTrigger":
            continue
        try:
            (_set_flow if a.type == "Flow" else _set_rule)(client, a, active)
        except OrgError as exc:
            failures.append((a, exc.message))
    triggers = [a for a in items if a.type == "ApexTrigger"]
    if triggers:
        try:
            _deploy_triggers(client, triggers, active)
        except OrgError as exc:
            failures += [(t, exc.message) for t in triggers]
    return failures


def _entries(state: dict[str, Any] | None) -> list[tuple[Automation, bool]]:
    """(automation, switched off by hand) of a journal's entries."""
    out = []
    for raw in (state or {}).get("entries", []):
        manual = bool(raw.pop("manual", False))
        out.append((Automation(**raw), manual))
    return out


def _state(client: OrgClient, plan: SwitchPlan, entries: Sequence[tuple[Automation, bool]]) -> dict[str, Any]:
    return {"org": client.settings.name, "org_id": plan.org_id, "pid": os.getpid(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "entries": [{**asdict(a), "manual": manual} for a, manual in entries]}


def _check_org(client: OrgClient, state: dict[str, Any], org_id: str) -> None:
    if state.get("org_id") and state["org_id"] != org_id:
        raise OrgProblem(f"the automations journal of org {client.settings.name} was written for org "
                         f"{state['org_id']}, but the configured org is {org_id}: switch them back on in "
                         f"that org and remove the journal")


def recover(client: OrgClient, journal: Journal, *, include_manual: bool = False) -> Recovery | None:
    """Switch back on what the journal names (call while holding it): a killed run's entries, and
    also those of a manual `off` when `include_manual`. None when there is nothing to do."""
    state = journal.read()
    entries = _entries(state)
    todo = [a for a, manual in entries if include_manual or not manual]
    if state is None or not todo:
        return None
    org_id = client.get_json("query", q="SELECT Id FROM Organization")["records"][0]["Id"]
    _check_org(client, state, org_id)
    failures = _switch(client, todo, True)
    if failures:
        raise OrgProblem(_still_off(client.settings.name, failures))
    rest = [(a, manual) for a, manual in entries if a not in todo]
    if rest:
        journal.write({**state, "entries": [{**asdict(a), "manual": m} for a, m in rest]})
    else:
        journal.clear()
    return Recovery(journal.org, state.get("pid"), state.get("started"), [a.label for a in todo],
                    manual=include_manual and any(m for _, m in entries))


def _still_off(org: str, failures: Sequence[tuple[Automation, str]]) -> str:
    first = failures[0]
    return (f"{len(failures)} automation(s) of org {org} could not be switched back on and stay in the "
            f"journal ({first[0].label}: {first[1]}); run `replicator automations restore --org {org}`")


def _keep_only(journal: Journal, client: OrgClient, plan: SwitchPlan,
               entries: Sequence[tuple[Automation, bool]]) -> None:
    """Leave only these entries in the journal (none: remove it)."""
    if entries:
        journal.write(_state(client, plan, entries))
    else:
        journal.clear()


def _switch_off_journaled(client: OrgClient, journal: Journal, plan: SwitchPlan,
                          manual: bool) -> tuple[list[Automation], list[tuple[Automation, bool]]]:
    """Journal the plan (keeping earlier manual entries), then switch it off; all or nothing."""
    earlier = [(a, True) for a, m in _entries(journal.read()) if m]
    items = [_with_metadata(client, a) for a in plan.switch]
    entries = earlier + [(a, manual) for a in items]
    journal.write(_state(client, plan, entries))  # synced before the first switch
    failures = _switch(client, items, False)
    if failures:
        back = _switch(client, items, True)
        if not back:
            _keep_only(journal, client, plan, earlier)
        after = _still_off(client.settings.name, back) if back else "nothing stays switched off"
        raise OrgProblem(f"switching off {failures[0][0].label} failed ({failures[0][1]}); {after}")
    return items, earlier


@contextmanager
def switched_off(client: OrgClient, journal: Journal, *, only: Sequence[str] | None = None,
                 objects: Sequence[str] | None = None) -> Iterator[SwitchReport]:
    """Switch the org's automations off for the block and exactly those back on afterwards.

    The journal is held for the block (a second process switching this org is refused) and written
    before the first switch; an earlier killed run's leftovers are switched back on first, so the plan
    sees the org as its users left it. On leaving (also by an exception) everything switched off is
    switched back on and the journal cleared; what cannot be switched back on stays journaled and the
    exit raises OrgProblem naming it.
    """
    plan = plan_switch(client, only=only, objects=objects)  # bad input: refused before any change
    with journal.hold():
        recovered = recover(client, journal)
        if recovered is not None:
            log.warning(recovered.text())
            plan = plan_switch(client, only=only, objects=objects)
        switched, earlier = _switch_off_journaled(client, journal, plan, manual=False)
        report = SwitchReport(plan, switched, recovered)
        try:
            yield report
        finally:
            failures = _switch(client, switched, True)
            if failures:
                raise OrgProblem(_still_off(client.settings.name, failures))
            _keep_only(journal, client, plan, earlier)


def switch_off(client: OrgClient, journal: Journal, *, only: Sequence[str] | None = None) -> SwitchReport:
    """Switch off by hand (`automations off`): journaled as manual, so only `switch_on` (never the
    automatic recovery of the next command) switches them back on."""
    plan = plan_switch(client, only=only)
    with journal.hold():
        recovered = recover(client, journal)
        if recovered is not None:
            plan = plan_switch(client, only=only)
        switched, _ = _switch_off_journaled(client, journal, plan, manual=True)
        return SwitchReport(plan, switched, recovered)


def switch_on(client: OrgClient, journal: Journal) -> Recovery | None:
    """Switch back on everything the journal names (`automations on` / `automations restore`)."""
    with journal.hold():
        return recover(client, journal, include_manual=True)
