"""dlt's DuckDB destination, writing into a run's staging file attached under its own catalog.

Why: an encrypted staging file can only be attached (with its key) to a connection, never opened as
a connection's primary database, and dlt's DuckDB client names tables by dataset alone, so each of
the sessions it clones from our connection would write into DuckDB's in-memory default instead.
Naming the catalog, as dlt's MotherDuck client does, sends every table dlt creates, loads and reads
into the attached file. A plain staging file keeps dlt's own destination unchanged.
"""

from __future__ import annotations

from typing import Any

import duckdb
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.impl.duckdb.duck import DuckDbClient
from dlt.destinations.impl.duckdb.factory import duckdb as duckdb_destination
from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient

__all__ = ["attached_destination"]


def attached_destination(con: duckdb.DuckDBPyConnection, catalog: str) -> duckdb_destination:
    """A dlt DuckDB destination loading through `con` into the database attached as `catalog`."""

    class CatalogSqlClient(DuckDbSqlClient):
        def catalog_name(self, quote: bool = True, casefold: bool = True) -> str | None:
            return self.capabilities.escape_identifier(catalog) if quote else catalog

    class CatalogClient(DuckDbClient):
        def __init__(self, schema: Any, config: Any, capabilities: Any) -> None:
            super().__init__(schema, config, capabilities)
            self.sql_client = CatalogSqlClient(self.sql_client.dataset_name,
                                               self.sql_client.staging_dataset_name,
                                               config.credentials, capabilities)

    class AttachedDuckDb(duckdb_destination):
        @property
        def client_class(self) -> type[DuckDbClient]:  # type: ignore[override]
            return CatalogClient

    return AttachedDuckDb(DuckDbCredentials(con))
