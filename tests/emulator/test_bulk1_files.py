"""Bulk API 1.0 query results in several files, on an emulator of its own started with a small
file size (SFEMU_BULK1_RESULT_FILE_ROWS) so that a few hundred records need several files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import _free_port, _wait_ready
from simple_salesforce import Salesforce

FILE_ROWS = 15


@pytest.fixture(scope="module")
def small_files_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("bulk1-files")
    ready, stderr_path = root / "ready.json", root / "stderr.log"
    command = [sys.executable, "-m", "sfemu", "serve", "--port", str(_free_port()),
               "--state-dir", str(root / "state"), "--scale", "300", "--seed", "7", "--no-files",
               "--ready-file", str(ready)]
    env = {**os.environ, "SFEMU_BULK1_RESULT_FILE_ROWS": str(FILE_ROWS)}
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr,
                                   stdin=subprocess.DEVNULL, env=env)
    try:
        yield _wait_ready(process, ready, stderr_path)
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_big_query_results_come_in_several_files_read_by_simple_salesforce(small_files_emulator, monkeypatch):
    info = small_files_emulator
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", info["ca_path"])
    token = requests.post(f"{info['base_url'].rstrip('/')}/services/oauth2/token", verify=info["ca_path"],
                          data={"grant_type": "password", "client_id": info["client_id"],
                                "client_secret": info["client_secret"], "username": info["username"],
                                "password": info["password"]}, timeout=60).json()
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], version="62.0")
    live = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    assert live > 2 * FILE_ROWS
    http = requests.Session()
    http.verify = info["ca_path"]
    http.headers.update({"X-SFDC-Session": token["access_token"], "Content-Type": "application/json"})
    base = f"{token['instance_url']}/services/async/62.0/job"
    job = http.post(base, json={"operation": "query", "object": "Contact", "contentType": "JSON"}).json()
    batch = http.post(f"{base}/{job['id']}/batch", data="SELECT Id, LastName FROM Contact").json()
    ids = http.get(f"{base}/{job['id']}/batch/{batch['id']}/result").json()
    assert len(ids) == -(-live // FILE_ROWS)
    sizes = [len(http.get(f"{base}/{job['id']}/batch/{batch['id']}/result/{rid}").json()) for rid in ids]
    assert sizes[:-1] == [FILE_ROWS] * (len(ids) - 1) and sum(sizes) == live
    records = sf.bulk.Contact.query("SELECT Id FROM Contact", lazy_operation=False)
    assert len({r["Id"] for r in records}) == live
