"""A seed's plan: the subset chosen, how each object travels, what is masked, deleted and paid.

Why one place for the plan: `seed plan` shows exactly what `seed run` then executes, so both build
the same `Prepared` (the loader's LoadPlan plus what the ledger and the plan screen need), and every
check that can refuse a seed (template against describe, production and full-copy guards, cycles
of required references) runs here, before anything is written to the target.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from replicator.errors import InvalidInput
from replicator.salesforce import soql
from replicator.salesforce.client import OrgClient, OrgError
from replicator.seed.masking import KEYLESS, Masker, MaskingProblem, MaskRule, parse_rule, personal_kind
from replicator.seed.order import RequiredCycle, load_order
from replicator.seed.subset import WORK, ParentLink, Selection
from replicator.seed.template import Template, TemplateProblem
from replicator.sinks.salesforce.clean import delete_calls
from replicator.sinks.salesforce.model import CHANGED, LoadPlan, ObjectStep, Reference
from replicator.sinks.salesforce.price import price
from replicator.store.schema import quote
from replicator.store.snapshot import SnapshotStore

__all__ = ["METHODS", "PRODUCTION_CAP", "ObjectPlan", "Prepared", "SeedRefused", "TargetOrg", "prepare"]

METHODS = ("clean_and_insert", "incremental", "upsert")
PRODUCTION_CAP = 10_000  # OwnBackup's rule: at most this many records into a production org
PARTIAL_STORAGE_MB = 5120  # a sandbox with more data storage than a Partial Copy is a Full Copy
# Objects a seed never creates: their records are found in the target (users, record types,
# pricebooks) or left empty; a lookup to a user nobody matched takes the running user.
MATCHED_OBJECTS = frozenset({"User", "Group", "RecordType", "Pricebook2", "Profile", "UserRole",
                             "Organization", "BusinessHours"})
# Outcomes (SQL) that wrote a record `t` (mapped by `m`), and that set its deferred lookups: the second
# pass of its seed, or the update of a later seed (the loader reports an update under the target Id).
WRITTEN = "o.source_id = t.\"Id\" AND o.action IN ('insert', 'update')"
RELINKED = ("(o.source_id = t.\"Id\" AND o.action = 'relink') "
            "OR (o.source_id = m.target_id AND o.action = 'update')")
NOT_SENT_TYPES = frozenset({"base64", "address", "location"})


class SeedRefused(InvalidInput, ValueError):
    """A seed the target org must not receive (production, clean_and_insert into a full copy)."""


@dataclass(frozen=True)
class TargetOrg:
    """What a seed must know of its target before writing: the guards' facts and the running user."""

    name: str
    sandbox: bool
    full_copy: bool
    running_user: str


def inspect_target(client: OrgClient, name: str) -> TargetOrg:
    """IsSandbox from Organization, full copy from the data storage allocation, the user from userinfo."""
    rows = [r for page in client.query_pages("SELECT IsSandbox FROM Organization") for r in page]
    sandbox = bool(rows and rows[0].get("IsSandbox"))
    full = sandbox and int(client.limits().get("DataStorageMB", {}).get("Max", 0)) > PARTIAL_STORAGE_MB
    me = client.request("GET", f"https://{client.sf.sf_instance}/services/oauth2/userinfo").json()
    return TargetOrg(name, sandbox, full, me["user_id"])


@dataclass
class ObjectPlan:
    """One object's share, as the plan screen and JSON show it."""

    object: str
    records: int  # to insert (or upsert)
    skipped: int = 0  # already seeded into this target (incremental, upsert without a key)
    deletions: int = 0  # target records clean_and_insert deletes first
    api_calls: int = 0
    upsert_key: str | None = None
    references: list[str] = field(default_factory=list)  # "AccountId -> Account", "(deferred)"
    masked: dict[str, str] = field(default_factory=dict)  # field -> rule
    unmasked_personal: dict[str, str] = field(default_factory=dict)  # field -> the fake it should get


@dataclass
class Prepared:
    """Everything a seed needs, built before any write: the load plan, the per-object view, costs."""

    template: Template
    target: TargetOrg
    method: str
    run_id: int
    load: LoadPlan
    objects: list[ObjectPlan]
    deletes: list[str]  # objects emptied first, children first
    matched: dict[str, str | None]  # source Id -> target Id of users, record types, pricebooks
    api_calls: int
    notes: list[str]
    selection: Selection  # closed once the seed is done (its rows feed the load plan's batches)


