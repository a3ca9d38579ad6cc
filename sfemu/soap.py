"""The partner SOAP API (`/services/Soap/u/{version}`): login, undelete, getUpdated and getDeleted.

Salesforce serves every partner call at one URL and tells them apart by the Body's first element;
`login` needs no session, every other call carries its session in `SessionHeader/sessionId` and
counts against the org's API limit like a REST call. `undelete` is here because REST has no way to
bring a record back from the recycle bin with its Id: restores (ours and other tools') rely on it.
Rules followed (SOAP API Developer Guide, undelete() and UndeleteResult): at most 200 ids per call,
one result per id in request order, cascade-deleted children come back with their parent, and an
id not in the recycle bin fails alone with UNDELETE_FAILED or ENTITY_IS_DELETED-style errors as the
DML engine reports them. getUpdated/getDeleted answer exactly what REST's /updated and /deleted
answer (one implementation), in the partner WSDL's GetUpdatedResult/GetDeletedResult shapes: tools
built on the SOAP replication calls (Data Loader-era sync jobs) see the same changes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from xml.sax.saxutils import escape

from starlette.responses import Response

from sfemu.auth import SOAP_TYPE, soap_fault, soap_login
from sfemu.dml.engine import dml_engine
from sfemu.dml.results import RowResult
from sfemu.errors import SalesforceError
from sfemu.rest.records import deleted, updated
from sfemu.routing import Ctx, route

_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
MAX_IDS = 200


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _operation(body: bytes) -> tuple[str, ET.Element, ET.Element | None]:
    """(call name, the call's element, the SOAP Header) of an envelope."""
    root = ET.fromstring(body)
    header = next((e for e in root if _local(e.tag) == "Header"), None)
    soap_body = next(e for e in root if _local(e.tag) == "Body")
    call = next(iter(soap_body))
    return _local(call.tag), call, header


def _session_id(header: ET.Element | None) -> str | None:
    if header is None:
        return None
    for element in header.iter():
        if _local(element.tag) == "sessionId":
            return (element.text or "").strip() or None
    return None


def _result(result: RowResult) -> str:
    errors = "".join(
        f"<errors>{''.join(f'<fields>{escape(f)}</fields>' for f in e.fields)}"
        f"<message>{escape(e.message)}</message><statusCode>{e.status_code}</statusCode></errors>"
        for e in result.errors)
    ident = f"<id>{result.id}</id>" if result.id else '<id xsi:nil="true"/>'
    return f"<result>{errors}{ident}<success>{'true' if result.success else 'false'}</success></result>"


def _envelope(call: str, content: str) -> Response:
    text = ('<?xml version="1.0" encoding="UTF-8"?>'
            f'<soapenv:Envelope xmlns:soapenv="{_ENV}" xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
            f"<{call}Response>{content}</{call}Response></soapenv:Body></soapenv:Envelope>")
    return Response(text.encode(), media_type=SOAP_TYPE)


def _answer(call: str, results: list[RowResult]) -> Response:
    return _envelope(call, "".join(_result(r) for r in results))


def _undelete(ctx: Ctx, call: ET.Element) -> Response:
    ids = [(e.text or "").strip() for e in call if _local(e.tag) == "ids"]
    if not ids:
        return soap_fault("INVALID_ID_FIELD", "No ids specified for undelete", "InvalidIdFault")
    if len(ids) > MAX_IDS:
        return soap_fault("EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {MAX_IDS} "
                          "records into this call", "InvalidIdFault")
    user = ctx.session.user_id if ctx.session else None
    return _answer("undelete", dml_engine(ctx.org).undelete(ids, user_id=user))


def _arg(call: ET.Element, name: str) -> str | None:
    element = next((e for e in call if _local(e.tag) == name), None)
    return None if element is None else (element.text or "").strip()


def _stamp(moment: datetime) -> str:
    """xsd:dateTime as the partner API writes it (UTC, milliseconds, Z)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _replication_fault(exc: SalesforceError) -> Response:
    kind = "InvalidSObjectFault" if exc.error_code == "INVALID_TYPE" else "UnexpectedErrorFault"
    return soap_fault(exc.error_code, exc.message, kind)


def _get_updated(ctx: Ctx, call: ET.Element) -> Response:
    """getUpdated(sObjectType, startDate, endDate): the same answer as REST's /updated."""
    try:
        changed, covered = updated(ctx.org, _arg(call, "sObjectType") or "", _arg(call, "startDate"),
                                   _arg(call, "endDate"))
    except SalesforceError as exc:
        return _replication_fault(exc)
    body = "".join(f"<ids>{rid}</ids>" for rid in changed)
    return _envelope("getUpdated", f"<result>{body}<latestDateCovered>{_stamp(covered)}"
                                   "</latestDateCovered></result>")


def _get_deleted(ctx: Ctx, call: ET.Element) -> Response:
    """getDeleted(sObjectType, startDate, endDate): the same answer as REST's /deleted."""
    try:
        rows, earliest, covered = deleted(ctx.org, _arg(call, "sObjectType") or "",
                                          _arg(call, "startDate"), _arg(call, "endDate"))
    except SalesforceError as exc:
        return _replication_fault(exc)
    body = "".join(f"<deletedRecords><deletedDate>{_stamp(when)}</deletedDate><id>{rid}</id>"
                   "</deletedRecords>" for rid, when in rows)
    return _envelope("getDeleted", f"<result>{body}<earliestDateAvailable>{_stamp(earliest)}"
                                   f"</earliestDateAvailable><latestDateCovered>{_stamp(covered)}"
                                   "</latestDateCovered></result>")


CALLS = {"undelete": _undelete, "getUpdated": _get_updated, "getDeleted": _get_deleted}


def partner(ctx: Ctx) -> Response:
    """One partner API call: login without a session, the others with one (and counted)."""
    try:
        name, call, header = _operation(ctx.body)
    except (ET.ParseError, StopIteration):
        ctx.counted = False
        return soap_fault("INVALID_LOGIN" if b"login" in ctx.body else "MALFORMED_QUERY",
                          "The request could not be parsed", "UnexpectedErrorFault")
    if name == "login":
        ctx.counted = False
        return soap_login(ctx)
    token = _session_id(header)
    ctx.session = ctx.org.sessions.touch(token) if token else None
    if ctx.session is None:
        ctx.counted = False
        return soap_fault("INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session",
                          "UnexpectedErrorFault")
    if ctx.org.limits.exhausted():
        return soap_fault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", "UnexpectedErrorFault")
    handler = CALLS.get(name)
    if handler is None:
        ctx.counted = False
        return soap_fault("INVALID_OPERATION", f"No operation available for request {name}",
                          "UnexpectedErrorFault")
    return handler(ctx, call)


ROUTES = [
    route("POST", r"/services/Soap/u/(?P<soap_version>\d{2,3}\.\d)(?:/[0-9A-Za-z]{15,18})?", partner,
          kind="soap", auth=False, counted=True),
]
