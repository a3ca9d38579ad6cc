"""describe -> backup plan: which objects and fields are backed up, how, and why others are not.

Admins trust a backup only when it says what it leaves out. The plan names every object and field
with a decision and a reason, picks REST or Bulk per object from its record count, and chooses the
incremental cursor field. It is a pure function of describe data, so it is cheap to test and the
same plan drives `replicator catalog` and the backup run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from replicator.config import ObjectSelection
from replicator.salesforce.client import AuthenticationError, BudgetExceeded, OrgError

if TYPE_CHECKING:
    from replicator.salesforce.client import OrgClient

# Objects no backup product copies: derived, per-user or system views rather than org data.
SKIPPED_OBJECTS = {
    "LoginIp": "login IP allow-list entries are security metadata, not data",
    "ClientBrowser": "per-user browser registrations",
    "Vote": "not queryable without a filter on ParentId",
    "UserProfileFeed": "a feed view that requires a filter on a user",
    "UserRecordAccess": "computed per-user access, not stored data",
    "KnowledgeArticleVersion": "knowledge versions need a language and publish status filter",
}
SKIPPED_SUFFIXES = {
    "History": "field history is read-only audit data written by Salesforce",
    "Share": "sharing rows are recalculated by Salesforce from sharing rules",
    "__kav": "knowledge article versions need a language and publish status filter",
    "__x": "external objects live outside Salesforce",
    "Feed": "object feeds are read through FeedItem",
    "ChangeEvent": "change events are a stream, not stored records",
}
# Objects that need a filter to be queried at all; the source queries them per parent id.
FILTERED_OBJECTS = {"ContentDocumentLink": ("ContentDocumentId", "ContentDocument")}
# Objects the Bulk API refuses on real orgs; the source also falls back to REST on INVALIDENTITY.
BULK_UNSUPPORTED = frozenset({
    "AcceptedEventRelation", "Attachment", "CaseStatus", "ContractStatus", "DeclinedEventRelation",
    "FieldSecurityClassification", "KnowledgeArticle", "LeadStatus", "OpportunityStage", "PartnerRole",
    "RecentlyViewed", "SolutionStatus", "TaskPriority", "TaskStatus", "UndecidedEventRelation",
})
# Incremental cursors, best first. CreatedDate is not one: edits and undeletes do not move it
# (FeedComment has nothing else), so such objects are read whole every run and compared instead.
CURSOR_FIELDS = ("SystemModstamp", "LastModifiedDate")
BLOB_OBJECTS = {"ContentVersion": "VersionData", "Attachment": "Body", "Document": "Body"}
DEFAULT_BULK_THRESHOLD = 10_000


@dataclass
class FieldPlan:
    name: str
    type: str
    included: bool
    reason: str | None = None
    length: int = 0
    precision: int = 0
    scale: int = 0
    reference_to: list[str] = field(default_factory=list)


EDIT_FIELDS = ("CreatedDate", "LastEditDate")  # what an insert or an edit moves on FeedComment


@dataclass
class ObjectPlan:
    """The decision for one sObject."""

    name: str
    included: bool
    reason: str | None = None
    custom: bool = False
    records: int | None = None
    method: str | None = None  # rest | bulk
    cursor: str | None = None  # incremental cursor field, None = full copy every run
    filter_by: tuple[str, str] | None = None  # (field, parent object) for objects that need a filter
    blob_field: str | None = None
    fields: list[FieldPlan] = field(default_factory=list)
    error: str | None = None  # the job wants it but its describe failed: no fields, nothing to read

    @property
    def included_fields(self) -> list[FieldPlan]:
        return [f for f in self.fields if f.included]

    @property
    def edit_fields(self) -> list[str]:
        """Without a cursor: the datetimes a change moves (FeedComment: CreatedDate, LastEditDate)."""
        if self.cursor is not None or self.filter_by is not None:
            return []
        names = {f.name for f in self.included_fields}
        return [n for n in EDIT_FIELDS if n in names]

    @property
    def change_strategy(self) -> str:
        """How a run finds this object's changes, in words: the catalog shows it so admins can judge it."""
        whole = "read whole, every field compared, ids the org no longer has become deletions"
        if self.edit_fields:
            return (f"no SystemModstamp: its COUNT() and newest {' and '.join(self.edit_fields)} compared "
                    f"with the store's, plus /deleted, each run; when any differs, {whole}")
        if self.cursor is None:
            return f"no SystemModstamp or LastModifiedDate: {whole} every run"
        how = f"records whose {self.cursor} moved since the last run"
        if self.cursor != "SystemModstamp":
            how += " (no SystemModstamp: changes that only move it are seen by the periodic full read)"
        if self.filter_by is not None:
            return how + f", read per {self.filter_by[1]} id"
        return how + ", deletions from /deleted"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "included": self.included, "reason": self.reason, "records": self.records,
            "method": self.method, "cursor": self.cursor, "change_strategy": self.change_strategy,
            "blob_field": self.blob_field, "error": self.error,
            "filter_by": list(self.filter_by) if self.filter_by else None,
            "fields": [{"name": f.name, "type": f.type, "included": f.included, "reason": f.reason}
                       for f in self.fields],
        }