class Describes:
    """The target's describe per object, fetched once; unknown objects are a template error."""

    def __init__(self, client: OrgClient, template: Template, cache: dict[str, dict[str, Any]]) -> None:
        self.client, self.template = client, template
        self._cache = cache

    def get(self, obj: str, key: str) -> dict[str, Any]:
        if obj not in self._cache:
            try:
                self._cache[obj] = self.client.describe(obj)
            except OrgError as exc:
                if exc.status == 404 or exc.code == "NOT_FOUND":
                    raise TemplateProblem(f"{self.template.path.name}: {key}: {obj!r} is not an object "
                                          "of the target org") from None
                raise
        return self._cache[obj]

    def fields(self, obj: str) -> dict[str, dict[str, Any]]:
        return {f["name"]: f for f in self.get(obj, obj)["fields"]}


def _reference_line(ref: Reference, present: set[str]) -> str:
    """How the plan shows a lookup: where it points among the seeded or matched objects."""
    targets = "|".join(t for t in ref.targets if t in present or t in MATCHED_OBJECTS) or "nothing (emptied)"
    return f"{ref.field} -> {targets}{' (deferred)' if ref.deferred else ''}"


def _same_user(source: str, target: str) -> bool:
    return target == source or target.startswith(source + ".")


class _Builder:
    def __init__(self, template: Template, store: SnapshotStore, client: OrgClient, target: TargetOrg,
                 method: str, run_id: int, masker: Masker, describes: dict[str, dict[str, Any]]) -> None:
        self.t, self.store, self.client, self.target = template, store, client, target
        self.method, self.run_id, self.masker = method, run_id, masker
        self.file = template.path.name
        self.describes = Describes(client, template, describes)
        self.in_store = set(store.reads.objects())
        self.selection = Selection(store, store.reads.as_of_ts(run_id), self.file)
        self.notes: list[str] = []

    def fail(self, key: str, message: str) -> TemplateProblem:
        return TemplateProblem(f"{self.file}: {key}: {message}")

    def columns(self, obj: str, key: str) -> dict[str, str]:
        if obj not in self.in_store:
            raise self.fail(key, f"{obj} is not in the backup")
        return self.store.reads.column_types(obj)

    # --- the subset ---------------------------------------------------------------------------

    def choose(self) -> None:
        root = self.t.root
        assert root.object is not None
        self.describes.get(root.object, "root.object")
        columns = self.columns(root.object, "root.object")
        self.selection.add_root(root.object, root.filter, columns, root.limit)
        todo = [(child, root.object) for child in root.children]
        while todo:
            node, parent = todo.pop(0)
            described = self.describes.get(parent, node.key)["childRelationships"]
            relations = {r["relationshipName"]: r for r in described if r.get("relationshipName")}
            rel = relations.get(node.relationship)
            if rel is None:
                known = ", ".join(sorted(relations)[:12])
                raise self.fail(f"{node.key}.relationship", f"{parent} has no child relationship "
                                f"{node.relationship!r} (some it has: {known})")
            obj = rel["childSObject"]
            self.describes.get(obj, node.key)
            self.selection.add_children(parent, obj, rel["field"], node.filter,
                                        self.columns(obj, f"{node.key}.relationship"), node.limit)
            todo[:0] = [(child, obj) for child in node.children]
        while True:
            objects = self.seeded()
            self.selection.close_parents(link for obj in objects for link in self.parent_links(obj))
            if self.seeded() == objects:
                return

    def seeded(self) -> list[str]:
        return sorted(o for o in self.selection.counts() if o not in MATCHED_OBJECTS)

    def sendable(self, obj: str) -> dict[str, dict[str, Any]]:
        """Fields of `obj` a seed sends: createable in the target, kept by the store, not excluded."""
        rules = self.t.objects.get(obj)
        excluded = set(rules.exclude) if rules else set()
        columns = self.store.reads.column_types(obj)
        return {name: f for name, f in self.describes.fields(obj).items()
                if f.get("createable") and name in columns and name != "Id" and name not in excluded
                and f.get("type") not in NOT_SENT_TYPES}

    def parent_links(self, obj: str) -> list[ParentLink]:
        links = []
        for name, f in self.sendable(obj).items():
            if f.get("type") != "reference":
                continue
            targets = tuple(t for t in f.get("referenceTo") or ()
                            if t in self.in_store and t not in MATCHED_OBJECTS)
            if targets:
                links.append(ParentLink(obj, name, targets))
        return links

    # --- matching users, record types and pricebooks -------------------------------------------

    def match(self, objects: list[str]) -> dict[str, str | None]:
        wanted: dict[str, set[str]] = defaultdict(set)
        owners: set[str] = set()
        for obj in objects:
            for name, f in self.sendable(obj).items():
                targets = set(f.get("referenceTo") or ()) & MATCHED_OBJECTS
                if f.get("type") != "reference" or not targets:
                    continue
                values = set(self.selection.referenced(obj, name))
                for target in targets:
                    wanted[target] |= values
                if "User" in targets:
                    owners |= values
        found: dict[str, str | None] = {}
        for target, ids in wanted.items():
            finder = getattr(self, f"_match_{target.lower()}", None)
            if finder is not None:
                found.update({k: v for k, v in finder(sorted(ids)).items() if v})
        matched = {i: found.get(i) or (self.target.running_user if i in owners else None)
                   for ids in wanted.values() for i in ids}
        unmatched_users = sum(1 for i in owners if not found.get(i))
        if unmatched_users:
            self.notes.append(f"{unmatched_users} user(s) not found in the target: their records go to the "
                              "running user")
        self.selection.add_matched(matched)
        return matched

    def _source_rows(self, obj: str, ids: list[str], columns: tuple[str, ...]) -> list[dict[str, Any]]:
        if obj not in self.in_store or not set(columns) <= set(self.store.reads.column_types(obj)):
            return []
        source, params = self.selection.source(obj)
        cols = ", ".join(f"t.{quote(c)}" for c in ("Id", *columns))
        return self.store.reads.read(f"SELECT {cols} FROM ({source}) t WHERE t.\"Id\" IN "
                                     "(SELECT unnest(?::VARCHAR[]))", [*params, ids]).to_pylist()

    def _target_rows(self, query: str) -> list[dict[str, Any]]:
        return [r for page in self.client.query_pages(query) for r in page]

    def _match_user(self, ids: list[str]) -> dict[str, str | None]:
        if self.t.match.users == "running_user":
            return {}
        users = self._target_rows("SELECT Id, Username, Email FROM User WHERE IsActive = true")
        by_email = {(u.get("Email") or "").lower(): u["Id"] for u in users if u.get("Email")}
        out: dict[str, str | None] = {}
        for row in self._source_rows("User", ids, ("Username", "Email")):
            name = (row.get("Username") or "").lower()
            hit = None
            if self.t.match.users == "username" and name:
                # a sandbox keeps production usernames with a suffix: ann@acme.com.dev
                hit = next((u["Id"] for u in users
                            if _same_user(name, (u.get("Username") or "").lower())), None)
            out[row["Id"]] = hit or by_email.get((row.get("Email") or "").lower())
        return out

    def _match_recordtype(self, ids: list[str]) -> dict[str, str | None]:
        types = self._target_rows("SELECT Id, SobjectType, DeveloperName FROM RecordType")
        by_key = {(r["SobjectType"], r["DeveloperName"]): r["Id"] for r in types}
        return {r["Id"]: by_key.get((r["SobjectType"], r["DeveloperName"]))
                for r in self._source_rows("RecordType", ids, ("SobjectType", "DeveloperName"))}

    def _match_pricebook2(self, ids: list[str]) -> dict[str, str | None]:
        books = self._target_rows("SELECT Id, Name, IsStandard FROM Pricebook2")
        standard = next((b["Id"] for b in books if b.get("IsStandard")), None)
        by_name = {b["Name"]: b["Id"] for b in books}
        rows = {r["Id"]: r for r in self._source_rows("Pricebook2", ids, ("Name", "IsStandard"))}
        if self.t.match.pricebook == "standard":
            return {i: standard for i in ids}
        return {i: standard if (rows.get(i) or {}).get("IsStandard") else
                by_name.get((rows.get(i) or {}).get("Name"), standard) for i in ids}

    # --- order and steps ------------------------------------------------------------------------

    def references(self, obj: str) -> list[Reference]:
        return [Reference(name, tuple(f.get("referenceTo") or ()), required=not f.get("nillable", True))
                for name, f in self.sendable(obj).items() if f.get("type") == "reference"]

    def order(self, objects: list[str]) -> tuple[list[str], set[tuple[str, str]]]:
        """Parents first; self lookups and one nillable lookup per cycle deferred (set by a second pass)."""
        present = set(objects)
        edges = {o: [(r.field, t, r.required) for r in self.references(o) for t in r.targets if t in present]
                 for o in objects}
        try:
            return load_order(edges)
        except RequiredCycle as exc:
            raise self.fail("root", str(exc)) from None

    def steps(self, order: list[str],
              deferred: set[tuple[str, str]]) -> tuple[list[ObjectStep], list[ObjectPlan]]:
        present = set(order)
        steps, views = [], []
        for obj in order:
            fields = self.sendable(obj)
            refs = tuple(Reference(r.field, r.targets, r.required, (obj, r.field) in deferred)
                         for r in self.references(obj))
            key = self.upsert_key(obj, fields)
            masks = self.masks(obj, fields)
            view = ObjectPlan(obj, 0, upsert_key=key, masked={k: m.describe() for k, m in masks.items()},
                              references=[_reference_line(r, present) for r in refs])
            for name, f in fields.items():
                kind = personal_kind(name, f.get("type", ""))
                if kind and (name not in masks or masks[name].kind == "keep"):
                    view.unmasked_personal[name] = kind
            skip = self.method in ("incremental", "upsert") and key is None
            query, params = self.rows_query(obj, fields, refs, skip)
            count = int(self.store.reads.read(f"SELECT count(*) AS n FROM ({query})", params)
                        .column(0)[0].as_py())
            skipped = self.selection.count(obj) - count
            view.records, view.skipped = count, skipped
            skipped_ids = self.skipped_ids(obj) if skipped else ()
            relinks, relink_params = self.pending_relinks(obj, refs) if skipped else ("", [])
            relink_count = int(self.store.reads.read(f"SELECT count(*) AS n FROM ({relinks})", relink_params)
                               .column(0)[0].as_py()) if relinks else 0
            steps.append(ObjectStep(obj, tuple(fields), refs,
                                    inserts=self.batches(query, params, masks, fields), insert_count=count,
                                    skipped=skipped_ids, upsert_key=key, update_count=relink_count,
                                    updates=self.batches(relinks, relink_params, {}, fields)
                                    if relink_count else None))
            views.append(view)
        return steps, views

    def upsert_key(self, obj: str, fields: dict[str, dict[str, Any]]) -> str | None:
        rules = self.t.objects.get(obj)
        if self.method != "upsert" or rules is None or rules.external_id is None:
            return None
        f = fields.get(rules.external_id)
        if f is None or not (f.get("externalId") or f.get("idLookup")):
            raise self.fail(f"objects.{obj}.external_id", f"{obj}.{rules.external_id} is not an external id "
                            "field the target can upsert by")
        return rules.external_id

    def masks(self, obj: str, fields: dict[str, dict[str, Any]]) -> dict[str, MaskRule]:
        rules = self.t.objects.get(obj)
        out = {}
        for name, raw in (rules.mask if rules else {}).items():
            key = f"objects.{obj}.mask.{name}"
            if name not in fields:
                raise self.fail(key, f"{obj} has no field {name!r} that a seed copies")
            try:
                out[name] = parse_rule(raw)
            except MaskingProblem as exc:
                raise self.fail(key, exc.message) from None
        if any(m.kind not in KEYLESS for m in out.values()):
            self.masker.require_secret()
        return out

    def rows_query(self, obj: str, fields: dict[str, dict[str, Any]], refs: tuple[Reference, ...],
                   skip: bool) -> tuple[str, list[Any]]:
        """The chosen records of `obj`, lookups to records not seeded and not matched emptied."""
        source, params = self.selection.source(obj)
        ref_names = {r.field for r in refs}
        cols = []
        for name in fields:
            col = f"t.{quote(name)}"
            if name in ref_names:
                col = (f"CASE WHEN {col} IN (SELECT id FROM {WORK}.ids) OR {col} IN (SELECT source_id FROM "
                       f"{WORK}.matched WHERE target_id IS NOT NULL) THEN {col} END")
            cols.append(f"{col} AS {quote(name)}")
        query = (f"SELECT t.\"Id\", {', '.join(cols)} FROM ({source}) t "
                 f"WHERE t.\"Id\" IN (SELECT id FROM {WORK}.ids WHERE sobject = ?)")
        params = [*params, obj]
        if skip:
            query += " AND t.\"Id\" NOT IN (SELECT source_id FROM main.id_map WHERE target = ?)"
            params.append(self.target.name)
        return query + " ORDER BY t.\"Id\"", params

    def pending_relinks(self, obj: str, refs: tuple[Reference, ...]) -> tuple[str, list[Any]]:
        """Records seeded earlier whose deferred lookups were never set (their seed was killed between
        the insert and the second pass): an update of just those lookups, or "" when none can be."""
        deferred = [r.field for r in refs if r.deferred]
        if not deferred or not self.store.db.has_table("seed_outcomes"):
            return "", []
        source, params = self.selection.source(obj)
        cols = ", ".join(f"CASE WHEN t.{quote(f)} IN (SELECT id FROM {WORK}.ids) THEN t.{quote(f)} END "
                         f"AS {quote(f)}" for f in deferred)

        def last(done: str) -> str:
            """The latest seed into this target that did `done` to the record successfully."""
            return ("(SELECT max(o.seed_id) FROM main.seed_outcomes o JOIN main.seeds s ON s.id = o.seed_id "
                    f"WHERE s.dest_service_id = ? AND o.status = 'ok' AND ({done}))")

        present = " OR ".join(f"t.{quote(f)} IN (SELECT id FROM {WORK}.ids)" for f in deferred)
        query = (f"SELECT m.target_id AS \"Id\", {cols}, ?::VARCHAR[] AS {quote(CHANGED)} FROM ({source}) t "
                 "JOIN main.id_map m ON m.source_id = t.\"Id\" AND m.target = ? "
                 f"WHERE t.\"Id\" IN (SELECT id FROM {WORK}.ids WHERE sobject = ?) AND ({present}) "
                 f"AND coalesce({last(RELINKED)}, -1) < {last(WRITTEN)}")
        return query, [deferred, *params, self.target.name, obj, self.target.name, self.target.name]

    def skipped_ids(self, obj: str) -> tuple[str, ...]:
        return tuple(r[0] for r in self.store.db.execute(
            f"SELECT id FROM {WORK}.ids WHERE sobject = ? AND id IN (SELECT source_id FROM main.id_map "
            "WHERE target = ?) ORDER BY id", [obj, self.target.name]).fetchall())

    def batches(self, query: str, params: list[Any], masks: dict[str, MaskRule],
                fields: dict[str, dict[str, Any]]) -> Any:
        store, masker = self.store, self.masker

        def read() -> Iterator[pa.RecordBatch]:
            for batch in store.reads.stream(query, params):
                if not masks:
                    yield batch
                    continue
                arrays, names = list(batch.columns), batch.schema.names
                for name, rule in masks.items():
                    at = names.index(name)
                    arrays[at] = masker.column(rule, arrays[at], fields[name].get("length") or None)
                yield pa.RecordBatch.from_arrays(arrays, names=names)

        return read


