"""Response header names as Salesforce spells them, read off the wire (issue 14).

Clients we did not write index headers by Salesforce's spelling in plain dicts (the Airbyte CDK
reads `Content-Type` and mis-parses a Bulk 2.0 answer sent as `content-type`), so the names are
checked on the raw response, not through a case-insensitive mapping.
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

from sfemu.headers import canonical


def raw(emulator: Any, method: str, path: str, body: str | None = None,
        token: str | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request over a plain http.client connection: status, header names as sent, body."""
    url = urlsplit(emulator.base_url)
    context = ssl.create_default_context(cafile=emulator.ca_path)
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def names(headers: list[tuple[str, str]]) -> set[str]:
    return {name for name, _ in headers}


def test_header_names_are_spelled_as_salesforce_spells_them(emulator: Any) -> None:
    token = emulator.token()["access_token"]
    status, headers, _ = raw(emulator, "GET", "/services/data/v62.0/sobjects/Account/describe",
                             token=token)
    assert status == 200
    assert {"Content-Type", "Sforce-Limit-Info", "Date", "Content-Length"} <= names(headers), headers
    assert not any(name != canonical(name) for name in names(headers)), headers
    assert all(name[0].isupper() for name in names(headers))

    job = json.dumps({"operation": "query", "query": "SELECT Id FROM Account LIMIT 3"})
    status, headers, body = raw(emulator, "POST", "/services/data/v62.0/jobs/query", job, token)
    assert status == 200, body
    job_id = json.loads(body)["id"]
    status, headers, _ = raw(emulator, "GET", f"/services/data/v62.0/jobs/query/{job_id}/results",
                             token=token)
    assert status == 200
    assert {"Content-Type", "Sforce-Locator", "Sforce-NumberOfRecords", "Sforce-Limit-Info"} <= \
        names(headers), headers

    status, headers, _ = raw(emulator, "GET", "/services/data/v62.0/sobjects/Account/describe")
    assert status == 401 and "Content-Type" in names(headers) and "content-type" not in names(headers)


def test_canonical_spelling_rules() -> None:
    assert canonical("content-type") == "Content-Type"
    assert canonical("sforce-numberofrecords") == "Sforce-NumberOfRecords"
    assert canonical("SFORCE-LOCATOR") == "Sforce-Locator"
    assert canonical("etag") == "ETag" and canonical("www-authenticate") == "WWW-Authenticate"
