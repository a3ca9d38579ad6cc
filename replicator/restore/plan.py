"""Restore plans: which backed-up records go back, how, in what order, and at what price.

Rules (issue 10; each beats a limit of Keepit's, seed 002):
- a record in the target's recycle bin is undeleted, keeping its Id (a cascade-deleted child comes
  back with its parent's undelete and is not sent again); a record gone for good is inserted under a
  new Id and every reference to it in the restored set is remapped through the persisted id map;
- a record that still exists: same SystemModstamp, skipped; otherwise only the fields that differ
  from the backed-up version are sent;
- a required parent missing from the target is brought along (with `all`, every missing parent);
  an optional reference to a record the target lacks and the restore does not bring is emptied and
  listed, a required one is listed as a failure to expect;
- parents first, cycles broken by the loader's second pass (order.py); price from the loader's own
  `price`, so the plan's call count is what the load spends.
The plan holds the selection as Arrow tables: a restore is a hierarchy, not a snapshot (replicate
streams instead).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from replicator.restore.model import Describer, ObjectModel
from replicator.restore.order import load_order
from replicator.restore.owners import kind_of, other_org
from replicator.restore.selection import Selection, Snapshot
from replicator.restore.target import Found, find, same, stamp
from replicator.result import JobResult
from replicator.salesforce.catalog import FILTERED_OBJECTS
from replicator.salesforce.client import OrgClient
from replicator.sinks.salesforce.model import CHANGED, BodyReader, IdMap, LoadPlan, ObjectStep, Reference
from replicator.sinks.salesforce.price import DOCUMENT_OBJECT, price
from replicator.sinks.salesforce.values import BODY_FIELDS

BATCH_ROWS = 1000
_FILE_NAMES = {"ContentVersion": ("Title", "ContentSize"), "Attachment": ("Name", "BodyLength"),
               "Document": ("Name", "BodyLength")}


@dataclass
class RestorePlan(JobResult):
    """What a restore will do, shown before anything is written (and saved by `plan --out`)."""

    run_id: int
    as_of: datetime
    target: str
    objects: dict[str, dict[str, int]]
    order: list[str]
    cycles: list[dict[str, Any]]
    remapped: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    files: list[dict[str, Any]]
    notes: list[str]
    api_calls: int
    api_calls_by_object: dict[str, int]
    records: dict[str, list[str]] = field(default_factory=dict)
    with_parent: dict[str, list[str]] = field(default_factory=dict)
    automations: dict[str, Any] | None = None  # with --disable-automations: the switch plan
    automation_calls: int = 0  # what switching them off and back on costs, apart from the load
    _load: LoadPlan | None = field(default=None, repr=False)
    # Pairs for this load only (owners in another org, references emptied): see owners.Overlay.
    _substitutes: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def load_plan(self) -> LoadPlan:
        """The loader's plan (not part of the JSON)."""
        assert self._load is not None
        return self._load

    def text(self) -> str:
        """The plan for a person: per object, order, cycles, remaps, conflicts, files, price."""
        switching = f" (+{self.automation_calls} to switch automations off and on)" \
            if self.automations else ""
        lines = [f"restore into {self.target} from run {self.run_id} ({self.as_of.isoformat()}): "
                 f"{self.api_calls} API calls{switching}"]
        for obj in self.order:
            c = self.objects.get(obj, {})
            lines.append(f"  {obj}: {c.get('selected', 0)} records: insert {c.get('insert', 0)}, "
                         f"undelete {c.get('undelete', 0)}, update {c.get('update', 0)}, "
                         f"skip {c.get('skip', 0)}, with parent {c.get('with_parent', 0)} "
                         f"({self.api_calls_by_object.get(obj, 0)} calls)")
        lines += [f"  {c['text']}" for c in self.cycles]
        lines += [f"  remap {r['object']}.{r['field']}: {r['records']} references to new Ids"
                  for r in self.remapped]
        for c in self.conflicts[:50]:
            detail = f"fields {', '.join(c['fields'])}" if c["fields"] else "unchanged SystemModstamp"
            lines.append(f"  {c['action']} {c['object']} {c['id']}: {detail}")
        if len(self.conflicts) > 50:
            lines.append(f"  ... {len(self.conflicts) - 50} more conflicts (see --json)")
        lines += [f"  file {f['object']} {f['id']} {f['name']!r} ({f['size']} bytes)" for f in self.files]
        if self.automations:
            off = [f"{t}:{n}" for t, names in self.automations["switch_off"].items() for n in names]
            lines.append(f"  automations switched off for the load: {', '.join(off) or 'none'}")
            lines += [f"  automation kept on: {k['type']}:{k['name']} ({k['reason']})"
                      for k in self.automations["kept_on"]]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _batches(table: pa.Table) -> Any:
    return lambda: iter(table.to_batches(max_chunksize=BATCH_ROWS))


