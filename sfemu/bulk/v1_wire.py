"""Bulk API 1.0 wire formats (sf_api.md §5.2, §5.7): JobInfo/BatchInfo/errors in XML or JSON.

Bulk 1.0 answers job-level calls in the format of the request's Content-Type and batch-level
calls in the format of the job's contentType; errors are `exceptionCode`/`exceptionMessage`
documents, never the REST error array. Values go out with Salesforce's exact content types
(no charset), because clients compare them with `==`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

from starlette.responses import Response

from sfemu.errors import SalesforceError

NS = "http://www.force.com/2009/06/asyncapi/dataload"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_TYPE, JSON_TYPE, CSV_TYPE = "application/xml", "application/json", "text/csv"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'


class AsyncApiError(SalesforceError):
    """A Bulk 1.0 failure: rendered as `<error><exceptionCode>…` in the caller's format."""


def async_error(code: str, message: str, status: int = 400) -> AsyncApiError:
    return AsyncApiError(status, code, message)


def wants_json(content_type: str | None) -> bool:
    """True for a JSON request/job (`application/json`, any parameters); XML otherwise."""
    return (content_type or "").split(";")[0].strip().lower() == JSON_TYPE


def xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def xml_fields(info: dict[str, Any]) -> str:
    """`<key>value</key>` for each non-null entry, nested dicts and lists of dicts included."""
    parts: list[str] = []
    for key, value in info.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            inner = xml_fields(item) if isinstance(item, dict) else xml_text(item)
            parts.append(f"<{key}>{inner}</{key}>")
    return "".join(parts)


def xml_document(root: str, body: str) -> bytes:
    return f'{XML_DECL}<{root} xmlns="{NS}">{body}</{root}>'.encode()


def render(root: str, info: Any, as_json: bool, status: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    """A JobInfo/BatchInfo/list document in JSON or in the async namespace's XML."""
    if as_json:
        body = json.dumps(info, ensure_ascii=False).encode()
        return Response(body, status_code=status, headers=headers, media_type=JSON_TYPE)
    return Response(xml_document(root, xml_fields(info)), status_code=status, headers=headers,
                    media_type=XML_TYPE)


def body_response(body: bytes, media: str) -> Response:
    """A batch request/result body with the exact Content-Type (Starlette would add a charset to text/csv)."""
    return Response(body, headers={"Content-Type": media})


def error_response(exc: SalesforceError, as_json: bool) -> Response:
    """Any error of a Bulk 1.0 call in Salesforce's AsyncApiException shape."""
    code = exc.error_code if isinstance(exc, AsyncApiError) else "InvalidBatch"
    message = exc.message if isinstance(exc, AsyncApiError) else f"{exc.error_code} : {exc.message}"
    return render("error", {"exceptionCode": code, "exceptionMessage": message}, as_json, exc.status)


def parse_xml(body: bytes) -> ET.Element:
    """A request document, or ClientInputError (DTDs and entities are refused, as Salesforce does)."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise async_error("ClientInputError", "DOCTYPE is not allowed")
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise async_error("ClientInputError", f"Failed to parse XML: {exc}") from None


def local(tag: str) -> str:
    """An element name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def parse_info(body: bytes, as_json: bool) -> dict[str, Any]:
    """A JobInfo request body (create or state change) as a flat dict."""
    if as_json:
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise async_error("ClientInputError", f"Failed to parse JSON: {exc}") from None
        if not isinstance(data, dict):
            raise async_error("ClientInputError", "The request body must be a JobInfo object")
        return data
    root = parse_xml(body)
    if local(root.tag) != "jobInfo":
        raise async_error("ClientInputError", f"Unexpected element {{{NS}}}{local(root.tag)}; "
                          "expected {http://www.force.com/2009/06/asyncapi/dataload}jobInfo")
    return {local(child.tag): (child.text or "").strip() for child in root}
