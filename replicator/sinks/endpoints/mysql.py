"""MySQL / MariaDB endpoints: `LOAD DATA LOCAL INFILE` from a temp file written batch by batch.

MySQL's DDL commits implicitly, so all of it runs first; then DELETE + LOAD DATA of all tables in one
transaction: readers see the old or the new export, never a mix, and re-exports are idempotent.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from replicator.config import EndpointSettings
from replicator.sinks.endpoints.loader import (
    CONNECT_TIMEOUT,
    EndpointError,
    EndpointReport,
    Loader,
    TableSource,
)

__all__ = ["MySqlLoader"]

WARNINGS_SHOWN = 5


class MySqlLoader(Loader):
    """LOAD DATA in CSV: NULL the unquoted word NULL (ESCAPED BY '' leaves no \\N), file bodies as hex
    put through UNHEX, datetimes as UTC wall-clock text (DATETIME(3) holds UTC), booleans 0/1."""

    kind = "mysql"
    null_string = "NULL"
    blob_prefix = ""
    datetime_suffix = ""
    bool_type = pa.int8()

    def connect(self, ep: EndpointSettings) -> Any:
        """A pymysql connection with LOCAL INFILE on; a failure is an EndpointError naming the endpoint."""
        import pymysql

        ssl: dict[str, Any] | None = None
        if ep.sslmode != "disable":
            ssl = {"ca": str(ep.ssl_ca)} if ep.ssl_ca else {}
        try:
            return pymysql.connect(
                host=ep.host, port=ep.port, user=ep.user, password=ep.password.reveal(), database=ep.database,
                charset="utf8mb4", local_infile=True, autocommit=False, connect_timeout=CONNECT_TIMEOUT,
                ssl=ssl, ssl_verify_cert=ep.sslmode in ("verify-ca", "verify-full") or None,
                ssl_verify_identity=ep.sslmode == "verify-full" or None)
        except pymysql.MySQLError as exc:
            raise self.error(ep, "cannot connect", exc) from None

    def load(self, ep: EndpointSettings, tables: list[TableSource], report: EndpointReport) -> None:
        """All DDL first (it commits implicitly), then DELETE + LOAD DATA of every table in one
        transaction."""
        import pymysql

        d = self.dialect
        con = self.connect(ep)
        try:
            with con.cursor() as cur, tempfile.TemporaryDirectory(prefix="replicator-load-") as tmp:
                cur.execute("SET SESSION time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES'")
                plans = []
                for source in tables:
                    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                "DATABASE() AND table_name = %s ORDER BY ordinal_position",
                                [d.short_name(source.name)])
                    rows = cur.fetchall()
                    ddl, load, names = self.plan_ddl(source, [r[0] for r in rows] if rows else None)
                    for statement in ddl:
                        cur.execute(statement)
                    plans.append((source, load, names))
                con.begin()
                for source, load, names in plans:
                    started = time.perf_counter()
                    table = d.quote(load.table)
                    cur.execute(f"DELETE FROM {table}")
                    path = Path(tmp) / "data.csv"
                    with open(path, "wb") as out:
                        for n, chunk in self.csv_chunks(source):
                            out.write(chunk)
                            load.rows += n
                    targets, sets = [], []
                    for i, (name, col) in enumerate(zip(names, source.columns, strict=True)):
                        if col.kind == "blob":  # hex in the file; UNHEX keeps any byte exact
                            targets.append(f"@b{i}")
                            sets.append(f"{d.quote(name)} = UNHEX(@b{i})")
                        else:
                            targets.append(d.quote(name))
                    cur.execute(
                        f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
                        "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                        f"LINES TERMINATED BY '\\n' ({', '.join(targets)})"
                        + (f" SET {', '.join(sets)}" if sets else ""), [str(path)])
                    _check_warnings(cur, source.name)
                    load.seconds = time.perf_counter() - started
                    report.tables.append(load)
                con.commit()
        except pymysql.MySQLError as exc:
            con.rollback()
            raise self.error(ep, "load failed", exc) from None
        finally:
            con.close()


def _check_warnings(cur: Any, obj: str) -> None:
    """LOAD DATA LOCAL turns bad values into warnings and goes on; an exact copy treats them as errors."""
    cur.execute("SHOW WARNINGS")
    warnings = cur.fetchall()
    if warnings:
        shown = "; ".join(f"{w[0]} {w[1]}: {w[2]}" for w in warnings[:WARNINGS_SHOWN])
        raise EndpointError(f"{obj}: the server changed or dropped values while loading ({len(warnings)} "
                            f"warnings): {shown}")
