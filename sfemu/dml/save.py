"""One save of one object's rows (insert or update), staged and validated set-wise in DuckDB.

A save runs in two phases so that several saves can be checked before any of them writes
(upsert = an update part and an insert part under one allOrNone): `stage()` converts the input
into a temp table of complete records and records every failing row in an errors table; `write()`
writes the surviving rows, runs after-save automations and recomputes roll-ups.

Every statement has a fixed cost that dwarfs the per-row work of a 10,000-row Bulk batch, so the
input is read where it lies (a registered Arrow table, never copied into a table of its own) and
the checks of one step are collected and run as one INSERT ... UNION ALL into the errors table.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from sfemu.describe import record_type_id
from sfemu.dml import files
from sfemu.dml import sql as q
from sfemu.dml.hooks import AutomationHooks, SaveContext, Writer
from sfemu.dml.results import DmlError, RowResult
from sfemu.ids import make_ids
from sfemu.schema import COMPOUND_TYPES, Field, SObject
from sfemu.store import DELETED_AT, quote

if TYPE_CHECKING:
    import duckdb

    from sfemu.org import EmulatedOrg

AUDIT_STAMPS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")
AUDIT_USERS = ("CreatedById", "LastModifiedById")
NO_SUCH_COLUMN = "No such column '{field}' on sobject of type {obj}"
NOT_WRITABLE = (
    "Unable to create/update fields: {fields}. Please check the security settings of this field "
    "and verify that it is read/write for your profile or permission set."
)
SEQ = itertools.count(1)
ID = quote("Id")
LIVE = f"{quote(DELETED_AT)} IS NULL"


class Engine(Writer, Protocol):
    """What a save needs of the engine that runs it (dml.engine.Dml is one): the org, its automations,
    roll-up maintenance, and DML for after-save automations."""

    org: EmulatedOrg

    def hooks(self) -> AutomationHooks: ...

    def refresh_rollups(self, child: SObject, tables: list[str], stamp: datetime, user_id: str) -> None: ...


def errors_table(cur: duckdb.DuckDBPyConnection, name: str) -> None:
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} (_row INTEGER, ord INTEGER, code VARCHAR, "
        f"msg VARCHAR, fields VARCHAR[])"
    )


def collect_errors(cur: duckdb.DuckDBPyConnection, table: str) -> dict[int, list[DmlError]]:
    """Errors per row, keeping only the earliest check stage that failed (as Salesforce stops there)."""
    rows = cur.execute(
        f"SELECT _row, code, msg, fields FROM {table} e WHERE ord // 1000 = "
        f"(SELECT min(ord // 1000) FROM {table} x WHERE x._row = e._row) ORDER BY _row, ord"
    ).fetchall()
    out: dict[int, list[DmlError]] = {}
    for row, code, msg, fields in rows:
        out.setdefault(int(row), []).append(DmlError(code, msg, list(fields or [])))
    return out


class Save:
    """One insert or update of `rows` (positions `positions` of the caller's input) on `obj`."""

    def __init__(
        self,
        dml: Engine,
        obj: SObject,
        op: str,
        rows: pa.Table,
        positions: list[int],
        *,
        empty_means_unchanged: bool,
        null_marker: str,
        user_id: str,
        stamp: Any,
        excluded: dict[int, list[DmlError]],
    ) -> None:
        self.dml, self.obj, self.op = dml, obj, op
        self.store = dml.org.store
        self.cur = self.store.cursor()
        self.positions = positions
        self.user_id, self.stamp = user_id, stamp
        n = next(SEQ)
        self.input, self.staged, self.old, self.err = (
            f"_dml_input{n}",
            f"_dml_staged{n}",
            f"_dml_old{n}",
            f"_dml_err{n}",
        )
        self.rows = rows
        self.empty_means_unchanged, self.null_marker = empty_means_unchanged, null_marker
        mine = set(positions)
        self.excluded = {p: e for p, e in excluded.items() if p in mine}
        self.ord = 0
        self.pending: list[str] = []  # checks not yet run (see _error, _flush)
        self.error_rows = 0  # rows in the errors table so far: 0 spares the statements that prune them
        self.src_sql, self.src_params = "", []  # the input as (_row, _id, s<k>, v<k>): see _load_source
        self.record_ids: pa.Array = pa.array([], pa.string())  # per input row: the Id it writes
        self.failures: dict[int, list[DmlError]] = {}
        self.ids: dict[int, str] = {}
        self.supplied: dict[str, Field] = {}  # input column -> writable field

    # --- errors ---------------------------------------------------------------------------

    def _error(
        self,
        stage: int,
        where: str,
        code: str,
        msg_sql: str,
        fields_sql: str = "[]",
        source: str = "src",
    ) -> None:
        """Record an error for every row of `source` (default: the input, `src`) matching `where`.

        The check runs at the next _flush(), in one statement with the other pending checks."""
        self.ord += 1
        self.pending.append(
            f"SELECT _row, {stage * 1000 + self.ord}, {q.lit(code)}, {msg_sql}, "
            f"CAST({fields_sql} AS VARCHAR[]) FROM {source} WHERE {where}"
        )

    def _flush(self, on_source: bool = False) -> None:
        """Run the pending checks as one INSERT ... UNION ALL; `on_source`: they read the input."""
        if not self.pending:
            return
        checks = " UNION ALL ".join(self.pending)
        self.pending = []
        if on_source:
            sql, params = f"INSERT INTO {self.err} WITH src AS ({self.src_sql}) {checks}", self.src_params
        else:
            sql, params = f"INSERT INTO {self.err} {checks}", []
        self._count(self.cur.execute(sql, params))

    def _count(self, result: duckdb.DuckDBPyConnection) -> None:
        """Add the row count an INSERT into the errors table reports."""
        self.error_rows += result.fetchone()[0]

    def _prune(self, table: str) -> None:
        """Remove the rows that failed a check from a staged table (nothing to do while none failed)."""
        if self.error_rows:
            self.cur.execute(f"DELETE FROM {table} WHERE _row IN (SELECT _row FROM {self.err})")

    # --- phase 1: staging and validation --------------------------------------------------

    def stage(self) -> dict[int, list[DmlError]]:
        cur = self.cur
        errors_table(cur, self.err)
        self._load_source()
        for pos, errs in self.excluded.items():
            for e in errs:
                self._count(
                    cur.execute(
                        f"INSERT INTO {self.err} VALUES (?, 0, ?, ?, ?)",
                        [pos, e.status_code, e.message, e.fields],
                    )
                )
        self._check_columns()
        self._check_types()
        self._flush(on_source=True)
        self._build_staged()
        self._prune(self.staged)
        hooks = self.dml.hooks()
        if self.obj.triggerable:
            ctx = self.context()
            hooks.before_save(ctx)
            self._add_failures(ctx.failures, 5)
            self._compose_name()
        files.stage(self)
        self._check_values()
        files.number_versions(self)
        self.failures = collect_errors(cur, self.err) if self.error_rows else {}
        return self.failures

    def context(self) -> SaveContext:
        return SaveContext(
            self.dml.org,
            self.dml,
            self.obj,
            self.op,
            self.staged,
            self.old if self.op != "insert" else None,
            self.cur,
        )

    def _add_failures(self, failures: dict[int, list[DmlError]], stage: int) -> None:
        for pos, errs in failures.items():
            for e in errs:
                self.ord += 1
                self._count(
                    self.cur.execute(
                        f"INSERT INTO {self.err} VALUES (?, ?, ?, ?, ?)",
                        [pos, stage * 1000 + self.ord, e.status_code, e.message, e.fields],
                    )
                )

    def _text(self, k: int) -> tuple[str, str]:
        """(supplied condition, text value) SQL for input column k, per the value conventions."""
        raw = f"CAST(i.c{k} AS VARCHAR)"
        if self.empty_means_unchanged:
            supplied = f"coalesce({raw}, '') <> ''"
            text = f"CASE WHEN {raw} = ? THEN NULL ELSE {raw} END"
        else:
            supplied, text = "true", raw
        return supplied, f"NULLIF({text}, '')"

    def _load_source(self) -> None:
        """Register the input (columns renamed c<k>, plus _row and, for inserts, the new records' _id
        and _auto) and define `src` over it: (_row, _id, per column: supplied flag s<k>, text v<k>)."""
        kept = [i for i, c in enumerate(self.rows.column_names) if c != "_row"]
        self.columns = [self.rows.column_names[i] for i in kept]
        data = {f"c{k}": self.rows.column(i) for k, i in enumerate(kept)}
        data["_row"] = pa.array(self.positions, pa.int32())
        cols, params = ["i._row"], []
        if self.op == "insert":
            n = len(self.positions)
            first, _ = self.store.id_range(self.obj, n)
            data["_id"] = self.record_ids = make_ids(self.obj.key_prefix, first, n)
            data["_auto"] = pc.utf8_lpad(pc.cast(pa.array(range(first, first + n), pa.int64()), pa.string()),
                                         8, "0")
            cols += ["i._id", "i._auto"]
        else:  # the caller resolved "Id" to canonical ids of live records
            self.record_ids = pc.cast(data[f"c{self._col('Id')}"], pa.string())
            cols.append(f"CAST(i.c{self._col('Id')} AS VARCHAR) AS _id")
        for k in range(len(self.columns)):
            supplied, text = self._text(k)
            cols.append(f"{supplied} AS s{k}")
            cols.append(f"{text} AS v{k}")
            if self.empty_means_unchanged:
                params.append(self.null_marker)
        self.cur.register(self.input, pa.table(data))
        self.src_sql, self.src_params = f"SELECT {', '.join(cols)} FROM {self.input} i", params

    def _col(self, name: str) -> int | None:
        lname = name.lower()
        return next((k for k, c in enumerate(self.columns) if c.lower() == lname), None)

    def _check_columns(self) -> None:
        """Unknown fields (INVALID_FIELD) and fields this operation may not write."""
        writable_flag = "createable" if self.op == "insert" else "updateable"
        locked: list[str] = []
        for k, col in enumerate(self.columns):
            f = self.obj.field(col)
            if f is None:
                # the name is the client's text, echoed in a SQL literal: control characters (a NUL
                # ends DuckDB's literal) are shown escaped, as a printable Python string shows them
                shown = col if col.isprintable() else repr(col)[1:-1]
                msg = NO_SUCH_COLUMN.format(field=shown, obj=self.obj.name)
                self._error(1, f"s{k}", "INVALID_FIELD", q.lit(msg))
                continue
            if f.name == "Id":
                if self.op == "insert":
                    self._error(
                        1,
                        f"s{k} AND v{k} IS NOT NULL",
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        q.lit("Record ID: cannot specify Id in an insert call"),
                        "['Id']",
                    )
                continue
            if not getattr(f, writable_flag) or f.type in COMPOUND_TYPES or f.formula_sql is not None:
                locked.append(f"CASE WHEN s{k} THEN {q.lit(f.name)} END")
                continue
            self.supplied[col] = f
        if locked:
            names = f"list_filter([{', '.join(locked)}], x -> x IS NOT NULL)"
            head, tail = NOT_WRITABLE.split("{fields}")
            self._error(
                1,
                f"len({names}) > 0",
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"{q.lit(head)} || array_to_string({names}, ', ') || {q.lit(tail)}",
                names,
            )

    def _check_types(self) -> None:
        """Values that do not convert to the field's type, or numbers that do not fit it. Text fields
        take any text (type_ok and range_ok are "true"): their checks are left out, as they never fail."""
        for col, f in self.supplied.items():
            k = self._col(col)
            v = f"v{k}"
            value = q.convert(f, v)
            present = f"s{k} AND {v} IS NOT NULL"
            type_ok, range_ok = q.type_ok(f, v, value), q.range_ok(f, v, value)
            if type_ok != "true":
                self._error(
                    2,
                    f"{present} AND NOT ({type_ok})",
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{q.lit(q.label(f))} || ': value not of required type: ' || {v}",
                    f"[{q.lit(f.name)}]",
                )
            if range_ok != "true":
                self._error(
                    2,
                    f"{present} AND ({type_ok}) AND NOT ({range_ok})",
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"{q.lit(q.label(f))} || ': value outside of valid range on numeric field: ' || {v}",
                    f"[{q.lit(f.name)}]",
                )

    def _default(self, f: Field, params: list) -> str:
        """Insert-time value of a field the input does not supply."""
        if f.name == "Id":
            return "s._id"
        if f.name == "IsDeleted":
            return "false"
        if f.system and f.name in AUDIT_STAMPS:
            params.append(self.stamp)
            return "CAST(? AS TIMESTAMP)"
        if (f.system and f.name in AUDIT_USERS) or f.name == "OwnerId":
            params.append(self.user_id)
            return "CAST(? AS VARCHAR)"
        if f.name == "RecordTypeId" and self.obj.record_types:
            return q.lit(record_type_id(self.obj.name, self.obj.record_types[0]))
        if f.auto_number:
            return "s._auto"
        if f.rollup and str(f.rollup.get("function", "")).upper() in ("SUM", "COUNT"):
            return f"CAST(0 AS {f.sql_type})"  # a new parent has no children yet
        if f.default_value is not None:
            value = (
                str(f.default_value).lower() if isinstance(f.default_value, bool) else str(f.default_value)
            )
            return f"CAST({q.lit(value)} AS {f.sql_type})"
        return f"CAST(NULL AS {f.sql_type})"

    def _build_staged(self) -> None:
        cur, obj, store = self.cur, self.obj, self.store
        params: list = []
        exprs = []
        if self.op == "insert":
            for f in obj.stored_fields:
                k = self._col(f.name) if f.name in {x.name for x in self.supplied.values()} else None
                default = self._default(f, params)
                if k is None:
                    exprs.append(f"{default} AS {quote(f.name)}")
                else:  # a null sent for a field the server defaults gets the default (OwnerId, booleans)
                    given = f"s{k} AND v{k} IS NOT NULL" if f.defaulted_on_create else f"s{k}"
                    exprs.append(
                        f"CASE WHEN {given} THEN {q.convert(f, f'v{k}')} ELSE {default} END "
                        f"AS {quote(f.name)}"
                    )
            exprs.append("s._row")
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {self.staged} AS WITH src AS ({self.src_sql}) "
                f"SELECT {', '.join(exprs)} FROM src s",
                self.src_params + params,
            )
        else:
            supplied = {f.name: self._col(col) for col, f in self.supplied.items()}
            for f in obj.stored_fields:
                k = supplied.get(f.name)
                if f.system and f.name in ("LastModifiedDate", "SystemModstamp"):
                    params.append(self.stamp)
                    exprs.append(f"CAST(? AS TIMESTAMP) AS {quote(f.name)}")
                elif f.system and f.name == "LastModifiedById":
                    params.append(self.user_id)
                    exprs.append(f"CAST(? AS VARCHAR) AS {quote(f.name)}")
                elif k is None:
                    exprs.append(f"t.{quote(f.name)}")
                else:
                    exprs.append(
                        f"CASE WHEN s{k} THEN {q.convert(f, f'v{k}')} ELSE t.{quote(f.name)} END "
                        f"AS {quote(f.name)}"
                    )
            exprs.append("s._row")
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {self.staged} AS WITH src AS ({self.src_sql}) "
                f"SELECT {', '.join(exprs)} FROM src s JOIN {store.table(obj)} t ON t.{ID} = s._id",
                self.src_params + params,
            )
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {self.old} AS SELECT t.* EXCLUDE ({quote(DELETED_AT)}), "
                f"i._row FROM {self.input} i JOIN {store.table(obj)} t "
                f"ON t.{ID} = CAST(i.c{self._col('Id')} AS VARCHAR)"
            )
        self._compose_name()

    def _compose_name(self) -> None:
        """Contact/Lead/User Name = first and last name, kept equal to SObject.compose_name()."""
        parts = [c for c in self.obj.name_compound if c != "Salutation" and self.obj.field(c)]
        if parts and self.obj.field("Name") is not None and self.obj.field("Name").stored:
            joined = ", ".join(quote(self.obj.field(c).name) for c in parts)
            self.cur.execute(
                f"UPDATE {self.staged} SET {quote('Name')} = NULLIF(concat_ws(' ', {joined}), '')"
            )

    def _check_values(self) -> None:
        """Required fields, text rules, lookups and unique values, on the staged records."""
        obj, staged = self.obj, self.staged
        supplied_fields = {f.name: f for f in self.supplied.values()}
        required = [
            f
            for f in obj.stored_fields
            if q.required_on_write(f) and (self.op == "insert" or f.name in supplied_fields)
        ]
        if required:
            names = f"list_filter([{', '.join(f'CASE WHEN {quote(f.name)} IS NULL THEN {q.lit(f.name)} END' for f in required)}], x -> x IS NOT NULL)"  # noqa: E501
            self._error(
                6,
                f"len({names}) > 0",
                "REQUIRED_FIELD_MISSING",
                f"'Required fields are missing: [' || array_to_string({names}, ', ') || ']'",
                names,
                source=staged,
            )
        checked = list(supplied_fields.values())
        for f in checked:
            col = quote(f.name)
            for cond, code, msg in q.text_checks(f, col) if f.type not in COMPOUND_TYPES else []:
                self._error(
                    7, f"{col} IS NOT NULL AND {cond}", code, msg, f"[{q.lit(f.name)}]", source=staged
                )
        refs = [f for f in checked if f.type == "reference"]
        found = [self._found_references(f) for f in refs]  # before any lookup is made canonical
        try:
            for f, table in zip(refs, found, strict=True):
                self._check_reference(f, table)
            self._flush()
            for f, table in zip(refs, found, strict=True):
                if table is not None:  # store the canonical 18-character ids
                    col = quote(f.name)
                    self.cur.execute(
                        f"UPDATE {self.staged} s SET {col} = r.id FROM {table} r WHERE r._row = s._row "
                        f"AND s.{col} IS DISTINCT FROM r.id"
                    )
        finally:
            for table in found:
                if table is not None:
                    self.cur.execute(f"DROP TABLE IF EXISTS {table}")
        for f in obj.stored_fields:
            if f.unique and f.name in supplied_fields:
                self._check_unique(f)
        self._flush()

    def _targets(self, f: Field) -> list[SObject]:
        targets = [self.store.schema.get(t) for t in f.reference_to]
        return [t for t in targets if t is not None and t.key_prefix]

    def _found_references(self, f: Field) -> str | None:
        """A temp table (_row, id, deleted) of the records a lookup's values name, or None if the
        field can name no object."""
        store, col = self.store, quote(f.name)
        selects = []
        for t in self._targets(f):
            for cond in q.id_join(f"s.{col}", store.table(t), "t"):
                selects.append(
                    f"SELECT s._row, t.{ID} AS id, t.{quote(DELETED_AT)} IS NOT NULL AS deleted "
                    f"FROM {self.staged} s JOIN {store.table(t)} t ON {cond}"
                )
        if not selects:
            return None
        found = f"_dml_ref{next(SEQ)}"
        self.cur.execute(f"CREATE OR REPLACE TEMP TABLE {found} AS {' UNION ALL '.join(selects)}")
        return found

    def _check_reference(self, f: Field, found: str | None) -> None:
        """Lookups must be ids of live records of a referenced type (`found`: see _found_references)."""
        col = quote(f.name)
        name = q.lit(q.label(f))
        prefixes = "[" + ", ".join(q.lit(t.key_prefix) for t in self._targets(f)) + "]"
        present = f"{col} IS NOT NULL"
        fields = f"[{q.lit(f.name)}]"
        self._error(
            8,
            f"{present} AND NOT regexp_matches({col}, {q.lit(q.ID_RE)})",
            "MALFORMED_ID",
            f"{name} || ': id value of incorrect type: ' || {col}",
            fields,
            source=self.staged,
        )
        self._error(
            8,
            f"{present} AND regexp_matches({col}, {q.lit(q.ID_RE)}) AND NOT list_contains("
            f"{prefixes}, left({col}, 3))",
            "FIELD_INTEGRITY_EXCEPTION",
            f"{name} || ': id value of incorrect type: ' || {col}",
            fields,
            source=self.staged,
        )
        if found is None:
            return
        self._error(
            8,
            f"{present} AND regexp_matches({col}, {q.lit(q.ID_RE)}) AND list_contains({prefixes}, "
            f"left({col}, 3)) AND _row NOT IN (SELECT _row FROM {found})",
            "INVALID_CROSS_REFERENCE_KEY",
            q.lit("invalid cross reference id"),
            fields,
            source=self.staged,
        )
        self._error(
            8,
            f"{present} AND _row IN (SELECT _row FROM {found} WHERE deleted)",
            "ENTITY_IS_DELETED",
            q.lit("entity is deleted"),
            fields,
            source=self.staged,
        )

    def _check_unique(self, f: Field) -> None:
        """DUPLICATE_VALUE against other live records and earlier rows of the same call."""
        col = quote(f.name)
        key_s, key_t = q.fold(f, f"s.{col}"), q.fold(f, f"t.{col}")
        msg = (
            f"'duplicate value found: ' || {q.lit(f.name)} || ' duplicates value on record with id: ' || "
            f"other"
        )
        dup = (
            f"(SELECT s._row, min(t.{ID}) AS other FROM {self.staged} s JOIN {self.store.table(self.obj)} t "
            f"ON {key_s} = {key_t} AND t.{ID} <> s.{ID} AND t.{LIVE} WHERE s.{col} IS NOT NULL "
            f"GROUP BY s._row "
            f"UNION ALL SELECT s._row, t.{ID} FROM {self.staged} s JOIN {self.staged} t ON {key_s} = {key_t} "
            f"AND t._row < s._row WHERE s.{col} IS NOT NULL QUALIFY row_number() OVER (PARTITION BY s._row "
            f"ORDER BY t._row) = 1)"
        )
        self._error(9, "true", "DUPLICATE_VALUE", msg, f"[{q.lit(f.name)}]", source=dup)

    # --- phase 2: write -------------------------------------------------------------------

    def write(self) -> dict[int, list[DmlError]]:
        """Write the surviving rows; returns failures raised by after-save automations."""
        cur, store, obj = self.cur, self.store, self.obj
        self._prune(self.staged)
        cols = [quote(f.name) for f in obj.stored_fields]
        if self.op == "insert":
            cur.execute(
                f"INSERT INTO {store.table(obj)} ({', '.join(cols)}) SELECT {', '.join(cols)} "
                f"FROM {self.staged}"
            )
        else:
            sets = ", ".join(f"{c} = s.{c}" for c in cols if c != ID)
            cur.execute(
                f"UPDATE {store.table(obj)} AS t SET {sets} FROM {self.staged} s WHERE t.{ID} = s.{ID}"
            )
        files.write(self)
        # the written rows are the staged ones that failed no check
        self.ids = {
            pos: rid
            for pos, rid in zip(self.positions, self.record_ids.to_pylist(), strict=True)
            if pos not in self.failures
        }
        late: dict[int, list[DmlError]] = {}
        hooks = self.dml.hooks()
        if obj.triggerable and self.ids:
            ctx = self.context()
            hooks.after_save(ctx)
            late = ctx.failures
        self.dml.refresh_rollups(
            obj, [self.staged] + ([self.old] if self.op != "insert" else []), self.stamp, self.user_id
        )
        return late

    def results(self) -> dict[int, RowResult]:
        out: dict[int, RowResult] = {}
        for pos in self.positions:
            if pos in self.failures:
                out[pos] = RowResult(None, False, False, self.failures[pos])
            else:
                out[pos] = RowResult(self.ids.get(pos), True, self.op == "insert")
        return out

    def drop(self) -> None:
        self.cur.unregister(self.input)
        for t in (self.staged, self.err) if self.op == "insert" else (self.staged, self.old, self.err):
            self.cur.execute(f"DROP TABLE IF EXISTS {t}")
