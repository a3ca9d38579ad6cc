"""Composite batching: many GETs, or up to 1,000 record writes, in few API calls, within Salesforce's two
/composite limits.

Transport, not probing: the change probe, the integrity counts and later restore checks all ask
the org many small questions, and each /composite call carries 25 of them (at most 5 queries), so
an org of 50 objects costs a handful of calls instead of a hundred.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from replicator.salesforce.client import (
    COLLECTION_RECORDS,
    AuthenticationError,
    BudgetExceeded,
    OrgClient,
    OrgError,
)

__all__ = ["COMPOSITE_QUERIES", "COMPOSITE_RECORDS", "COMPOSITE_SUBREQUESTS", "Answer", "Batcher", "is_query",
           "pack", "write_collections"]

COMPOSITE_SUBREQUESTS = 25  # Salesforce: at most 25 subrequests per /composite
COMPOSITE_QUERIES = 5  # ... of which at most 5 query/queryAll (or sObject Collections)

Answer = tuple[int, Any, dict[str, str]]  # (HTTP status, parsed body, lower-cased headers)


def is_query(url: str) -> bool:
    """A query/queryAll subrequest: Salesforce allows at most 5 of them per /composite."""
    return url.startswith(("query/", "query?", "queryAll/", "queryAll?"))


def pack(queries: Sequence[bool]) -> list[list[int]]:
    """Positions of the subrequests per /composite, in as few composites as the two limits allow.

    `queries[i]` tells whether subrequest i is a query. Queries are dealt 5 per composite first and
    the other subrequests fill the rest, so 10 queries among 40 GETs still take 2 calls, not 3.
    """
    asks = [i for i, q in enumerate(queries) if q]
    rest = [i for i, q in enumerate(queries) if not q]
    calls = max(math.ceil(len(queries) / COMPOSITE_SUBREQUESTS), math.ceil(len(asks) / COMPOSITE_QUERIES))
    packs = [asks[k * COMPOSITE_QUERIES:(k + 1) * COMPOSITE_QUERIES] for k in range(calls)]
    taken = 0
    for chunk in packs:
        room = COMPOSITE_SUBREQUESTS - len(chunk)
        chunk.extend(rest[taken:taken + room])
        taken += room
    return [sorted(chunk) for chunk in packs]


class Batcher:
    """GETs sent as /composite subrequests (one API call per 25, at most 5 of them queries).

    Falls back to one plain call per GET when the org has no /composite (older emulators), so
    the run still works, only dearer.
    """

    def __init__(self, client: OrgClient) -> None:
        self.client = client
        self.composite: bool | None = None  # unknown until the first try

    def get_many(self, urls: Sequence[tuple[str, dict[str, str]]]) -> list[Answer]:
        """(status, body, lower-cased headers) for each (url relative to /services/data/vXX.X/, headers)."""
        out: list[Answer | None] = [None] * len(urls)
        for chunk in pack([is_query(url) for url, _ in urls]):
            for i, answer in zip(chunk, self._send([urls[i] for i in chunk]), strict=True):
                out[i] = answer
        return [a for a in out if a is not None]

    def _send(self, chunk: list[tuple[str, dict[str, str]]]) -> list[Answer]:
        if self.composite is not False:
            base = f"/services/data/v{self.client.settings.api_version}/"
            body = {"allOrNone": False, "compositeRequest": [
                {"method": "GET", "url": base + url, "referenceId": f"r{i}",
                 **({"httpHeaders": headers} if headers else {})} for i, (url, headers) in enumerate(chunk)]}
            try:
                resp = self.client.request("POST", "composite", json_body=body)
                self.composite = True
                return [(r["httpStatusCode"], r.get("body"), _lower(r.get("httpHeaders") or {}))
                        for r in resp.json()["compositeResponse"]]
            except OrgError as exc:
                if self.composite or exc.status != 404:
                    raise
                self.composite = False
        return [self._plain(url, headers) for url, headers in chunk]

    def _plain(self, url: str, headers: dict[str, str]) -> Answer:
        try:
            resp = self.client.request("GET", url, headers=headers, expect=(200, 304))
        except (AuthenticationError, BudgetExceeded):
            raise
        except OrgError as exc:
            return exc.status or 500, [{"errorCode": exc.code, "message": str(exc)}], {}
        return resp.status_code, resp.json() if resp.content else None, _lower(resp.headers)


def _lower(headers: Any) -> dict[str, str]:
    """Header names in lower case: servers and composite answers spell them differently."""
    return {k.lower(): v for k, v in headers.items()}


COMPOSITE_RECORDS = COMPOSITE_QUERIES * COLLECTION_RECORDS  # 5 sObject Collections of 200 in one call


def write_collections(client: OrgClient, method: str,
                      records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create (POST) or update (PATCH) up to COMPOSITE_RECORDS records in ONE API call: sObject
    Collections of 200 as /composite subrequests, allOrNone false at both levels, so one failing record
    never stops the others. One result per record, in order, as Collections give them; a subrequest
    refused as a whole fails each of its records with its error. 200 or fewer go as plain Collections.
    """
    if len(records) > COMPOSITE_RECORDS:
        raise ValueError(f"at most {COMPOSITE_RECORDS} records per composite call")
    if len(records) <= COLLECTION_RECORDS:
        plain = client.create_records if method == "POST" else client.update_records
        return plain(list(records))
    base = f"/services/data/v{client.settings.api_version}/composite/sobjects"
    chunks = [list(records[at:at + COLLECTION_RECORDS]) for at in range(0, len(records), COLLECTION_RECORDS)]
    body = {"allOrNone": False, "compositeRequest": [
        {"method": method, "url": base, "referenceId": f"c{k}",
         "body": {"allOrNone": False, "records": chunk}} for k, chunk in enumerate(chunks)]}
    answer = client.request("POST", "composite", json_body=body, idempotent=method != "POST").json()
    results: list[dict[str, Any]] = []
    for chunk, item in zip(chunks, answer["compositeResponse"], strict=True):
        if item["httpStatusCode"] < 400:
            results += item["body"]
            continue
        error = (item.get("body") or [{}])[0]
        failed = {"success": False, "errors": [{"statusCode": error.get("errorCode") or "CALL_FAILED",
                                                "message": error.get("message", "")}]}
        results += [dict(failed) for _ in chunk]
    return results
