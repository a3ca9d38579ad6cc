"""PostgreSQL endpoints: `COPY ... FROM STDIN (FORMAT csv)` inside one transaction with the DDL.

PostgreSQL's DDL is transactional, so creating or evolving tables, TRUNCATE and COPY of all tables
commit together: readers see the old or the new export, never a mix, and re-exports are idempotent.
"""

from __future__ import annotations

import time
from typing import Any

from replicator.config import EndpointSettings
from replicator.sinks.endpoints.loader import CONNECT_TIMEOUT, EndpointReport, Loader, TableSource

__all__ = ["PostgresLoader"]


class PostgresLoader(Loader):
    """COPY in CSV: NULL an unquoted empty field, bytea as `\\x..`, datetimes with a Z, U+0000 as U+FFFD
    (PostgreSQL text cannot hold it; the SQL scripts do the same)."""

    kind = "postgresql"
    null_string = ""
    blob_prefix = "\\x"
    datetime_suffix = "Z"
    text_nul = "\ufffd"

    def connect(self, ep: EndpointSettings) -> Any:
        """A psycopg connection; a failure is an EndpointError naming the endpoint."""
        import psycopg

        params: dict[str, Any] = {"host": ep.host, "port": ep.port, "dbname": ep.database, "user": ep.user,
                                  "password": ep.password.reveal(), "sslmode": ep.sslmode,
                                  "connect_timeout": CONNECT_TIMEOUT, "application_name": "replicator"}
        if ep.ssl_ca is not None:
            params["sslrootcert"] = str(ep.ssl_ca)
        try:
            return psycopg.connect(**params)
        except psycopg.Error as exc:
            raise self.error(ep, "cannot connect", exc) from None

    def load(self, ep: EndpointSettings, tables: list[TableSource], report: EndpointReport) -> None:
        """Create the schema if needed, then per table: DDL, TRUNCATE, COPY; one transaction."""
        import psycopg

        d = self.dialect
        con = self.connect(ep)
        try:
            with con.transaction():
                schema = d.quote(ep.schema or "public")
                exists = con.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [ep.schema]).fetchone()
                if not exists:
                    con.execute(f"CREATE SCHEMA {schema}")
                # Table names are unqualified in the shared DDL; the search path puts them in the schema.
                con.execute(f"SET LOCAL search_path TO {schema}")
                for source in tables:
                    started = time.perf_counter()
                    rows = con.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                        "AND table_name = %s ORDER BY ordinal_position",
                        [ep.schema, d.short_name(source.name)]).fetchall()
                    ddl, load, names = self.plan_ddl(source, [r[0] for r in rows] if rows else None)
                    for statement in ddl:
                        con.execute(statement)
                    table = d.quote(load.table)
                    con.execute(f"TRUNCATE {table}")
                    columns = ", ".join(d.quote(n) for n in names)
                    with con.cursor().copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                        for n, chunk in self.csv_chunks(source):
                            copy.write(chunk)
                            load.rows += n
                    load.seconds = time.perf_counter() - started
                    report.tables.append(load)
        except psycopg.Error as exc:
            raise self.error(ep, "load failed", exc) from None
        finally:
            con.close()
