"""What a load will cost, in API calls, before anything is written.

Why it reads the rows: the second pass that sets references deferred to break cycles sends only
the records whose deferred fields hold a value, so the exact count needs the data; it makes no API
call. The loader spends exactly this when every record succeeds (failures can only save calls:
a failed insert needs no relink and no document lookup).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import pyarrow.compute as pc

from replicator.salesforce.client import COLLECTION_RECORDS
from replicator.sinks.salesforce.model import LoadPlan, ObjectStep
from replicator.sinks.salesforce.transport import insert_calls, insert_transport, write_calls

# ContentVersion inserts cost one more query per chunk: the new ContentDocumentIds, which
# ContentDocumentLink rows must point at.
DOCUMENT_OBJECT = "ContentVersion"


@dataclass(frozen=True)
class Pricing:
    """Predicted API calls, in total and per object, and how each object travels."""

    calls: int
    per_object: dict[str, int] = field(default_factory=dict)
    transport: dict[str, str] = field(default_factory=dict)


def _calls(n: int) -> int:
    """Undeletes (SOAP) and the document lookups of new file versions: 200 a call."""
    return math.ceil(n / COLLECTION_RECORDS)


def relink_count(step: ObjectStep) -> int:
    """Inserted rows of `step` with a value in a deferred reference (set by the second pass)."""
    deferred = [r.field for r in step.references if r.deferred]
    if not deferred or step.inserts is None:
        return 0
    total = 0
    for batch in step.inserts():
        present = [batch.column(name).is_valid() for name in deferred if name in batch.schema.names]
        if present:
            mask = present[0]
            for more in present[1:]:
                mask = pc.or_(mask, more)
            total += int(pc.sum(mask.cast("int64")).as_py() or 0)
    return total


def price(plan: LoadPlan) -> Pricing:
    """The calls `load` will make for `plan`, per object."""
    per: Counter[str] = Counter()
    for step in plan.steps:
        inserts = insert_calls(step.sobject, step.insert_count, bool(step.upsert_key))
        calls = _calls(len(step.undelete)) + inserts + write_calls(step.update_count)
        if step.sobject == DOCUMENT_OBJECT:
            calls += _calls(step.insert_count)
        calls += write_calls(relink_count(step))
        per[step.sobject] += calls
    return Pricing(calls=sum(per.values()), per_object=dict(per),
                   transport={s.sobject: insert_transport(s.sobject, s.insert_count, bool(s.upsert_key))
                              for s in plan.steps})