def prepare(template: Template, store: SnapshotStore, client: OrgClient, target: TargetOrg, *,
            method: str, run_id: int, masker: Masker, allow_production: bool,
            describes: dict[str, dict[str, Any]] | None = None) -> Prepared:
    """Check, choose, match, order and price a seed; nothing is written anywhere but the selection
    (an in-memory database). `describes` caches the target's describes across calls."""
    if method not in METHODS:
        raise InvalidInput(f"seeding method {method!r} is not one of {', '.join(METHODS)}")
    if method == "clean_and_insert" and (not target.sandbox or target.full_copy):
        kind = "a full copy sandbox" if target.sandbox else "a production org"
        raise SeedRefused(f"clean_and_insert deletes records first and is refused on {kind} "
                          f"({target.name}); use incremental or upsert")
    if not target.sandbox and not allow_production:
        raise SeedRefused(f"{target.name} is a production org: seeding into production is refused unless "
                          f"explicitly allowed, and then capped at {PRODUCTION_CAP:,} records")
    b = _Builder(template, store, client, target, method, run_id, masker,
                 {} if describes is None else describes)
    b.choose()
    objects = b.seeded()
    if not objects:
        raise InvalidInput(f"{template.path.name}: the template selects no records as of run {run_id}")
    matched = b.match(objects)
    order, deferred = b.order(objects)
    steps, views = b.steps(order, deferred)
    total = sum(v.records for v in views)
    if not target.sandbox and total > PRODUCTION_CAP:
        raise SeedRefused(f"{target.name} is a production org: a seed there is capped at {PRODUCTION_CAP:,} "
                          f"records and this one has {total:,}")
    load_plan = LoadPlan(target.name, tuple(steps), notes=tuple(b.notes))
    pricing = price(load_plan)
    deletes = list(reversed(order)) if method == "clean_and_insert" else []
    for view in views:
        view.api_calls = pricing.per_object.get(view.object, 0)
        if deletes:
            view.deletions = client.count(f"FROM {soql.name(view.object)}")
            view.api_calls += delete_calls(view.deletions)
    for view in views:
        for name, kind in view.unmasked_personal.items():
            b.notes.append(f"{view.object}.{name} looks personal ({kind}) and is copied unmasked")
    return Prepared(template, target, method, run_id, load_plan, views, deletes, matched,
                    sum(v.api_calls for v in views), b.notes, b.selection)
