"""The backup plan of an org, before any backup: every object and field, included or skipped, and why.

Admins read it to see what a job will copy (and what it leaves out, e.g. objects the API cannot
query) before they schedule it; it asks the live org, exactly as a backup run plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replicator.config import Config, ObjectSelection
from replicator.errors import InvalidInput, NotFound
from replicator.progress import Progress, Silent
from replicator.result import JobResult
from replicator.salesforce.catalog import ObjectPlan, plan_org
from replicator.salesforce.client import OrgClient

__all__ = ["CatalogRequest", "CatalogResult", "catalog"]


@dataclass(frozen=True)
class CatalogRequest:
    """The org to describe, and the job whose object selection applies (None: the recommended set)."""

    org: str
    job: str | None = None


@dataclass
class CatalogResult(JobResult):
    """The plan per object, in the order the org lists them."""

    org: str
    plans: list[ObjectPlan] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The org and every object's plan with its fields."""
        return {"org": self.org, "objects": [p.to_json() for p in self.plans]}

    def text(self) -> str:
        """`+` for a backed-up object (how it is read) and its fields, `-` for a skipped one and why,
        `!` for one the job wants whose describe failed."""
        lines = []
        for plan in self.plans:
            if plan.error:
                lines.append(f"! {plan.name}: not backed up ({plan.error})")
                continue
            if not plan.included:
                lines.append(f"- {plan.name}: skipped ({plan.reason})")
                continue
            how = f"{plan.method}, cursor {plan.cursor or 'none (full copy)'}"
            if plan.filter_by:
                how += f", queried per {plan.filter_by[1]} id ({plan.filter_by[0]} IN ...)"
            lines.append(f"+ {plan.name}: {plan.records} records ({how})")
            lines.append(f"    changes: {plan.change_strategy}")
            for f in plan.fields:
                note = f" ({f.reason})" if f.reason else ""
                lines.append(f"    {'+' if f.included else '-'} {f.name} {f.type}{note}")
        included = sum(p.included for p in self.plans)
        lines.append(f"{included} objects backed up, {len(self.plans) - included} skipped")
        return "\n".join(lines)


def catalog(config: Config, request: CatalogRequest, progress: Progress = Silent()) -> CatalogResult:
    """Plan the org as a backup of the job would; NotFound for an unknown org or job."""
    if request.org not in config.orgs:
        known = ", ".join(config.orgs) or "none"
        raise NotFound(f"no org {request.org!r} in {config.path} (orgs: {known})", key=f"orgs.{request.org}")
    selection = ObjectSelection()
    if request.job is not None:
        if request.job not in config.jobs:
            raise NotFound(f"no job {request.job!r} in {config.path}", key=f"jobs.{request.job}")
        selection = config.jobs[request.job].objects
    progress.phase("describe the org")
    try:
        plans = plan_org(OrgClient(config.orgs[request.org]), selection)
    except ValueError as exc:  # a selection naming objects the org does not have
        raise InvalidInput(str(exc)) from None
    return CatalogResult(request.org, plans)
