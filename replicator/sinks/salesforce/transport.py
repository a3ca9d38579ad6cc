"""Which transport carries an object's records, and what it costs: one place for the loader and the price.

Why one place: the plan's predicted call count must equal what the loader spends, so both ask here.
Writes go as sObject Collections packed five to a /composite call (1,000 records a call, each record
failing alone); inserts of an object big enough that Bulk API 2.0 ingest jobs (10,000 records, about 6
calls each) cost fewer calls go by Bulk; objects with file bodies go 200 a call as plain Collections
(their payloads are large, and the new versions' documents are looked up per chunk).
"""

from __future__ import annotations

import math

from replicator.salesforce.client import COLLECTION_RECORDS
from replicator.salesforce.composite import COMPOSITE_RECORDS
from replicator.sinks.salesforce.bulk import BULK_JOB_CALLS, BULK_JOB_RECORDS
from replicator.sinks.salesforce.values import BODY_FIELDS

__all__ = ["insert_calls", "insert_chunk", "insert_transport", "write_calls"]


def insert_transport(sobject: str, records: int, upsert: bool = False) -> str:
    """"collections" (file objects, upserts by an external id), "bulk2" or "composite" for inserting
    `records` of `sobject`."""
    if sobject in BODY_FIELDS or upsert:
        return "collections"
    jobs = math.ceil(records / BULK_JOB_RECORDS)
    return "bulk2" if jobs * BULK_JOB_CALLS < math.ceil(records / COMPOSITE_RECORDS) else "composite"


def insert_chunk(sobject: str, records: int, upsert: bool = False) -> int:
    """How many records one insert call (or ingest job) carries for this object."""
    return {"collections": COLLECTION_RECORDS, "bulk2": BULK_JOB_RECORDS,
            "composite": COMPOSITE_RECORDS}[insert_transport(sobject, records, upsert)]


def insert_calls(sobject: str, records: int, upsert: bool = False) -> int:
    """The API calls inserting `records` records of `sobject` costs."""
    per_call = BULK_JOB_CALLS if insert_transport(sobject, records, upsert) == "bulk2" else 1
    return math.ceil(records / insert_chunk(sobject, records, upsert)) * per_call


def write_calls(records: int) -> int:
    """The API calls updating `records` records costs (updates and the second pass's relinks)."""
    return math.ceil(records / COMPOSITE_RECORDS)