_ARROW_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(), "int": pa.int32(), "long": pa.int64(), "double": pa.float64(),
    "percent": pa.float64(), "date": pa.date32(), "datetime": pa.timestamp("ms", tz="UTC"),
    "time": pa.time32("ms"),
}


def arrow_type(f: FieldPlan) -> pa.DataType:
    """The Arrow type a field's values are staged with; the snapshot store derives SQL types from it.

    Everything textual (ids, references, picklists, base64 blob references, anyType) is a string;
    currency keeps its describe precision as a decimal so money never goes through binary floats.
    """
    if f.type == "currency":
        if 0 < f.precision <= 38 and 0 <= f.scale <= f.precision:
            return pa.decimal128(f.precision, f.scale)
        return pa.float64()
    return _ARROW_TYPES.get(f.type, pa.string())


def arrow_schema(plan: ObjectPlan) -> pa.Schema:
    """Schema of the staged table for an object: its included fields in describe order.

    Floating fields carry their describe scale as field metadata (b"scale"): Salesforce stores
    them rounded to it, so a reader can undo binary-float noise in JSON numbers.
    """
    return pa.schema([pa.field(f.name, arrow_type(f), metadata=_scale_of(f)) for f in plan.included_fields])


def _scale_of(f: FieldPlan) -> dict[bytes, bytes] | None:
    return {b"scale": str(f.scale).encode()} if f.type in ("double", "percent") and f.scale else None


def skip_reason(entry: Mapping[str, Any]) -> str | None:
    """Why an object from describeGlobal is never backed up, or None if it can be."""
    name = entry["name"]
    if name in SKIPPED_OBJECTS:
        return SKIPPED_OBJECTS[name]
    for suffix, reason in SKIPPED_SUFFIXES.items():
        if name.endswith(suffix):
            return reason
    if not entry.get("queryable", False):
        return "not queryable"
    if not entry.get("replicateable", False) and name not in FILTERED_OBJECTS:
        return "not replicateable"
    return None


def field_plan(f: Mapping[str, Any], blob_objects_field: str | None) -> FieldPlan:
    """Decision for one describe field entry."""
    ftype = f["type"]
    reason = None
    included = True
    if f.get("calculated") and f.get("calculatedFormula") is not None:
        included, reason = False, "formula field: its value is recomputed by Salesforce"
    elif ftype in ("address", "location"):
        included, reason = False, "compound field: backed up through its component fields"
    elif ftype == "base64" and f["name"] == blob_objects_field:
        # Kept as a column: the files step stores the body in the blob store and writes its blob id here.
        reason = "file body: stored in the blob store, the column holds its blob id"
    elif ftype == "base64":
        included, reason = False, "binary field: not backed up"
    return FieldPlan(name=f["name"], type=ftype, included=included, reason=reason,
                     length=f.get("length") or 0, precision=f.get("precision") or 0,
                     scale=f.get("scale") or 0, reference_to=list(f.get("referenceTo") or []))


