"""The version rule: staged rows of one object -> new versions in its history table (set-based SQL).

A staged row makes a new version only if the record is new to the store, its cursor field
(SystemModstamp) differs from the current version's, or its deletion state flips. Everything here
runs inside the caller's transaction, so a run's versions appear together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from replicator.salesforce.catalog import ObjectPlan
from replicator.store.schema import META_COLUMNS, history_ddl, plan_columns, quote, widened


@dataclass
class Counts:
    """What one run did to one object. `unchanged`: staged rows that made no version (re-reads)."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0


def table_columns(con: duckdb.DuckDBPyConnection, database: str, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
        "AND table_name = ? ORDER BY column_index", [database, schema, table]).fetchall()
    return dict(rows)


Table = tuple[str, str, str]  # (database, schema, table) of a staging table


def qualified(t: Table) -> str:
    return ".".join(quote(part) for part in t)


def staged_tables(con: duckdb.DuckDBPyConnection, database: str) -> dict[str, Table]:
    """Table name -> (database, schema, table) of the staging file's tables.

    dlt writes into a dataset schema (and may leave a `<dataset>_staging` schema and `_dlt_*` tables),
    so tables are found by name in any schema but those.
    """
    rows = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
        "AND NOT starts_with(table_name, '_dlt') AND NOT ends_with(schema_name, '_staging') "
        "ORDER BY schema_name = 'main' DESC, schema_name", [database]).fetchall()
    found: dict[str, Table] = {}
    for schema, table in rows:
        found.setdefault(table, (database, schema, table))
    return found


def evolve(con: duckdb.DuckDBPyConnection, obj: str, plan: ObjectPlan) -> dict[str, str]:
    """Create or evolve hist.<obj> for the plan's fields; returns its field columns and their types.

    New fields become new columns (NULL in older versions); fields that disappear keep their column;
    changed types are widened (snapshot_schema.widened).
    """
    wanted = plan_columns(plan)
    if "Id" not in wanted:
        raise ValueError(f"{obj}: the plan has no Id field")
    database = con.execute("SELECT current_database()").fetchone()[0]
    existing = table_columns(con, database, "hist", obj)
    if not existing:
        con.execute(history_ddl(obj, wanted))
        return wanted
    table = f"hist.{quote(obj)}"
    for name, sql_type in wanted.items():
        old = existing.get(name)
        if old is None:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {quote(name)} {sql_type}")
        elif (new := widened(old, sql_type)) != old:
            con.execute(f"ALTER TABLE {table} ALTER COLUMN {quote(name)} TYPE {new}")
    columns = table_columns(con, database, "hist", obj)
    return {name: t for name, t in columns.items() if name not in META_COLUMNS}


def merge_object(con: duckdb.DuckDBPyConnection, plan: ObjectPlan, columns: dict[str, str],
                 staged: Table | None, deleted: Table | None, run_id: int, run_ts: datetime, *,
                 compare_all: bool = False) -> Counts:
    """Write this run's versions of one object. `staged`/`deleted`: qualified staging tables or None.

    `deleted` holds Ids known deleted ("<Object>__deleted": Id, deleted_at): a staged row of such an
    Id becomes a tombstone unless it is newer than the deletion; an Id that is only current in the
    store gets a tombstone copying its current values. `compare_all`: a staged row makes a version
    when any field differs, not only the cursor: Salesforce changes some values without moving
    SystemModstamp (a new field's default, a lookup cleared by a purge), and a full re-read must
    catch them.
    """
    hist = f"hist.{quote(plan.name)}"
    cursor = plan.cursor if plan.cursor in columns else None
    first = not con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {hist} LIMIT 1)").fetchone()[0]
    try:
        # First load of an object (the full backup): with no tombstones to fold in and one row per Id,
        # the staged rows go into the history table in one INSERT ... SELECT, never copied in between.
        _stage(con, columns, staged, cursor,
               dedup=not (first and deleted is None and staged is not None and _unique_ids(con, staged)))
        counts = Counts()
        if deleted is not None:
            counts.deleted += _apply_deleted(con, hist, columns, deleted, cursor, run_id, run_ts)
        if cursor and not compare_all:
            changed = f"c.{quote(cursor)} IS DISTINCT FROM s.{quote(cursor)}"
        else:  # no cursor field, or a full re-read: compare every field
            changed = " OR ".join(f"c.{quote(n)} IS DISTINCT FROM s.{quote(n)}" for n in columns) or "false"
        if not first:
            con.execute(f"""CREATE TEMP TABLE _chg AS
                SELECT s.*, c._deleted AS _prev FROM _src s
                LEFT JOIN (SELECT * FROM {hist} WHERE _valid_to IS NULL) c ON c."Id" = s."Id"
                WHERE c."Id" IS NULL OR c._deleted <> s._del OR {changed}""")
        else:  # first load: every staged row is new; skip copying them once more
            con.execute("CREATE TEMP VIEW _chg AS SELECT *, NULL::BOOLEAN AS _prev FROM _src")
        deleted_flag = ' REPLACE (_del AS "IsDeleted")' if "IsDeleted" in columns else ""
        con.execute(f"""INSERT INTO {hist} BY NAME
            SELECT * EXCLUDE (_del, _prev){deleted_flag}, CAST(? AS TIMESTAMPTZ) AS _valid_from,
                   NULL::TIMESTAMPTZ AS _valid_to, CAST(? AS INTEGER) AS _run_id, _del AS _deleted,
                   main._sf_key("Id") AS _key
            FROM _chg""", [run_ts, run_id])
        ins, upd, dele, total = con.execute(
            "SELECT count(*) FILTER (WHERE NOT _del AND coalesce(_prev, true)), "
            "count(*) FILTER (WHERE NOT _del AND NOT coalesce(_prev, true)), "
            "count(*) FILTER (WHERE _del AND NOT coalesce(_prev, false)), "
            "(SELECT count(*) FROM _src) - count(*) FROM _chg").fetchone()
        counts.inserted, counts.updated, counts.unchanged = ins, upd, total
        counts.deleted += dele
        if first:
            return counts  # every version in the table is this run's: nothing to retire
        # Retire the versions this run superseded: every older current version of an Id it wrote.
        con.execute(f"""UPDATE {hist} SET _valid_to = ? WHERE _valid_to IS NULL AND _valid_from < ?
            AND "Id" IN (SELECT "Id" FROM {hist} WHERE _run_id = ?)""", [run_ts, run_ts, run_id])
        return counts
    finally:
        for kind, name in con.execute("SELECT table_type, table_name FROM information_schema.tables "
                                      "WHERE table_catalog = 'temp' AND table_name IN ('_src', '_chg') "
                                      "ORDER BY table_name").fetchall():
            con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} temp.{name}")


