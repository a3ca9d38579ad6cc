"""Reading the store: the objects it holds, records as of a run or instant, analyst SQL, column types.

Why apart from the writers: exports, history, the change probe and `check` only read, and a reader
never needs the writer lock, so everything here works on a store opened read-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from replicator.store.database import Database
from replicator.store.schema import META_COLUMNS, as_of_select, quote

__all__ = ["Reads"]


class Reads:
    """Read access to one open store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def read(self, query: str, params: Iterable[Any] = ()) -> pa.Table:
        """Internal read helper for trusted SQL with bound parameters (history.py, backup checks)."""
        return self.db.execute(query, params).to_arrow_table()

    def objects(self) -> list[str]:
        """Objects with a history table, by name."""
        return [r[0] for r in self.db.execute(
            "SELECT object FROM main.tracked_objects ORDER BY object").fetchall()]

    def fields(self, obj: str) -> list[str]:
        """The field columns of an object's history table (every field it ever had), in table order."""
        return list(self.column_types(obj))

    def column_types(self, obj: str) -> dict[str, str]:
        """Field column -> DuckDB type of an object's history table."""
        return dict(self.db.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'hist' AND table_name = ? AND NOT list_contains(?, column_name) "
            "ORDER BY column_index", [obj, list(META_COLUMNS)]).fetchall())

    def longest_text(self, obj: str, columns: list[str]) -> dict[str, int]:
        """The longest value any version holds, per text column (0 when all are NULL)."""
        if not columns:
            return {}
        row = self.read("SELECT " + ", ".join(f"max(length({quote(n)}))" for n in columns)
                        + f" FROM hist.{quote(obj)}").to_pylist()[0]
        return {n: v or 0 for n, v in zip(columns, row.values(), strict=True)}

    def as_of(self, obj: str, as_of: int | datetime, batch_rows: int = 10_000) -> pa.RecordBatchReader:
        """The records of `obj` as of a run or instant (not deleted), ordered by Id, as Arrow batches."""
        return self.stream(as_of_select(obj, "$1") + ' ORDER BY "Id"', [self.as_of_ts(as_of)], batch_rows)

    def cursor(self, obj: str) -> datetime | None:
        """Largest cursor-field value among committed versions (tombstones included); None if none."""
        row = self.db.execute("SELECT cursor_field FROM main.tracked_objects WHERE object = ?",
                              [obj]).fetchone()
        if row is None or row[0] is None:
            return None
        return self.db.execute(f"SELECT max({quote(row[0])}) FROM hist.{quote(obj)}").fetchone()[0]

    def current_ids(self, obj: str) -> pa.Table:
        """Ids of the current, not deleted records (for a full reconcile against the org)."""
        if obj not in self.objects():
            return pa.table({"Id": pa.array([], pa.string())})
        return self.read(f'SELECT "Id" FROM hist.{quote(obj)} WHERE _valid_to IS NULL AND NOT _deleted')

    def current_versions(self, obj: str, columns: list[str], ids: pa.Array) -> pa.Table:
        """Id plus the named columns (those the history table has) of the current, live versions of
        `ids`: e.g. the blob sha a file body had, so unchanged bodies are not downloaded again."""
        if obj not in self.objects():
            return pa.table({"Id": pa.array([], pa.string())})
        have = set(self.fields(obj))
        select = ", ".join(f"h.{quote(c)}" for c in columns if c in have and c != "Id")
        cur = self.db.cursor()
        try:
            cur.register("_wanted_ids", pa.table({"Id": ids}))
            return cur.execute(
                f'SELECT h."Id"{", " + select if select else ""} FROM hist.{quote(obj)} h '
                'WHERE h._valid_to IS NULL AND NOT h._deleted AND h."Id" IN (SELECT "Id" FROM _wanted_ids)'
            ).to_arrow_table()
        finally:
            cur.close()

    def current_counts(self) -> dict[str, int]:
        """Current (not deleted) record count per object."""
        if not self.objects():
            return {}
        return self.live_counts()

    def live_counts(self) -> dict[str, int]:
        """main.objects' current record counts (the view exists once an object was applied)."""
        return dict(self.db.execute("SELECT object, records FROM main.objects").fetchall())

    def as_of_ts(self, as_of: int | datetime) -> datetime:
        """The instant a run id or timestamp stands for (a run's run_ts; naive datetimes are UTC)."""
        if isinstance(as_of, datetime):
            return as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        row = self.db.execute("SELECT run_ts FROM main.runs WHERE run_id = ?", [as_of]).fetchone()
        if row is None:
            raise ValueError(f"run {as_of} does not exist")
        return row[0]

    def sql(self, query: str, as_of: int | datetime | None = None) -> pa.Table:
        """Run one analyst SELECT, read-only; with `as_of`, object names mean their state at that run/time.

        The query runs on its own connection inside a transaction that is always rolled back, after a
        check that it is a single SELECT. With `as_of`, temporary views named like the objects shadow
        the current-state views (DuckDB resolves both "<Object>" and main."<Object>" to the temporary
        view first), so an unchanged query reads the past; the `_as_of` and `_history` macros stay
        available for comparing with other runs.
        """
        statements = self.db.con.extract_statements(query)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise ValueError("sql() runs exactly one SELECT statement")
        cur = self.db.cursor()
        try:
            cur.execute("BEGIN")
            if as_of is not None:
                cur.execute("CREATE TEMP TABLE _as_of AS SELECT CAST(? AS TIMESTAMPTZ) AS ts",
                            [self.as_of_ts(as_of)])
                for obj in self.objects():
                    cur.execute(f"CREATE TEMP VIEW {quote(obj)} AS "
                                + as_of_select(obj, "(SELECT ts FROM temp._as_of)"))
            # The relation API hands DuckDB's result to Arrow about twice as fast as execute() (measured:
            # 0.23 s vs 0.49 s for 1M rows of 17 columns).
            result = cur.sql(query).to_arrow_table()
            cur.execute("ROLLBACK")
            return result
        finally:
            cur.close()

    def field_types(self, obj: str) -> dict[str, dict[str, Any]]:
        """Field -> {type, length, precision, scale} as last described (empty for stores from before)."""
        if not self.db.has_table("field_types"):
            return {}
        found = self.db.rows("SELECT field, type, length, precision, scale FROM main.field_types "
                             "WHERE object = ?", [obj])
        return {r.pop("field"): r for r in found}

    def stream(self, query: str, params: Iterable[Any] = (),
               batch_rows: int = 10_000) -> pa.RecordBatchReader:
        """Trusted SQL with bound parameters, read as Arrow batches (memory stays flat)."""
        cur = self.db.cursor()
        reader = cur.execute(query, list(params)).to_arrow_reader(batch_rows)

        def batches() -> Iterable[pa.RecordBatch]:
            try:
                yield from reader
            finally:
                cur.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())