def _mask(table: pa.Table, ids: set[str]) -> pa.Array:
    return pc.is_in(table.column("Id"), value_set=pa.array(sorted(ids), pa.string()))


class Planner:
    """Builds one restore plan from a selection (selection.py) and the target org's state."""

    def __init__(self, snapshot: Snapshot, client: OrgClient, id_map: IdMap, target: str,
                 selection: Selection, bodies: BodyReader | None) -> None:
        self.snapshot, self.client, self.id_map, self.target = snapshot, client, id_map, target
        self.selection, self.bodies = selection, bodies
        self.describer = Describer(client)
        self.notes: list[str] = []
        self.mapped: dict[str, str] = {}
        self._found: dict[str, dict[str, Found]] = defaultdict(dict)
        self._asked: dict[str, set[str]] = defaultdict(set)
        self.made: set[str] = set()  # documents the restored versions bring (MADE_BY in order.py)
        # In another org than the run's: owners by username (owners.py), for this load only.
        self.substitutes: dict[str, str | None] = {}

    # --- the target org ---------------------------------------------------------------------

    def model(self, obj: str) -> ObjectModel | None:
        """The target's model of an object it can create records of."""
        model = self.describer.model(obj)
        return model if model is not None and model.createable else None

    def tid(self, source_id: str) -> str:
        """The Id a backed-up record has (or had) in the target."""
        return self.mapped.get(source_id, source_id)

    def _map(self, ids: set[str]) -> None:
        unknown = sorted(i for i in ids if i not in self.mapped)
        found = self.id_map.lookup(unknown) if unknown else {}
        self.mapped.update({i: found.get(i, i) for i in unknown})

    def compared(self, obj: str, model: ObjectModel) -> list[str]:
        """Fields of `obj` compared with (and written to) records the target still has."""
        have = self.snapshot.columns(obj) if obj in self.snapshot.objects else {}
        body = BODY_FIELDS.get(obj)
        return [f for f in model.updateable if f in have and f != body]

    def found(self, obj: str, source_ids: set[str],
              by: tuple[str, set[str]] | None = None) -> dict[str, Found]:
        """The target's records of these backed-up Ids (keyed by source Id), read once each."""
        model = self.describer.model(obj)
        if model is None:
            return {}
        self._map(source_ids)
        targets = {self.tid(s) for s in source_ids}
        new = targets - self._asked[obj]
        if new:
            self._asked[obj] |= new
            filt = (by[0], {self.tid(v) for v in by[1]}) if by else None
            self._found[obj].update(find(self.client, model, new, self.compared(obj, model), filt))
        return {s: self._found[obj][self.tid(s)] for s in source_ids if self.tid(s) in self._found[obj]}

    # --- parents ----------------------------------------------------------------------------

    def _referenced(self, obj: str, table: pa.Table, only_required: bool) -> dict[str, set[str]]:
        """Values of `obj`'s references (required ones unless not `only_required`) outside the
        selection, grouped by the object their Id belongs to."""
        model = self.model(obj)
        out: dict[str, set[str]] = defaultdict(set)
        if model is None:
            return out
        for name, (_, required) in model.references.items():
            if name not in table.column_names or (only_required and not required):
                continue
            for value in set(table.column(name).to_pylist()) - {None}:
                owner = self.describer.object_of(value)
                if owner is not None and not self.selection.contains(value) and value not in self.made \
                        and value not in self.substitutes:
                    out[owner].add(value)
        return out

    def pull_parents(self, every: bool) -> None:
        """Bring along parents the target lacks: required ones always, every one with `every`."""
        queue = list(self.selection.tables.items())
        while queue:
            obj, table = queue.pop()
            for parent, ids in self._referenced(obj, table, not every).items():
                if parent not in self.snapshot.objects or self.model(parent) is None:
                    continue
                live = {s for s, f in self.found(parent, ids).items() if not f.deleted}
                missing = ids - live
                if missing:
                    new = self.selection.add(parent, self.snapshot.rows(parent, "Id", missing))
                    if new.num_rows:
                        self.notes.append(f"{new.num_rows} {parent} record(s) brought along: "
                                          f"{obj} references them and the target lacks them")
                        queue.append((parent, new))

    # --- the plan ---------------------------------------------------------------------------

    def map_other_org(self) -> None:
        """Into another org: owners matched by username or email, record types by developer name."""
        values: dict[str, set[str]] = defaultdict(set)
        for obj, table in self.selection.tables.items():
            model = self.model(obj)
            for name, (targets, _) in (model.references.items() if model else ()):
                kind = kind_of(targets)
                if kind and name in table.column_names:
                    values[kind].update(v for v in table.column(name).to_pylist() if v)
        self.substitutes, notes = other_org(self.snapshot, self.client, values)
        self.notes += notes

    def plan(self, run_id: int) -> RestorePlan:
        """Classify every selected record, order the objects and price the load."""
        models = {}
        for obj in sorted(self.selection.tables):
            model = self.model(obj)
            if model is None:
                self.notes.append(f"{obj} is not restored: the target org cannot create its records")
            else:
                models[obj] = model
        self._map({i for ids in self.selection.ids.values() for i in ids})
        states = {obj: self._states(obj) for obj in models}
        versions = self.selection.tables.get(DOCUMENT_OBJECT)
        if DOCUMENT_OBJECT in states and "ContentDocumentId" in versions.schema.names:
            new = versions.filter(_mask(versions, set(states[DOCUMENT_OBJECT]["insert"])))
            self.made = {d for d in new.column("ContentDocumentId").to_pylist() if d}
        undeleted = {i for s in states.values() for i in s["undelete"]}
        inserted = {i for s in states.values() for i in s["insert"]}
        order = load_order(models, set(models))
        steps, counts, conflicts, remapped, files = [], {}, [], [], []
        with_parent: dict[str, list[str]] = {}
        for obj in order.objects:
            model, state, table = models[obj], states[obj], self.selection.tables[obj]
            back = self._with_parent(obj, model, state["undelete"], undeleted)
            with_parent[obj] = sorted(back)
            undelete = [i for i in state["undelete"] if i not in back]
            insert_fields = [f for f in model.insertable if f in table.column_names]
            inserts = self._inserts(obj, model, table, state["insert"], insert_fields)
            updates = self._updates(obj, table, state["update"])
            refs = tuple(Reference(name, targets, required, name in order.deferred.get(obj, frozenset()))
                         for name, (targets, required) in sorted(model.references.items())
                         if name in table.column_names)
            steps.append(ObjectStep(obj, tuple(insert_fields), refs, tuple(self.tid(i) for i in undelete),
                                    _batches(inserts) if inserts.num_rows else None, inserts.num_rows,
                                    _batches(updates) if updates.num_rows else None, updates.num_rows,
                                    tuple(self.tid(i) for i in state["skip"])))
            counts[obj] = {"selected": table.num_rows, "insert": inserts.num_rows, "undelete": len(undelete),
                           "update": updates.num_rows, "skip": len(state["skip"]), "with_parent": len(back)}
            conflicts += state["conflicts"]
            remapped += self._remapped(obj, model, table, inserted)
            files += self._files(obj, inserts)
        load = LoadPlan(self.target, tuple(steps), self.bodies, tuple(self.notes))
        pricing = price(load)
        return RestorePlan(
            run_id=run_id, as_of=self.snapshot.as_of, target=self.target, objects=counts,
            order=list(order.objects),
            cycles=[{"objects": list(c.objects), "deferred": list(c.deferred),
                     "unbreakable": list(c.unbreakable), "text": c.text()} for c in order.cycles],
            remapped=remapped, conflicts=conflicts, files=files, notes=list(self.notes),
            api_calls=pricing.calls, api_calls_by_object=pricing.per_object,
            records={obj: sorted(ids) for obj, ids in self.selection.ids.items()},
            with_parent={k: v for k, v in with_parent.items() if v}, _load=load,
            _substitutes=self.substitutes)

    def _states(self, obj: str) -> dict[str, Any]:
        """Source Ids of `obj` per fate: insert, undelete, update (with changed fields), skip."""
        table = self.selection.tables[obj]
        model = self.describer.require(obj)
        ids = set(table.column("Id").to_pylist())
        by = None
        if obj in FILTERED_OBJECTS:
            column = FILTERED_OBJECTS[obj][0]
            if column in table.column_names:
                by = (column, {v for v in table.column(column).to_pylist() if v})
        found = self.found(obj, ids, by) if by or obj not in FILTERED_OBJECTS else {}
        compared = self.compared(obj, model)
        refs = set(model.references)
        self._map({v for name in compared if name in refs for v in table.column(name).to_pylist() if v})
        out: dict[str, Any] = {"insert": [], "undelete": [], "update": {}, "skip": [], "conflicts": []}
        cols = ["Id", *compared, *(["SystemModstamp"] if "SystemModstamp" in table.column_names else [])]
        for row in table.select(cols).to_pylist():
            source, current = row["Id"], found.get(row["Id"])
            if current is None:
                out["insert"].append(source)
                continue
            if current.deleted:
                out["undelete"].append(source)
            if stamp(row.get("SystemModstamp")) == stamp(current.modstamp) and current.modstamp:
                if not current.deleted:
                    out["skip"].append(source)
                    out["conflicts"].append({"object": obj, "id": source, "action": "skip", "fields": []})
                continue
            changed = [f for f in compared if not same(self.tid(row[f]) if f in refs and row[f] else row[f],
                                                       current.values.get(f))]
            if changed:
                out["update"][source] = changed
                out["conflicts"].append({"object": obj, "id": source, "action": "update", "fields": changed})
            elif not current.deleted:
                out["skip"].append(source)
                out["conflicts"].append({"object": obj, "id": source, "action": "skip", "fields": []})
        return out

    def _with_parent(self, obj: str, model: ObjectModel, undelete: list[str],
                     undeleted: set[str]) -> set[str]:
        """Records in the bin that a cascade put there with a parent undeleted too: they come back
        with it. Salesforce stamps a cascade's children with their parent's deletion time; a child
        deleted on its own (at another moment) is undeleted on its own."""
        cascade: dict[str, tuple[str, ...]] = {}
        for name, (targets, _) in model.references.items():
            for parent in targets:
                parent_model = self.describer.model(parent) if parent in self.selection.tables else None
                if parent_model and (obj, name, True) in parent_model.children:
                    cascade[name] = targets
        if not cascade or not undelete:
            return set()
        table = self.selection.tables[obj].filter(_mask(self.selection.tables[obj], set(undelete)))
        back = set()
        for row in table.select(["Id", *sorted(c for c in cascade if c in table.column_names)]).to_pylist():
            mine = self._found[obj].get(self.tid(row["Id"]))
            for name, targets in cascade.items():
                parent = row.get(name)
                if parent not in undeleted or mine is None:
                    continue
                theirs = next((self._found[t][self.tid(parent)] for t in targets
                               if self.tid(parent) in self._found.get(t, {})), None)
                if theirs is not None and stamp(theirs.modstamp) == stamp(mine.modstamp):
                    back.add(row["Id"])
        return back

    def _inserts(self, obj: str, model: ObjectModel, table: pa.Table, ids: list[str],
                 fields: list[str]) -> pa.Table:
        """Rows to insert; optional references to records the target lacks (and the restore does not
        bring) emptied and noted, required ones noted as failures to expect."""
        rows = table.filter(_mask(table, set(ids))).select(["Id", *fields])
        if not rows.num_rows:
            return rows
        for owner, values in self._referenced(obj, rows, only_required=False).items():
            if self.describer.model(owner) is None or owner in FILTERED_OBJECTS:
                continue
            live = {s for s, f in self.found(owner, values).items() if not f.deleted}
            absent = values - live
            if not absent:
                continue
            for name, (targets, required) in model.references.items():
                if name not in rows.column_names or owner not in targets:
                    continue
                column = rows.column(name)
                hit = pc.fill_null(pc.is_in(column, value_set=pa.array(sorted(absent), pa.string())), False)
                hits = int(pc.sum(hit.cast("int64")).as_py() or 0)
                if not hits:
                    continue
                if required:
                    self.notes.append(f"{hits} {obj} record(s) need {name} records the target lacks and the "
                                      "store does not hold: they will fail")
                else:
                    self.notes.append(f"{hits} {obj}.{name} reference(s) emptied: the {owner} record(s) are "
                                      "neither in the target nor in the restore")
                    rows = rows.set_column(rows.schema.get_field_index(name), name,
                                           pc.if_else(hit, pa.scalar(None, column.type), column))
        return rows

    def _updates(self, obj: str, table: pa.Table, changed: dict[str, list[str]]) -> pa.Table:
        """Rows of records the target has: their target Id, the backed-up values, the changed fields."""
        if not changed:
            return pa.table({"Id": pa.array([], pa.string())})
        fields = sorted({f for names in changed.values() for f in names})
        rows = table.filter(_mask(table, set(changed))).select(["Id", *fields])
        sources = rows.column("Id").to_pylist()
        rows = rows.set_column(0, "Id", pa.array([self.tid(s) for s in sources], pa.string()))
        return rows.append_column(CHANGED, pa.array([changed[s] for s in sources], pa.list_(pa.string())))

    def _remapped(self, obj: str, model: ObjectModel, table: pa.Table,
                  inserted: set[str]) -> list[dict[str, Any]]:
        """Per reference field: how many values point at records that get (or got) a new Id."""
        out = []
        for name in sorted(model.references):
            if name not in table.column_names:
                continue
            values = table.column(name).to_pylist()
            count = sum(1 for v in values if v and (v in inserted or self.tid(v) != v))
            if count:
                out.append({"object": obj, "field": name, "records": count})
        return out

    def _files(self, obj: str, inserts: pa.Table) -> list[dict[str, Any]]:
        """The file records inserted with their bodies (name and size as backed up)."""
        if obj not in _FILE_NAMES or not inserts.num_rows:
            return []
        name_col, size_col = _FILE_NAMES[obj]
        table = self.selection.tables[obj]
        full = table.filter(_mask(table, set(inserts.column("Id").to_pylist())))
        names = full.column(name_col).to_pylist() if name_col in full.column_names else [None] * full.num_rows
        sizes = full.column(size_col).to_pylist() if size_col in full.column_names else [None] * full.num_rows
        return [{"object": obj, "id": i, "name": n, "size": s}
                for i, n, s in zip(full.column("Id").to_pylist(), names, sizes, strict=True)]