def _unique_ids(con: duckdb.DuckDBPyConnection, staged: Table) -> bool:
    """True when no Id is staged twice (a hash count: a fraction of a second per million rows)."""
    return bool(con.execute(
        f'SELECT count("Id") = count(DISTINCT "Id") FROM {qualified(staged)}').fetchone()[0])


def _stage(con: duckdb.DuckDBPyConnection, columns: dict[str, str], staged: Table | None,
           cursor: str | None, *, dedup: bool = True) -> None:
    """temp._src: the staged rows typed like the history table, one per Id (latest cursor wins).

    A record can be staged twice when the source re-reads the cursor boundary or retries a range;
    ties on the cursor go to the deleted row. `_del` is the record's deletion state. Without
    `dedup` (the caller knows every Id is staged once) _src is a view: nothing is materialised.
    """
    if staged is None:
        select = ", ".join(f"NULL::{t} AS {quote(n)}" for n, t in columns.items())
        con.execute(f"CREATE OR REPLACE TEMP TABLE _src AS SELECT {select}, false AS _del LIMIT 0")
        return
    present = table_columns(con, *staged)
    select = ", ".join(
        (f"CAST(s.{quote(n)} AS {t})" if n in present else f"NULL::{t}") + f" AS {quote(n)}"
        for n, t in columns.items())
    deleted = 'coalesce(s."IsDeleted", false)' if "IsDeleted" in present else "false"
    order = f"s.{quote(cursor)} DESC NULLS LAST, " if cursor and cursor in present else ""
    if not dedup:
        con.execute(f"""CREATE TEMP VIEW _src AS
            SELECT {select}, {deleted} AS _del FROM {qualified(staged)} s WHERE s."Id" IS NOT NULL""")
        return
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _src AS
        SELECT {select}, {deleted} AS _del FROM {qualified(staged)} s WHERE s."Id" IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY s."Id" ORDER BY {order}{deleted} DESC) = 1""")


def _apply_deleted(con: duckdb.DuckDBPyConnection, hist: str, columns: dict[str, str], deleted: Table,
                   cursor: str | None, run_id: int, run_ts: datetime) -> int:
    """Fold "<Object>__deleted" into the run; returns the tombstones written for unstaged Ids."""
    at = '"deleted_at"' if "deleted_at" in table_columns(con, *deleted) else "NULL"
    deleted_sql = qualified(deleted)
    newer = f"OR s.{quote(cursor)} IS NULL OR d.at >= s.{quote(cursor)}" if cursor else "OR true"
    con.execute(f"""UPDATE _src s SET _del = true
        FROM (SELECT "Id", max(CAST({at} AS TIMESTAMPTZ)) AS at FROM {deleted_sql} GROUP BY "Id") d
        WHERE s."Id" = d."Id" AND NOT s._del AND (d.at IS NULL {newer})""")
    deleted_flag = ', true AS "IsDeleted"' if "IsDeleted" in columns else ""
    return con.execute(f"""INSERT INTO {hist} BY NAME
        SELECT * REPLACE (CAST(? AS TIMESTAMPTZ) AS _valid_from, CAST(? AS INTEGER) AS _run_id,
                          true AS _deleted{deleted_flag})
        FROM {hist} WHERE _valid_to IS NULL AND NOT _deleted
          AND "Id" IN (SELECT "Id" FROM {deleted_sql}) AND "Id" NOT IN (SELECT "Id" FROM _src)""",
                       [run_ts, run_id]).fetchone()[0]
