"""Bulk API 1.0 DML batches (sf_api.md §5.4-5.5): insert/update/upsert/delete/hardDelete.

A batch's records (CSV as sent; JSON arrays and XML `<sObjects>` turned into the same CSV, null as
`#N/A`, relationship objects as `Rel.Field` columns) go through the Bulk 2.0 ingest processor, so
both APIs validate, resolve parents and write through the same DML engine. Per-row outcomes are
kept in input order for the `/result` document (CSV `"Id","Success","Created","Error"`, JSON or XML).
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from sfemu.bulk.ingest import FAILED, SUCCEEDED, IngestJob, process
from sfemu.bulk.v1_model import Batch, Job
from sfemu.bulk.v1_wire import XSI, async_error, local, parse_xml, xml_document, xml_fields
from sfemu.dml.results import NULL_MARKER
from sfemu.errors import SalesforceError

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg

MAX_RECORDS = 10_000


def _cell(value: Any) -> str:
    if value is None:
        return NULL_MARKER
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A JSON record as CSV cells; `{"Account": {"Ext__c": "x"}}` becomes `Account.Ext__c`."""
    cells: dict[str, str] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict):
            cells.update(_flatten(value, f"{prefix}{key}."))
        else:
            cells[prefix + key] = _cell(value)
    return cells


def _xml_records(data: bytes) -> list[dict[str, Any]]:
    root = parse_xml(data)
    nil = f"{{{XSI}}}nil"

    def value(element: Any) -> Any:
        children = list(element)
        if children:
            return {local(c.tag): value(c) for c in children if local(c.tag) != "type"}
        return None if element.get(nil) == "true" else (element.text or "")

    return [value(record) for record in root if local(record.tag) == "sObject"]


def to_csv(job: Job, data: bytes) -> bytes:
    """The batch's records as the CSV the ingest processor reads (CSV batches pass unchanged)."""
    if job.content_type == "CSV":
        return data
    if job.content_type == "JSON":
        try:
            records = json.loads(data)
        except ValueError as exc:
            raise async_error("InvalidBatch", f"Failed to parse JSON: {exc}") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise async_error("InvalidBatch", "The batch must be a JSON array of records")
    else:
        records = _xml_records(data)
    if len(records) > MAX_RECORDS:
        raise async_error("InvalidBatch", f"Records in a batch exceed the limit of {MAX_RECORDS}")
    rows = [_flatten(r) for r in records]
    header = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    writer.writerows([row.get(k, "") for k in header] for row in rows)
    return out.getvalue().encode()


def run(org: EmulatedOrg, job: Job, batch: Batch) -> None:
    """Process one DML batch through the ingest processor, keeping each row's outcome."""
    try:
        csv_data = to_csv(job, batch.data)
    except SalesforceError as exc:  # an unreadable batch fails, as on Salesforce
        batch.finish("Failed", org.clock.now(), f"InvalidBatch : {exc.message}")
        return
    header_end = csv_data.find(b"\n")
    line_ending = "CRLF" if header_end > 0 and csv_data[header_end - 1:header_end] == b"\r" else "LF"
    ingest = IngestJob(id=batch.id, operation=job.operation, object=job.object, created_by=job.created_by,
                       created=batch.created, api_version=job.api_version, state="UploadComplete",
                       line_ending=line_ending, external_id_field=job.external_id_field, contents=[csv_data])
    process(org, ingest)
    batch.processing_ms = ingest.processing_ms
    outcome = ingest.outcome
    if ingest.state == "Failed" or outcome is None:
        batch.finish("Failed", org.clock.now(), ingest.error_message)
        return
    batch.rows = [(outcome.ids[i], int(state) == SUCCEEDED, bool(outcome.created[i]), outcome.errors[i])
                  for i, state in enumerate(outcome.state)]
    batch.processed = len(batch.rows)
    batch.failed = int((outcome.state == FAILED).sum())
    batch.finish("Completed", org.clock.now())


def _errors(cell: str | None) -> list[dict[str, Any]]:
    """`CODE:message:fields --` (one or more, space-joined) as Salesforce's error objects."""
    if not cell:
        return []
    code, _, rest = cell.partition(":")
    message, _, fields = rest.removesuffix("--").rstrip().rpartition(":")
    return [{"fields": [f for f in fields.strip().split(",") if f], "message": message,
             "statusCode": code}]


def results(job: Job, batch: Batch) -> tuple[bytes, str]:
    """The batch's `/result` document in the job's content type, one entry per input row."""
    if job.content_type == "CSV":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(["Id", "Success", "Created", "Error"])
        writer.writerows([rid or "", _cell(ok), _cell(created), error or ""]
                         for rid, ok, created, error in batch.rows)
        return out.getvalue().encode(), "text/csv"
    items = [{"id": rid, "success": ok, "created": created, "errors": _errors(error)}
             for rid, ok, created, error in batch.rows]
    if job.content_type == "JSON":
        return json.dumps(items).encode(), "application/json"
    body = xml_fields({"result": [{k: v for k, v in item.items() if v != []} for item in items]})
    return xml_document("results", body), "application/xml"