def plan_object(describe: Mapping[str, Any], records: int | None, *,
                bulk_threshold: int = DEFAULT_BULK_THRESHOLD, keep_empty: bool = False) -> ObjectPlan:
    """Plan for one object that the selection wants, from its full describe.

    An object with no records creates no table, unless `keep_empty` (it was backed up before, so
    an empty count may mean every record was deleted, and those deletions must still be read).
    """
    name = describe["name"]
    blob = BLOB_OBJECTS.get(name)
    fields = [field_plan(f, blob) for f in describe["fields"]]
    names = {f.name for f in fields}
    cursor = next((c for c in CURSOR_FIELDS if c in names), None)
    plan = ObjectPlan(name=name, included=True, custom=bool(describe.get("custom")), records=records,
                      cursor=cursor, filter_by=FILTERED_OBJECTS.get(name), blob_field=blob, fields=fields)
    if records == 0 and not keep_empty:
        plan.included, plan.reason = False, "no records"
        return plan
    bulk_ok = name not in BULK_UNSUPPORTED and plan.filter_by is None
    plan.method = "bulk" if bulk_ok and (records or 0) >= bulk_threshold else "rest"
    return plan


def select(global_describe: Mapping[str, Any],
           selection: ObjectSelection) -> tuple[list[str], list[ObjectPlan]]:
    """Split describeGlobal into objects to describe further and objects skipped with a reason."""
    wanted: list[str] = []
    skipped: list[ObjectPlan] = []
    include = {n.lower() for n in selection.include}
    exclude = {n.lower() for n in selection.exclude}
    known = {e["name"].lower() for e in global_describe["sobjects"]}
    unknown = sorted(n for n in selection.include if n.lower() not in known)
    if unknown:
        raise ValueError(f"unknown object(s) in the job's include list: {', '.join(unknown)}")
    for entry in global_describe["sobjects"]:
        name = entry["name"]
        lname = name.lower()
        reason = skip_reason(entry)
        if lname in exclude:
            reason = "excluded by the job"
        elif reason is None and not selection.recommended and lname not in include:
            reason = "not in the job's include list"
        if reason is None:
            wanted.append(name)
        else:
            skipped.append(ObjectPlan(name=name, included=False, reason=reason,
                                      custom=bool(entry.get("custom"))))
    return wanted, skipped


def build_plan(describes: Iterable[Mapping[str, Any]],
               counts: Mapping[str, int], skipped: Iterable[ObjectPlan], *,
               bulk_threshold: int = DEFAULT_BULK_THRESHOLD, keep: Collection[str] = ()) -> list[ObjectPlan]:
    """The whole plan, sorted by object name: included objects with fields, and every skip."""
    plans = [plan_object(d, counts.get(d["name"]), bulk_threshold=bulk_threshold,
                         keep_empty=d["name"] in keep) for d in describes]
    plans.extend(skipped)
    return sorted(plans, key=lambda p: p.name.lower())


def plan_org(client: OrgClient, selection: ObjectSelection, bulk_threshold: int = DEFAULT_BULK_THRESHOLD, *,
             keep: Collection[str] = ()) -> list[ObjectPlan]:
    """Plan a job against the live org: describeGlobal, describe per wanted object, record counts.

    describeGlobal is read on every run, so with the recommended set a new object (a new custom
    object, a newly enabled feature) is backed up from the first run after it appears. `keep`
    names objects already in the snapshot store: they stay planned even when their count is 0.
    One object whose describe fails (the org refuses it, or answers 500 for it) does not stop the
    others: it gets a plan with `error` set, so the run fails that object only, by name.
    """
    wanted, skipped = select(client.describe_global(), selection)
    counts = client.record_counts(wanted)
    describes: list[Mapping[str, Any]] = []
    undescribed: list[ObjectPlan] = []
    for name in wanted:
        try:
            describes.append(client.describe(name))
        except (AuthenticationError, BudgetExceeded):
            raise  # the whole run stops (disabled, or the API cap): not this object's fault
        except OrgError as exc:
            undescribed.append(ObjectPlan(name=name, included=True, records=counts.get(name),
                                          error=f"describe failed: {_reason(exc)}"))
    return build_plan(describes, counts, [*skipped, *undescribed], bulk_threshold=bulk_threshold, keep=keep)


def _reason(exc: OrgError) -> str:
    """An org error in a few words: the HTTP status, Salesforce's errorCode, its message."""
    head = " ".join(str(x) for x in (exc.status, exc.code) if x)
    return f"{head} {exc}".strip() if head else str(exc)
