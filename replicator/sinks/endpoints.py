"""Load a backup (the store as of one run) into an external PostgreSQL or MySQL/MariaDB database.

`replicator export --endpoint NAME --run last` lands here. Per object the target table is created
from our type model (sql_types: the same types, identifier quoting and shortening as the SQL scripts)
or evolved (new fields become new columns via ALTER TABLE ADD COLUMN; columns are never dropped or
retyped, so users' views keep working), then its rows are replaced by the object's records as of the
run.

Why CSV bulk loads: the records stream from the store as Arrow batches, pyarrow's C++ CSV writer turns
each batch into CSV, and the server's own bulk path takes it: PostgreSQL `COPY ... FROM STDIN (FORMAT
csv)`, MySQL `LOAD DATA LOCAL INFILE` (from a temp file, written batch by batch). No row-by-row INSERTs
and no Python per record. CSV keeps NULL apart from '' (strings are always quoted; NULL is an unquoted
empty field for PostgreSQL, the unquoted word NULL for MySQL) and needs no escaping beyond doubled
quotes (MySQL: ESCAPED BY '').

Why re-exports are idempotent: the rows of every table are replaced inside ONE transaction per
export (PostgreSQL: DDL, TRUNCATE and COPY together; MySQL, whose DDL commits implicitly: the DDL
first, then DELETE + LOAD DATA of all tables in one transaction). Readers see the old or the new
export, never a mix; exporting the same run twice leaves identical tables.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from replicator.config import Config, EndpointSettings
from replicator.sinks.sql_types import (
    DIALECTS,
    column_names,
    column_types,
    create_table,
    quote,
    short_name,
)
from replicator.sources.snapshot import attach_blobs, object_types, read_as_of, resolve_run
from replicator.store.blobs import BlobStore
from replicator.store.repository import Repository
from replicator.store.snapshot import SnapshotStore
from replicator.store.types import ColumnType

CONNECT_TIMEOUT = 15
# Largest slice of a batch converted to CSV at once: keeps the CSV buffer around 10-50 MB.
CSV_ROWS = 100_000
MYSQL_WARNINGS_SHOWN = 5


class EndpointError(Exception):
    """An endpoint export failed; the message names the endpoint and never holds its password."""


@dataclass
class TableLoad:
    """What one object's export did to its table."""

    object: str
    table: str
    rows: int = 0
    created: bool = False
    added_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class EndpointReport:
    """The result of one endpoint export (also what the exports ledger records)."""

    endpoint: str
    kind: str
    target: str  # kind://user@host:port/database[/schema], no password
    run_id: int
    tables: list[TableLoad] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


@dataclass
class _Object:
    """One object to load: its store name, its type model and how to open its as-of-run batches."""

    name: str
    columns: list[ColumnType]
    open: Callable[[], Iterable[pa.RecordBatch]]


# -- Arrow batch -> CSV bytes ---------------------------------------------------------------------------


def _hex(arr: pa.Array, prefix: str) -> pa.Array:
    """Blob bytes as hex text (PostgreSQL bytea input `\\x..`; MySQL UNHEX()). Blobs are few and small
    per row set, so a Python pass is acceptable here; everything else stays vectorised."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.binary())
    return pa.array([None if b is None else prefix + b.hex() for b in arr.to_pylist()], pa.string())


def _csv_column(arr: pa.Array, col: ColumnType, dialect: str) -> pa.Array:
    """A column as the target's CSV loader reads it exactly (see the module docstring)."""
    if col.kind == "text":
        arr = arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())
        # PostgreSQL text cannot hold U+0000; the SQL scripts write U+FFFD, so the loads do too.
        return pc.replace_substring(arr, "\x00", "\ufffd") if dialect == "postgresql" else arr
    if col.kind == "double":
        return pc.if_else(pc.is_finite(arr), arr, pa.scalar(None, arr.type))
    if col.kind == "blob":
        return _hex(arr, "\\x" if dialect == "postgresql" else "")
    if col.kind == "datetime":
        # UTC wall-clock text: MySQL's DATETIME(3) holds exactly that; PostgreSQL gets a "Z". (Arrow's
        # CSV writer formats zoned timestamps ~40x slower than this cast: it was half the export time.)
        wall = pc.cast(pc.cast(arr, pa.timestamp("ms", tz="UTC"), safe=False), pa.timestamp("ms"))
        text = pc.cast(wall, pa.string())
        return pc.binary_join_element_wise(text, "Z", "") if dialect == "postgresql" else text
    if col.kind == "bool" and dialect == "mysql":
        return pc.cast(arr, pa.int8())
    return arr


def _csv_bytes(batch: pa.RecordBatch, cols: Sequence[ColumnType], dialect: str) -> bytes:
    arrays = [_csv_column(batch.column(i), c, dialect) for i, c in enumerate(cols)]
    table = pa.RecordBatch.from_arrays(arrays, names=[f"c{i}" for i in range(len(cols))])
    options = pacsv.WriteOptions(include_header=False, null_string="NULL" if dialect == "mysql" else "",
                                 quoting_style="needed", batch_size=8192)
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, options)
    return sink.getvalue()


