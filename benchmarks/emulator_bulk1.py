"""Benchmark: a Bulk API 1.0 query of every Account with PK chunking, end to end over HTTPS.

The org is generated and served exactly as in emulator_bulk.py (Bulk 2.0), whose helpers this
reuses. The client calls Bulk 1.0 the way tap-salesforce does: create a CSV query job with a JSON
body and `Sforce-Enable-PKChunking: chunkSize=100000`, add the SOQL batch, list the batches, then
for every chunk batch read its result list and download each result file; the timer starts at job
creation and stops when the last byte is received. The records counted are the CSV rows received.

Prints one line:
    emulator_bulk1 records=N chunks=C seconds=S records_per_s=R peak_rss_mb=M
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow.csv as pacsv
import requests
from emulator_bulk import FIELDS, generate, peak_rss_mb, start_server

CHUNK = 100_000


def bulk1_query(info: dict, soql: str, chunk: int) -> tuple[int, int]:
    """Run the PK-chunked query; returns (records received, chunk batches)."""
    http = requests.Session()
    http.trust_env = False  # else REQUESTS_CA_BUNDLE in the environment overrides `verify`
    http.verify = info["ca_path"]
    token = http.post(f"{info['base_url']}/services/oauth2/token", timeout=60, data={
        "grant_type": "password", "client_id": info["client_id"], "client_secret": info["client_secret"],
        "username": info["username"], "password": info["password"]}).json()
    http.headers.update({"X-SFDC-Session": token["access_token"], "Content-Type": "application/json"})
    base = f"{token['instance_url']}/services/async/62.0/job"
    job = http.post(base, json={"operation": "query", "object": "Account", "contentType": "CSV"},
                    headers={"Sforce-Enable-PKChunking": f"chunkSize={chunk}"}).json()
    http.post(f"{base}/{job['id']}/batch", data=soql).raise_for_status()
    listed = ET.fromstring(http.get(f"{base}/{job['id']}/batch").content)  # CSV jobs answer in XML
    batches = [{c.tag.rsplit("}", 1)[-1]: c.text for c in b} for b in listed]
    total = 0
    chunks = [b for b in batches if b["state"] != "Not Processed"]
    for batch in chunks:
        if batch["state"] != "Completed":
            raise SystemExit(f"batch {batch['id']} is {batch['state']}: {batch.get('stateMessage')}")
        url = f"{base}/{job['id']}/batch/{batch['id']}/result"
        for result in ET.fromstring(http.get(url).content):
            body = http.get(f"{url}/{result.text}").content
            total += pacsv.read_csv(io.BytesIO(body)).num_rows
    http.post(f"{base}/{job['id']}", json={"state": "Closed"}).raise_for_status()
    return total, len(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=CHUNK)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="emulator-bulk1-") as tmp:
        state_dir = Path(tmp) / "state"
        expected = generate(state_dir, args.records)
        process, info = start_server(state_dir, args.records)
        try:
            started = time.perf_counter()
            received, chunks = bulk1_query(info, f"SELECT {FIELDS} FROM Account", args.chunk_size)
            seconds = time.perf_counter() - started
            rss = peak_rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
    if received != expected:
        raise SystemExit(f"expected {expected} records, received {received}")
    print(f"emulator_bulk1 records={received} chunks={chunks} seconds={seconds:.2f} "
          f"records_per_s={received / seconds:.0f} peak_rss_mb={rss:.0f}")


if __name__ == "__main__":
    main()
