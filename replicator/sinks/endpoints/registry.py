"""Endpoint loaders by kind, and the one entry point the export job calls.

Each kind is also a SQL dialect of the dialect registry (its DDL, identifier limit and quoting), so a
table loaded into an endpoint has the same column names and types as the SQL script of that dialect.
"""

from __future__ import annotations

import time

from replicator.config import EndpointSettings
from replicator.sinks.endpoints.loader import EndpointReport, Loader, TableSource, target
from replicator.sinks.endpoints.mysql import MySqlLoader
from replicator.sinks.endpoints.postgresql import PostgresLoader

__all__ = ["LOADERS", "load"]

LOADERS: dict[str, Loader] = {loader.kind: loader for loader in (PostgresLoader(), MySqlLoader())}


def load(endpoint: EndpointSettings, run_id: int, tables: list[TableSource]) -> EndpointReport:
    """Load `tables` (the records as of `run_id`) into the endpoint with its kind's loader."""
    started = time.perf_counter()
    report = EndpointReport(endpoint=endpoint.name, kind=endpoint.kind, target=target(endpoint),
                            run_id=run_id)
    LOADERS[endpoint.kind].load(endpoint, tables, report)
    report.seconds = time.perf_counter() - started
    return report
