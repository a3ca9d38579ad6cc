"""Fields Salesforce computes when a file body is saved (sizes, checksums, versions, documents),
on REST, sObject Collections and composite writes through simple-salesforce."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce


@pytest.fixture(scope="module")
def sf(emulator: Any) -> Iterator[Salesforce]:
    yield emulator.sf()
    emulator.control("POST", "reset", {})  # the org as it was started, for the other modules


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_new_content_version_gets_its_sizes_and_its_document(sf: Salesforce) -> None:
    body = b"first version of the spec"
    cv = sf.ContentVersion.create({"PathOnClient": "Spec.TXT", "VersionData": b64(body)})["id"]
    got = sf.ContentVersion.get(cv)
    assert got["ContentSize"] == len(body) and got["Checksum"] == hashlib.md5(body).hexdigest()
    assert (got["VersionNumber"], got["IsLatest"], got["Title"]) == ("1", True, "Spec")
    assert (got["FileExtension"], got["FileType"]) == ("txt", "TXT")
    doc = sf.ContentDocument.get(got["ContentDocumentId"])
    assert doc["LatestPublishedVersionId"] == cv and doc["ContentSize"] == len(body)
    assert (doc["Title"], doc["FileExtension"]) == ("Spec", "txt")


def test_a_new_version_of_a_document_becomes_the_latest(sf: Salesforce) -> None:
    first = sf.ContentVersion.create({"Title": "Plan", "PathOnClient": "plan.csv",
                                      "VersionData": b64(b"a,b")})
    old = sf.ContentVersion.get(first["id"])
    doc_id = old["ContentDocumentId"]
    body = b"a,b\n1,2\n"
    second = sf.ContentVersion.create({"Title": "Plan", "PathOnClient": "plan.csv", "VersionData": b64(body),
                                       "ContentDocumentId": doc_id})["id"]
    new = sf.ContentVersion.get(second)
    assert (new["VersionNumber"], new["IsLatest"], new["ContentDocumentId"]) == ("2", True, doc_id)
    retired = sf.ContentVersion.get(first["id"])
    assert retired["IsLatest"] is False and retired["SystemModstamp"] > old["SystemModstamp"]
    doc = sf.ContentDocument.get(doc_id)
    assert doc["LatestPublishedVersionId"] == second and doc["ContentSize"] == len(body)
    versions = sf.query_all(f"SELECT Id FROM ContentVersion WHERE ContentDocumentId = '{doc_id}'")
    assert versions["totalSize"] == 2


def test_collections_and_composite_inserts_set_sizes(sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "Files Parent"})["id"]
    bodies = [b"x" * 10, b"yz" * 7]
    answer = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": [
        {"attributes": {"type": "ContentVersion"}, "PathOnClient": f"c{i}.bin", "VersionData": b64(b)}
        for i, b in enumerate(bodies)]})
    for row, body in zip(answer, bodies, strict=True):
        got = sf.ContentVersion.get(row["id"])
        assert got["ContentSize"] == len(body) and got["Checksum"] == hashlib.md5(body).hexdigest()
        assert sf.ContentDocument.get(got["ContentDocumentId"])["LatestPublishedVersionId"] == row["id"]
    graph = sf.restful("composite", method="POST", json={"compositeRequest": [{
        "method": "POST", "url": f"/services/data/v{sf.sf_version}/sobjects/Attachment", "referenceId": "att",
        "body": {"ParentId": account, "Name": "composite.txt", "Body": b64(b"composite!")}}]})
    assert graph["compositeResponse"][0]["httpStatusCode"] == 201
    (att,) = sf.query_all(f"SELECT BodyLength FROM Attachment WHERE ParentId = '{account}'")["records"]
    assert att["BodyLength"] == 10


def test_a_replaced_body_of_the_same_length_moves_system_modstamp(sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "Attachment Parent"})["id"]
    att = sf.Attachment.create({"ParentId": account, "Name": "a.txt", "Body": b64(b"hello")})["id"]
    before = sf.Attachment.get(att)
    assert before["BodyLength"] == 5
    assert sf.Attachment.update(att, {"Body": b64(b"HELLO")}) == 204
    after = sf.Attachment.get(att)
    assert after["BodyLength"] == 5 and after["SystemModstamp"] > before["SystemModstamp"]
    assert sf.Attachment.get_base64(att, "Body") == b"HELLO"
    user = sf.query("SELECT Id FROM User LIMIT 1")["records"][0]["Id"]
    doc = sf.Document.create({"FolderId": user, "Name": "Logo", "DeveloperName": "Logo_Fid",
                              "Body": b64(b"<svg/>")})["id"]
    assert sf.Document.get(doc)["BodyLength"] == 6
    assert sf.Document.update(doc, {"Body": b64(b"<svg></svg>")}) == 204
    assert sf.Document.get(doc)["BodyLength"] == 11