def _csv_chunks(obj: _Object, dialect: str) -> Iterator[tuple[int, bytes]]:
    """(rows, CSV bytes) per slice of the object's batches, columns in type-model order."""
    names = [c.name for c in obj.columns]
    for batch in obj.open():
        batch = batch.select(names)
        for start in range(0, batch.num_rows, CSV_ROWS):
            part = batch.slice(start, CSV_ROWS)
            yield part.num_rows, _csv_bytes(part, obj.columns, dialect)


# -- table shape --------------------------------------------------------------------------------------------


def _plan_ddl(obj: _Object, dialect: str,
              existing: list[str] | None) -> tuple[list[str], TableLoad, list[str]]:
    """DDL statements that make the table fit the object, the load record, and the column names.

    `existing`: the table's current column names, None if it does not exist. Names are shortened over
    the object's whole column list, so a field keeps its column name across exports.
    """
    sg = DIALECTS[dialect]
    table_name = short_name(obj.name, dialect)
    names = column_names([c.name for c in obj.columns], dialect)
    load = TableLoad(object=obj.name, table=table_name)
    if existing is None:
        load.created = True
        return [create_table(obj.name, obj.columns, dialect).sql(dialect=sg)], load, names
    have = {n.casefold() for n in existing}
    statements = []
    for name, dtype in zip(names, column_types(obj.columns, dialect), strict=True):
        if name.casefold() not in have:
            load.added_columns.append(name)
            statements.append(f"ALTER TABLE {quote(table_name, dialect)} ADD COLUMN "
                              f"{quote(name, dialect)} {dtype.sql(dialect=sg)}")
    return statements, load, names


# -- PostgreSQL ---------------------------------------------------------------------------------------------


def _pg_connect(ep: EndpointSettings) -> Any:
    import psycopg

    params: dict[str, Any] = {"host": ep.host, "port": ep.port, "dbname": ep.database, "user": ep.user,
                              "password": ep.password.reveal(), "sslmode": ep.sslmode,
                              "connect_timeout": CONNECT_TIMEOUT, "application_name": "replicator"}
    if ep.ssl_ca is not None:
        params["sslrootcert"] = str(ep.ssl_ca)
    try:
        return psycopg.connect(**params)
    except psycopg.Error as exc:
        raise _error(ep, "cannot connect", exc) from None


def _load_postgres(ep: EndpointSettings, objects: list[_Object], report: EndpointReport) -> None:
    import psycopg

    con = _pg_connect(ep)
    try:
        with con.transaction():
            schema = quote(ep.schema or "public", "postgresql")
            exists = con.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [ep.schema]).fetchone()
            if not exists:
                con.execute(f"CREATE SCHEMA {schema}")
            # Table names are unqualified in the shared DDL; the search path puts them in the schema.
            con.execute(f"SET LOCAL search_path TO {schema}")
            for obj in objects:
                started = time.perf_counter()
                rows = con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                    "AND table_name = %s ORDER BY ordinal_position",
                    [ep.schema, short_name(obj.name, "postgresql")]).fetchall()
                ddl, load, names = _plan_ddl(obj, "postgresql", [r[0] for r in rows] if rows else None)
                for statement in ddl:
                    con.execute(statement)
                table = quote(load.table, "postgresql")
                con.execute(f"TRUNCATE {table}")
                columns = ", ".join(quote(n, "postgresql") for n in names)
                with con.cursor().copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                    for n, chunk in _csv_chunks(obj, "postgresql"):
                        copy.write(chunk)
                        load.rows += n
                load.seconds = time.perf_counter() - started
                report.tables.append(load)
    except psycopg.Error as exc:
        raise _error(ep, "load failed", exc) from None
    finally:
        con.close()


# -- MySQL / MariaDB ----------------------------------------------------------------------------------------


def _mysql_connect(ep: EndpointSettings) -> Any:
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
        raise _error(ep, "cannot connect", exc) from None


