"""The loader: a LoadPlan executed against one org, record by record outcomes kept.

Order of work (each rule from Salesforce's own behaviour or Keepit's restore rules):
1. per step in plan order (parents first): undelete what the recycle bin holds (Ids kept), report
   the skipped records, insert the rest with references remapped and deferred references left
   empty, remembering every new Id in the id map at once so the next step's children find it;
2. the second pass ("relink"): deferred references set on the records just inserted, now that
   every record of a cycle exists;
3. updates of records that still exist, sending only the fields that differ.
Writes travel as sObject Collections packed five to a /composite call (1,000 records a call), inserts
of a big object by Bulk API 2.0 ingest (transport.py decides; price.py counts the same).
A failing record never stops the others; a failing call fails only its chunk. An expired budget or
refused credentials stop the load (they would fail every later call too).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from replicator.progress import Progress, Silent
from replicator.salesforce import soql
from replicator.salesforce.client import (
    COLLECTION_RECORDS,
    AuthenticationError,
    BudgetExceeded,
    OrgClient,
    OrgError,
)
from replicator.salesforce.composite import COMPOSITE_RECORDS, write_collections
from replicator.sinks.salesforce import bulk, values
from replicator.sinks.salesforce.chunks import chunks
from replicator.sinks.salesforce.model import CHANGED, Action, IdMap, LoadPlan, ObjectStep, Outcome
from replicator.sinks.salesforce.price import DOCUMENT_OBJECT
from replicator.sinks.salesforce.remap import remap
from replicator.sinks.salesforce.transport import insert_chunk, insert_transport
from replicator.store.blobs import BlobError

__all__ = ["LoadResult", "load"]

Record = Callable[[Sequence[Outcome]], None]


@dataclass(frozen=True)
class LoadResult:
    """Per object: inserted, updated, undeleted, relinked, skipped, failed; and the calls spent."""

    counts: dict[str, dict[str, int]]
    api_calls: int


def load(client: OrgClient, plan: LoadPlan, id_map: IdMap, *, progress: Progress | None = None,
         record: Record) -> LoadResult:
    """Execute `plan` against the org behind `client`; every outcome goes to `record`, chunk by chunk."""
    return _Loader(client, plan, id_map, progress or Silent(), record).run()


class _Loader:
    def __init__(self, client: OrgClient, plan: LoadPlan, id_map: IdMap, progress: Progress,
                 record: Record) -> None:
        self.client, self.plan, self.id_map, self.progress = client, plan, id_map, progress
        self._record = record
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        # sobject -> [(source Id, target Id, {deferred field: source value})]: the second pass's work.
        self.relinks: dict[str, list[tuple[str, str, dict[str, str]]]] = defaultdict(list)

    def run(self) -> LoadResult:
        start = self.client.ledger.calls
        total = sum(len(s.undelete) + s.insert_count + s.update_count + len(s.skipped)
                    for s in self.plan.steps)
        self.progress.phase("load", total)
        for step in self.plan.steps:
            self._undelete(step)
            self._skip(step)
            self._insert(step)
        for step in self.plan.steps:
            self._relink(step)
        for step in self.plan.steps:
            self._update(step)
        return LoadResult(counts={k: dict(v) for k, v in self.counts.items()},
                          api_calls=self.client.ledger.calls - start)

    # --- outcomes -------------------------------------------------------------------------

    def _report(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            key = "failed" if o.status == "failed" else "skipped" if o.status == "skipped" else {
                "insert": "inserted", "update": "updated", "undelete": "undeleted", "relink": "relinked",
                "delete": "deleted",
            }[o.action]
            self.counts[o.sobject][key] += 1
        if outcomes:
            self._record(outcomes)

    def _results(self, step: ObjectStep, action: Action, source_ids: list[str],
                 target_ids: list[str | None], call: Callable[[], list[dict[str, Any]]]) -> list[Outcome]:
        """Outcomes of one call, one per record; a call that failed as a whole fails each of them."""
        try:
            answers = call()
        except (AuthenticationError, BudgetExceeded):
            raise
        except OrgError as exc:
            answers = [{"success": False, "errors": [{"statusCode": exc.code or "CALL_FAILED",
                                                      "message": str(exc)}]}] * len(source_ids)
        outcomes = []
        for source, target, answer in zip(source_ids, target_ids, answers, strict=True):
            if answer.get("success"):
                # an upsert that found its key updated the existing record instead of inserting
                done: Action = "update" if action == "insert" and answer.get("created") is False else action
                outcomes.append(Outcome(step.sobject, source, answer.get("id") or target, done, "ok"))
            else:
                error = (answer.get("errors") or [{}])[0]
                outcomes.append(Outcome(step.sobject, source, target, action, "failed",
                                        error.get("statusCode"), error.get("message")))
        self.progress.advance(step.sobject, len(outcomes))
        return outcomes

    # --- steps ----------------------------------------------------------------------------

    def _kept(self, step: ObjectStep, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The step's batches without the rows the plan refuses (GDPR-forgotten records), counted."""
        keep = self.plan.keep
        for batch in batches:
            kept = keep(step.sobject, batch) if keep else batch
            if kept.num_rows < batch.num_rows:
                self.counts[step.sobject]["refused"] += batch.num_rows - kept.num_rows
                self.progress.advance(step.sobject, batch.num_rows - kept.num_rows)
            yield kept

    def _undelete(self, step: ObjectStep) -> None:
        ids = list(step.undelete)
        for at in range(0, len(ids), COLLECTION_RECORDS):
            part = ids[at:at + COLLECTION_RECORDS]
            self._report(self._results(step, "undelete", part, list(part),
                                       lambda part=part: self.client.undelete(part)))

    def _skip(self, step: ObjectStep) -> None:
        self._report([Outcome(step.sobject, i, i, "skip", "skipped") for i in step.skipped])

    def _insert(self, step: ObjectStep) -> None:
        if step.inserts is None:
            return
        deferred = {r.field for r in step.references if r.deferred}
        send = tuple(f for f in step.fields if f not in deferred)
        size = insert_chunk(step.sobject, step.insert_count, bool(step.upsert_key))
        for chunk in chunks(self._kept(step, step.inserts()), size):
            originals = chunk.to_pylist()
            rows = remap(chunk, step.references, self.id_map).to_pylist()
            if step.sobject == DOCUMENT_OBJECT:
                for original, row in zip(originals, rows, strict=True):
                    if row.get("ContentDocumentId") == original.get("ContentDocumentId"):
                        row["ContentDocumentId"] = None  # its document is not in the target: a new one
            outcomes = self._create(step, originals, rows, send)
            made = [(o, orig) for o, orig in zip(outcomes, originals, strict=True) if o.status == "ok"]
            self.id_map.add(step.sobject, pa.table({"source_id": [o.source_id for o, _ in made],
                                                    "target_id": [o.target_id for o, _ in made]},
                                                   schema=_PAIRS))
            if step.sobject == DOCUMENT_OBJECT and made:
                self._map_documents(made)
            for o, orig in made:
                later = {f: orig[f] for f in deferred if orig.get(f)}
                if later:
                    self.relinks[step.sobject].append((o.source_id, o.target_id, later))
            self._report(outcomes)

    def _create(self, step: ObjectStep, originals: list[dict[str, Any]], rows: list[dict[str, Any]],
                send: tuple[str, ...]) -> list[Outcome]:
        """Insert one chunk; a row whose body cannot be read fails alone, before the call."""
        outcomes: list[Outcome | None] = [None] * len(rows)
        records, positions = [], []
        for at, row in enumerate(rows):
            try:
                records.append(values.record(step.sobject, row, send, self.plan.bodies, keep_nulls=False))
                positions.append(at)
            except (KeyError, OSError, ValueError, BlobError) as exc:
                outcomes[at] = Outcome(step.sobject, originals[at]["Id"], None, "insert", "failed",
                                       "BODY_UNAVAILABLE", f"file body not available: {exc}")
        sent = self._results(step, "insert", [originals[i]["Id"] for i in positions], [None] * len(positions),
                             lambda: self._send(step, records, send)) if records else []
        for at, outcome in zip(positions, sent, strict=True):
            outcomes[at] = outcome
        return [o for o in outcomes if o is not None]

    def _send(self, step: ObjectStep, records: list[dict[str, Any]],
              send: tuple[str, ...]) -> list[dict[str, Any]]:
        """One chunk of inserts (or upserts by the step's external id) by the transport its object's
        size calls for (price.py counts the same)."""
        if step.upsert_key:
            return self.client.upsert_records(step.sobject, step.upsert_key, records)
        if insert_transport(step.sobject, step.insert_count, bool(step.upsert_key)) == "bulk2":
            return bulk.insert_records(self.client, step.sobject, send, records)
        return write_collections(self.client, "POST", records)

    def _map_documents(self, made: list[tuple[Outcome, dict[str, Any]]]) -> None:
        """The ContentDocuments the new versions created, mapped from the source documents."""
        ids = [o.target_id for o, _ in made if o.target_id]
        query = f"SELECT Id, ContentDocumentId FROM ContentVersion WHERE Id IN {soql.id_list(ids)}"
        new_doc = {r["Id"]: r["ContentDocumentId"] for page in self.client.query_pages(query) for r in page}
        pairs = [(orig["ContentDocumentId"], new_doc[o.target_id]) for o, orig in made
                 if orig.get("ContentDocumentId") and o.target_id in new_doc]
        self.id_map.add("ContentDocument", pa.table({"source_id": [s for s, _ in pairs],
                                                     "target_id": [t for _, t in pairs]}, schema=_PAIRS))

    def _relink(self, step: ObjectStep) -> None:
        pending = self.relinks.pop(step.sobject, [])
        for at in range(0, len(pending), COMPOSITE_RECORDS):
            part = pending[at:at + COMPOSITE_RECORDS]
            known = self.id_map.lookup(sorted({v for _, _, refs in part for v in refs.values()}))
            records = [{"attributes": {"type": step.sobject}, "Id": target,
                        **{f: known.get(v, v) for f, v in refs.items()}} for _, target, refs in part]
            self._report(self._results(step, "relink", [s for s, _, _ in part], [t for _, t, _ in part],
                                       lambda records=records: self._patch(records)))

    def _patch(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Updates, 1,000 a call (Collections packed in /composite)."""
        return write_collections(self.client, "PATCH", records)

    def _update(self, step: ObjectStep) -> None:
        """Existing records: only each row's CHANGED fields are sent (nulls included: they clear)."""
        if step.updates is None:
            return
        for chunk in chunks(self._kept(step, step.updates()), COMPOSITE_RECORDS):
            rows = remap(chunk, step.references, self.id_map).to_pylist()
            records = []
            for row in rows:
                rec = values.record(step.sobject, row, tuple(row.get(CHANGED) or ()), self.plan.bodies,
                                    keep_nulls=True)
                rec["Id"] = row["Id"]
                records.append(rec)
            ids = [r["Id"] for r in rows]
            self._report(self._results(step, "update", ids, list(ids),
                                       lambda records=records: self._patch(records)))


_PAIRS = pa.schema([("source_id", pa.string()), ("target_id", pa.string())])