def _load_mysql(ep: EndpointSettings, objects: list[_Object], report: EndpointReport) -> None:
    import pymysql

    con = _mysql_connect(ep)
    try:
        with con.cursor() as cur, tempfile.TemporaryDirectory(prefix="replicator-load-") as tmp:
            cur.execute("SET SESSION time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES'")
            plans = []
            for obj in objects:  # DDL commits implicitly in MySQL: all of it before the data transaction
                cur.execute("SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position",
                            [short_name(obj.name, "mysql")])
                rows = cur.fetchall()
                ddl, load, names = _plan_ddl(obj, "mysql", [r[0] for r in rows] if rows else None)
                for statement in ddl:
                    cur.execute(statement)
                plans.append((obj, load, names))
            con.begin()
            for obj, load, names in plans:
                started = time.perf_counter()
                table = quote(load.table, "mysql")
                cur.execute(f"DELETE FROM {table}")
                path = Path(tmp) / "data.csv"
                with open(path, "wb") as out:
                    for n, chunk in _csv_chunks(obj, "mysql"):
                        out.write(chunk)
                        load.rows += n
                targets, sets = [], []
                for i, (name, col) in enumerate(zip(names, obj.columns, strict=True)):
                    if col.kind == "blob":  # hex in the file; UNHEX keeps any byte exact
                        targets.append(f"@b{i}")
                        sets.append(f"{quote(name, 'mysql')} = UNHEX(@b{i})")
                    else:
                        targets.append(quote(name, "mysql"))
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
                    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                    f"LINES TERMINATED BY '\\n' ({', '.join(targets)})"
                    + (f" SET {', '.join(sets)}" if sets else ""), [str(path)])
                _mysql_check_warnings(cur, obj.name)
                load.seconds = time.perf_counter() - started
                report.tables.append(load)
            con.commit()
    except pymysql.MySQLError as exc:
        con.rollback()
        raise _error(ep, "load failed", exc) from None
    finally:
        con.close()


def _mysql_check_warnings(cur: Any, obj: str) -> None:
    """LOAD DATA LOCAL turns bad values into warnings and goes on; an exact copy treats them as errors."""
    cur.execute("SHOW WARNINGS")
    warnings = cur.fetchall()
    if warnings:
        shown = "; ".join(f"{w[0]} {w[1]}: {w[2]}" for w in warnings[:MYSQL_WARNINGS_SHOWN])
        raise EndpointError(f"{obj}: the server changed or dropped values while loading ({len(warnings)} "
                            f"warnings): {shown}")


# -- entry points -------------------------------------------------------------------------------------------


def _target(ep: EndpointSettings) -> str:
    schema = f"/{ep.schema}" if ep.schema else ""
    return f"{ep.kind}://{ep.user}@{ep.host}:{ep.port}/{ep.database}{schema}"


def _error(ep: EndpointSettings, what: str, exc: BaseException) -> EndpointError:
    """A driver error as an EndpointError; the password is masked should a driver ever echo it."""
    message = str(exc).strip() or type(exc).__name__
    with contextlib.suppress(Exception):
        secret = ep.password.reveal()
        if secret:
            message = message.replace(secret, "***")
    return EndpointError(f"endpoint {ep.name!r} ({_target(ep)}): {what}: {message}")


def load_endpoint(store: SnapshotStore, endpoint: EndpointSettings, run_id: int, objects: Sequence[str],
                  blobs: BlobStore | None = None) -> EndpointReport:
    """Load `objects` as of `run_id` from the open store into the endpoint (one data transaction).

    File bodies go in as bytes when `blobs` is given, else blob columns hold the sha256 the store keeps.
    """
    started = time.perf_counter()
    report = EndpointReport(endpoint=endpoint.name, kind=endpoint.kind, target=_target(endpoint),
                            run_id=run_id)
    todo = []
    for name in objects:
        types = object_types(store, name)

        def batches(name: str = name, types: list[ColumnType] = types) -> Iterable[pa.RecordBatch]:
            return attach_blobs(read_as_of(store, name, run_id), types, blobs)[1]

        # attach_blobs decides the exported types (blob -> sha256 text without `blobs`); no reading yet.
        todo.append(_Object(name, attach_blobs(iter(()), types, blobs)[0], batches))
    (_load_postgres if endpoint.kind == "postgresql" else _load_mysql)(endpoint, todo, report)
    report.seconds = time.perf_counter() - started
    return report


def export_to_endpoint(config: Config, endpoint_name: str, run: int | str = "last",
                       objects: Sequence[str] | None = None, *, blobs: BlobStore | None = None,
                       store: SnapshotStore | None = None) -> EndpointReport:
    """`replicator export --endpoint NAME`: resolve run and objects, load, and keep it on the exports
    ledger (recorded before loading, so a failed load that left rows behind is on the ledger too).

    `store`: an already open, writable store (else the config's store is opened and closed here).
    """
    endpoint = config.endpoint(endpoint_name)
    endpoint.password.reveal()  # an unset variable fails before anything else happens
    if store is None:
        with Repository(config.storage.path).open_write("export") as opened:
            return _export(opened, endpoint, run, objects, blobs)
    return _export(store, endpoint, run, objects, blobs)


def _export(store: SnapshotStore, endpoint: EndpointSettings, run: int | str, objects: Sequence[str] | None,
            blobs: BlobStore | None) -> EndpointReport:
    try:
        run_id = resolve_run(store, run)
    except ValueError as exc:
        raise EndpointError(str(exc)) from None
    names = store.exports.resolve(store.reads.objects(), objects)
    with store.exports.recording("endpoint", fmt=endpoint.kind, dialect=endpoint.kind, run_id=run_id,
                                 from_run=None, objects=names,
                                 destination=f"{endpoint.name} {_target(endpoint)}") as record:
        report = load_endpoint(store, endpoint, run_id, names, blobs)
        record.rows.update({t.object: t.rows for t in report.tables})
    return report
