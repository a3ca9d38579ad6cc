"""The DML engine: the only code that writes records on behalf of API calls.

REST single records, sObject Collections, /composite, /composite/graph, /composite/tree and Bulk 2.0
ingest all call `dml_engine(org)`. Rows arrive as an Arrow table of raw values (JSON scalars or CSV
strings); conversion and validation run set-wise in DuckDB over a staged temp table (save.py),
automations plug in through `org.extensions["automations"]` (hooks.AutomationHooks), and one transaction
writes the rows. Results come back per input row, in input order.

Value conventions (per column, per row):
- a column that is absent: the field is not supplied (insert: default; update: unchanged);
- Arrow null: set null, unless `empty_means_unchanged` (Bulk CSV), where null and "" leave the
  field unchanged and `null_marker` ("#N/A") sets it null;
- anything else is converted to the field's type (booleans, numbers, ISO dates...). Columns may be
  typed (bool, int, float) or strings; everything is read through its text form.

Partial success works like Salesforce's: rows failing validation are left out; if after-save
automations fail rows, the whole call is rolled back and retried without them (up to 3 times).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from sfemu import recyclebin
from sfemu.datagen import rollup_fields
from sfemu.dml import sql as q
from sfemu.dml.automations import automations
from sfemu.dml.hooks import AutomationHooks, SaveContext
from sfemu.dml.results import NULL_MARKER, ROLLED_BACK, DmlError, RowResult
from sfemu.dml.save import ID, LIVE, SEQ, Save, collect_errors, errors_table
from sfemu.errors import SalesforceError
from sfemu.store import DELETED_AT, Store, quote

if TYPE_CHECKING:
    import duckdb

    from sfemu.org import EmulatedOrg
    from sfemu.schema import Field, SObject

MAX_ATTEMPTS = 3
ID_ERRORS = {
    "MISSING_ARGUMENT": "Id not specified in an {op} call",
    "MALFORMED_ID": "malformed id {v}",
    "INVALID_CROSS_REFERENCE_KEY": "invalid cross reference id",
    "ENTITY_IS_DELETED": "entity is deleted",
    "UNDELETE_FAILED": "Entity is not in the recycle bin",
    "DUPLICATE_VALUE": "Duplicate id in list: {v}",
    "INSUFFICIENT_ACCESS_OR_READONLY": "insufficient access rights on object id",
}
Attempt = Callable[[dict[int, list[DmlError]], bool], tuple[dict[int, RowResult], dict[int, list[DmlError]]]]


class DmlAbort(Exception):
    """Raised by a DML call nested in an open transaction when written rows failed (after-save
    automations): only the outermost transaction can undo them."""

    def __init__(self, error: DmlError) -> None:
        super().__init__(f"{error.status_code}: {error.message}")
        self.error = error


class Dml:
    """Insert, update, upsert, delete and undelete for one org; writes are serialised."""

    def __init__(self, org: EmulatedOrg) -> None:
        self.org = org
        self._local = threading.local()
        self._rollups = rollup_fields(org.schema)

    @property
    def store(self) -> Store:
        return self.org.store  # a reset replaces the org's store

    # --- context: hooks, running user, transactions ---------------------------------------

    def hooks(self) -> AutomationHooks:
        """The org's automations (built from the schema on first use, so they fire after a start or a
        reset without any Tooling call); tests may register their own at org.extensions["automations"]."""
        return automations(self.org)

    @contextmanager
    def acting_as(self, user_id: str | None) -> Iterator[None]:
        """Audit fields and OwnerId of writes in this block name `user_id`; DML run by automations
        inside a call inherits the caller's user this way."""
        previous = getattr(self._local, "user", None)
        self._local.user = user_id or previous
        try:
            yield
        finally:
            self._local.user = previous

    def user_id(self) -> str:
        return getattr(self._local, "user", None) or self.org.admin_user()[0]

    def in_transaction(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around several DML calls (composite allOrNone, graphs, trees): calls inside
        join it, an exception rolls everything back. Nested use joins the open transaction."""
        if self.in_transaction():
            yield
            return
        cur = self.store.cursor()
        with self.store.write_lock:
            cur.execute("BEGIN TRANSACTION")
            self._local.depth = 1
            try:
                yield
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                self._local.depth = 0

    def _run(self, n: int, all_or_none: bool, attempt: Attempt) -> list[RowResult]:
        """Run `attempt` in a transaction with Salesforce's allOrNone and retry semantics."""
        if self.in_transaction():
            results, late = attempt({}, all_or_none)
            if late:
                first = next(iter(late.values()))[0]
                raise DmlAbort(first)
            return _finish(results, n, all_or_none)
        excluded: dict[int, list[DmlError]] = {}
        for _ in range(MAX_ATTEMPTS):
            try:
                with self.transaction():
                    results, late = attempt(excluded, all_or_none)
                    failed = late or any(not r.success for r in results.values())
                    if late or (all_or_none and failed):
                        raise _Retry(results, late)
                return _finish(results, n, all_or_none)
            except _Retry as retry:
                if all_or_none:
                    merged = dict(retry.results)
                    for pos, errs in retry.late.items():
                        merged[pos] = RowResult(None, False, False, errs)
                    return _finish(merged, n, True)
                excluded.update(retry.late)
            except DmlAbort as abort:  # DML run by an automation failed: the whole batch fails
                error = DmlError(
                    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", abort.error.message, abort.error.fields
                )
                return [RowResult(None, False, False, [error]) for _ in range(n)]
        error = DmlError(
            "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
            "Too many retries of batch save in the presence of Apex triggers with failures",
        )
        return [RowResult(None, False, False, excluded.get(i, [error])) for i in range(n)]

    # --- insert / update / upsert ---------------------------------------------------------

    def insert(
        self,
        obj: SObject,
        rows: pa.Table,
        *,
        all_or_none: bool = False,
        empty_means_unchanged: bool = False,
        null_marker: str = NULL_MARKER,
        user_id: str | None = None,
    ) -> list[RowResult]:
        self._check_object(obj, "createable")
        opts = self._opts(empty_means_unchanged, null_marker, user_id)
        with self.acting_as(opts["user_id"]):
            return self._run(
                rows.num_rows,
                all_or_none,
                lambda excluded, aon: self._saves(
                    [("insert", rows, list(range(rows.num_rows)))], obj, opts, excluded, aon
                ),
            )

    def update(
        self,
        obj: SObject,
        rows: pa.Table,
        *,
        all_or_none: bool = False,
        empty_means_unchanged: bool = False,
        null_marker: str = NULL_MARKER,
        user_id: str | None = None,
    ) -> list[RowResult]:
        """`rows` must have an Id column (15 or 18 characters)."""
        self._check_object(obj, "updateable")
        opts = self._opts(empty_means_unchanged, null_marker, user_id)

        def attempt(excluded: dict[int, list[DmlError]], aon: bool):
            table, errors = self._with_ids(obj, rows, "update", opts)
            return self._saves(
                [("update", table, list(range(rows.num_rows)))], obj, opts, {**errors, **excluded}, aon
            )

        with self.acting_as(opts["user_id"]):
            return self._run(rows.num_rows, all_or_none, attempt)

    def upsert(
        self,
        obj: SObject,
        ext_field: str,
        rows: pa.Table,
        *,
        all_or_none: bool = False,
        empty_means_unchanged: bool = False,
        null_marker: str = NULL_MARKER,
        user_id: str | None = None,
    ) -> list[RowResult]:
        """Match on `ext_field` (an external id / idLookup field, or "Id"): no match inserts (created=True),
        one match updates, several fail with DUPLICATE_EXTERNAL_ID."""
        f = obj.field(ext_field)
        if f is None or not (f.external_id or f.id_lookup):
            raise SalesforceError(
                400,
                "INVALID_FIELD",
                f"Provided external ID field does not exist or is not accessible: {ext_field}",
            )
        self._check_object(obj, "createable")
        opts = self._opts(empty_means_unchanged, null_marker, user_id)

        def attempt(excluded: dict[int, list[DmlError]], aon: bool):
            inserts, updates, matched, errors = self._match(obj, f, rows, opts)
            if f.name == "Id":
                updates_table, id_errors = self._with_ids(obj, _take(rows, updates), "upsert", opts, updates)
                errors.update(id_errors)
            else:
                updates_table = _drop(_drop(_take(rows, updates), _column(rows, "Id")), _column(rows, f.name))
                updates_table = updates_table.append_column("Id", pa.array(matched, pa.string()))
            insert_table = _drop(_take(rows, inserts), _column(rows, "Id"))
            return self._saves(
                [("update", updates_table, updates), ("insert", insert_table, inserts)],
                obj,
                opts,
                {**errors, **excluded},
                aon,
            )

        with self.acting_as(opts["user_id"]):
            return self._run(rows.num_rows, all_or_none, attempt)

    def _opts(self, empty_means_unchanged: bool, null_marker: str, user_id: str | None) -> dict[str, Any]:
        return {
            "empty_means_unchanged": empty_means_unchanged,
            "null_marker": null_marker,
            "user_id": user_id or self.user_id(),
        }

    @staticmethod
    def _check_object(obj: SObject, flag: str) -> None:
        if not obj.key_prefix or not getattr(obj, flag):
            raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{obj.name}' is not supported.")

    def _saves(
        self,
        parts: list[tuple[str, pa.Table, list[int]]],
        obj: SObject,
        opts: dict[str, Any],
        excluded: dict[int, list[DmlError]],
        all_or_none: bool,
    ):
        """Stage every part, then (unless allOrNone already failed) write them all."""
        stamp = self.org.clock.stamp().replace(tzinfo=None)
        saves = [
            Save(
                self,
                obj,
                op,
                table,
                positions,
                stamp=stamp,
                excluded=excluded,
                empty_means_unchanged=opts["empty_means_unchanged"],
                null_marker=opts["null_marker"],
                user_id=opts["user_id"],
            )
            for op, table, positions in parts
            if positions
        ]
        late: dict[int, list[DmlError]] = {}
        try:
            for save in saves:
                save.stage()
            failed = any(save.failures for save in saves)
            if not (all_or_none and failed):
                for save in saves:
                    late.update(save.write())
            results = {pos: RowResult(None, False, False, errs) for pos, errs in excluded.items()}
            for save in saves:
                results.update(save.results())
            return results, late
        finally:
            for save in saves:
                save.drop()

    # --- ids and external ids -------------------------------------------------------------

    def resolve(self, obj: SObject, texts: pa.Array, want: str) -> pa.Table:
        """(_row, id, code) for id texts of `obj`: canonical ids, or the error code of each bad one.

        `want`: "live" (update/delete), "deleted" (undelete) or "any" (hard delete).
        """
        cur, store = self.store.cursor(), self.store
        src = pa.table({"_row": pa.array(range(len(texts)), pa.int32()), "v": pc.cast(texts, pa.string())})
        joins = " UNION ALL ".join(
            f"SELECT s._row, t.{ID} AS id, t.{quote(DELETED_AT)} IS NOT NULL AS deleted FROM _dml_ids s "
            f"JOIN {store.table(obj)} t ON {cond}"
            for cond in q.id_join("s.v", store.table(obj), "t")
        )
        deleted_rule = {
            "live": "WHEN m.deleted THEN 'ENTITY_IS_DELETED'",
            "deleted": "WHEN NOT m.deleted THEN 'UNDELETE_FAILED'",
            "any": "",
        }[want]
        cur.register("_dml_ids", src)
        try:
            return cur.execute(
                f"SELECT s._row, s.v, m.id, CASE WHEN s.v IS NULL OR s.v = '' THEN 'MISSING_ARGUMENT' "
                f"WHEN NOT regexp_matches(s.v, {q.lit(q.ID_RE)}) OR left(s.v, 3) <> ? THEN 'MALFORMED_ID' "
                f"WHEN m.id IS NULL THEN 'INVALID_CROSS_REFERENCE_KEY' {deleted_rule} "
                f"WHEN row_number() OVER (PARTITION BY m.id ORDER BY s._row) > 1 THEN 'DUPLICATE_VALUE' "
                f"END AS code "
                f"FROM _dml_ids s LEFT JOIN ({joins}) m ON m._row = s._row ORDER BY s._row",
                [obj.key_prefix],
            ).to_arrow_table()
        finally:
            cur.unregister("_dml_ids")

    def _with_ids(
        self, obj: SObject, rows: pa.Table, op: str, opts: dict[str, Any], positions: list[int] | None = None
    ) -> tuple[pa.Table, dict[int, list[DmlError]]]:
        """`rows` with its Id column replaced by canonical ids, and the errors of rows whose Id is bad."""
        positions = positions if positions is not None else list(range(rows.num_rows))
        col = _column(rows, "Id")
        if col is None:
            texts = pa.nulls(rows.num_rows, pa.string())
        else:
            texts = pc.cast(rows.column(col), pa.string())
            if opts["empty_means_unchanged"]:
                texts = pc.if_else(pc.equal(texts, opts["null_marker"]), pa.scalar(None, pa.string()), texts)
        resolved = self.resolve(obj, texts, "live")
        errors = _id_errors(resolved, positions, op)
        table = _drop(rows, col).append_column("Id", resolved.column("id"))
        return table, errors

    def _match(
        self, obj: SObject, f: Field, rows: pa.Table, opts: dict[str, Any]
    ) -> tuple[list[int], list[int], list[str], dict[int, list[DmlError]]]:
        """Split upsert rows into insert positions, update positions with the ids they match, and errors."""
        n = rows.num_rows
        col = _column(rows, f.name)
        texts = pc.cast(rows.column(col), pa.string()) if col is not None else pa.nulls(n, pa.string())
        if opts["empty_means_unchanged"]:
            texts = pc.if_else(pc.equal(texts, opts["null_marker"]), pa.scalar(None, pa.string()), texts)
        if f.name == "Id":
            blank = pc.fill_null(pc.equal(texts, ""), True).to_pylist()
            return [i for i in range(n) if blank[i]], [i for i in range(n) if not blank[i]], [], {}
        cur, store = self.store.cursor(), self.store
        key_s, key_t = q.fold(f, q.convert(f, "s.v")), q.fold(f, f"t.{quote(f.name)}")
        cur.register("_dml_ext", pa.table({"_row": pa.array(range(n), pa.int32()), "v": texts}))
        try:
            matched = cur.execute(
                f"SELECT s._row, s.v, list(t.{ID} ORDER BY t.{ID}) FILTER (WHERE t.{ID} IS NOT NULL) AS ids, "
                f"count(*) OVER (PARTITION BY {key_s}) AS same "
                f"FROM _dml_ext s LEFT JOIN {store.table(obj)} t "
                f"ON {key_s} = {key_t} AND t.{LIVE} GROUP BY s._row, s.v ORDER BY s._row"
            ).fetchall()
        finally:
            cur.unregister("_dml_ext")
        inserts, updates, ids, errors = [], [], [], {}
        for row, v, found, same in matched:
            if v is None or v == "":
                errors[row] = [DmlError("MISSING_ARGUMENT", f"{f.name} not specified", [f.name])]
            elif same > 1:
                errors[row] = [
                    DmlError("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {v}", [f.name])
                ]
            elif found and len(found) > 1:
                errors[row] = [
                    DmlError(
                        "DUPLICATE_EXTERNAL_ID",
                        f"{q.label(f)}: more than one record found for "
                        f"external id field: [{', '.join(found)}]",
                        [f.name],
                    )
                ]
            elif found:
                updates.append(row)
                ids.append(found[0])
            else:
                inserts.append(row)
        return inserts, updates, ids, errors

    # --- delete / undelete ----------------------------------------------------------------

    def delete(
        self, ids: list[str], *, all_or_none: bool = False, hard: bool = False, user_id: str | None = None
    ) -> list[RowResult]:
        """Soft delete into the recycle bin (cascading to master-detail children), or `hard`."""
        return self._bin_op(ids, "delete", all_or_none, hard, user_id)

    def undelete(
        self, ids: list[str], *, all_or_none: bool = False, user_id: str | None = None
    ) -> list[RowResult]:
        """Restore from the recycle bin, with the children the deletion cascaded to."""
        return self._bin_op(ids, "undelete", all_or_none, False, user_id)

    def _bin_op(
        self, ids: list[str], op: str, all_or_none: bool, hard: bool, user_id: str | None
    ) -> list[RowResult]:
        user = user_id or self.user_id()
        texts = pa.array([None if i is None else str(i) for i in ids], pa.string())
        prefixes = pc.utf8_slice_codeunits(texts, 0, 3)
        groups: dict[str, list[int]] = {}
        bad: dict[int, list[DmlError]] = {}
        for pos, prefix in enumerate(prefixes.to_pylist()):
            obj = self.org.schema.by_prefix(prefix) if prefix else None
            if obj is None:
                bad[pos] = [DmlError("MALFORMED_ID", f"malformed id {ids[pos]}")]
            else:
                groups.setdefault(obj.name, []).append(pos)

        def attempt(excluded: dict[int, list[DmlError]], aon: bool):
            stamp = self.org.clock.stamp().replace(tzinfo=None)
            results: dict[int, RowResult] = {p: RowResult(None, False, False, e) for p, e in bad.items()}
            late: dict[int, list[DmlError]] = {}
            ops = [
                _BinOp(
                    self,
                    self.org.schema.get(name),
                    op,
                    pc.take(texts, pa.array(positions)),
                    positions,
                    hard,
                    stamp,
                    user,
                    excluded,
                )
                for name, positions in groups.items()
            ]
            try:
                for b in ops:
                    b.stage()
                failed = bool(bad) or any(b.failures for b in ops)
                if not (aon and failed):
                    for b in ops:
                        late.update(b.write())
                for b in ops:
                    results.update(b.results())
                return results, late
            finally:
                for b in ops:
                    b.drop()

        with self.acting_as(user):
            return self._run(len(ids), all_or_none, attempt)

    # --- roll-ups -------------------------------------------------------------------------

    def refresh_rollups(self, child: SObject, tables: list[str], stamp: datetime, user_id: str) -> None:
        """Recompute roll-up summaries on the parents of the child rows in `tables` (temp tables with the
        child's fields); parents whose value changes get a new SystemModstamp and LastModifiedDate."""
        cur, store = self.store.cursor(), self.store
        for parent, f, kid, via, summed, fn in self._rollups:
            if kid.name != child.name:
                continue
            arg = f"c.{quote(summed.name)}" if summed is not None else f"c.{ID}"
            agg = f"{fn}({arg})"
            if fn in ("SUM", "COUNT"):
                agg = f"coalesce({agg}, 0)"
            pids = " UNION ".join(f"SELECT {quote(via.name)} AS pid FROM {t}" for t in tables)
            sets = [f"{quote(f.name)} = r.v"]
            params: list = []
            for name, value in (
                ("SystemModstamp", stamp),
                ("LastModifiedDate", stamp),
                ("LastModifiedById", user_id),
            ):
                if parent.field(name) is not None:
                    sets.append(f"{quote(name)} = ?")
                    params.append(value)
            cur.execute(
                f"UPDATE {store.table(parent)} AS p SET {', '.join(sets)} FROM (SELECT a.pid, CAST({agg} AS "
                f"{f.sql_type}) AS v FROM (SELECT DISTINCT pid FROM ({pids})) a "
                f"LEFT JOIN {store.table(kid)} c ON c.{quote(via.name)} = a.pid "
                f"AND c.{LIVE} WHERE a.pid IS NOT NULL GROUP BY a.pid) r WHERE p.{ID} = r.pid AND p.{LIVE} "
                f"AND p.{quote(f.name)} IS DISTINCT FROM r.v",
                params,
            )


class _Retry(Exception):
    """Internal: undo the transaction and report (allOrNone) or retry without the failed rows."""

    def __init__(self, results: dict[int, RowResult], late: dict[int, list[DmlError]]) -> None:
        super().__init__("retry")
        self.results, self.late = results, late


class _BinOp:
    """Delete, hard delete or undelete of one object's ids: staged, checked, then written."""

    def __init__(
        self,
        dml: Dml,
        obj: SObject,
        op: str,
        texts: pa.Array,
        positions: list[int],
        hard: bool,
        stamp: datetime,
        user_id: str,
        excluded: dict[int, list[DmlError]],
    ) -> None:
        self.dml, self.obj, self.op, self.hard = dml, obj, op, hard
        self.store = dml.store
        self.cur: duckdb.DuckDBPyConnection = self.store.cursor()
        self.texts, self.positions, self.stamp, self.user_id = texts, positions, stamp, user_id
        mine = set(positions)
        self.excluded = {p: e for p, e in excluded.items() if p in mine}
        n = next(SEQ)
        self.old, self.err = f"_dml_bin{n}", f"_dml_binerr{n}"
        self.failures: dict[int, list[DmlError]] = {}
        self.ids: dict[int, str] = {}

    def stage(self) -> None:
        cur, store, obj = self.cur, self.store, self.obj
        want = "deleted" if self.op == "undelete" else ("any" if self.hard else "live")
        resolved = self.dml.resolve(obj, self.texts, want)
        resolved = resolved.set_column(0, "_row", pa.array(self.positions, pa.int32()))
        errors_table(cur, self.err)
        flag = "undeletable" if self.op == "undelete" else "deletable"
        for pos, errs in {**_id_errors(resolved, self.positions, self.op), **self.excluded}.items():
            for e in errs:
                cur.execute(
                    f"INSERT INTO {self.err} VALUES (?, 1000, ?, ?, ?)",
                    [pos, e.status_code, e.message, e.fields],
                )
        cur.register("_dml_res", resolved)
        try:
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {self.old} AS SELECT t.* EXCLUDE ({quote(DELETED_AT)}), "
                f"r._row FROM _dml_res r JOIN {store.table(obj)} t ON t.{ID} = r.id "
                f"WHERE r._row NOT IN (SELECT _row FROM {self.err})"
            )
        finally:
            cur.unregister("_dml_res")
        if not getattr(obj, flag):
            self._fail(
                "true", "INSUFFICIENT_ACCESS_OR_READONLY", q.lit(ID_ERRORS["INSUFFICIENT_ACCESS_OR_READONLY"])
            )
        if self.op == "delete":
            for rel in store.schema.children(obj.name):
                if rel.restricted_delete and rel.field.stored:
                    self._fail(
                        f"{ID} IN (SELECT {quote(rel.field.name)} FROM {store.table(rel.child)} "
                        f"WHERE {LIVE})",
                        "DELETE_FAILED",
                        q.lit(
                            f"Your attempt to delete {obj.label} could not be completed "
                            f"because it is associated with the following "
                            f"{rel.child.label_plural.lower()}."
                        ),
                    )
        else:
            for f in obj.stored_fields:
                if f.cascade_delete:
                    parents = " UNION ALL ".join(
                        f"SELECT {ID} FROM {store.table(t)} WHERE {LIVE}" for t in f.reference_to
                    )
                    self._fail(
                        f"{quote(f.name)} NOT IN ({parents})",
                        "UNDELETE_FAILED",
                        q.lit(f"Undelete failed because the {q.label(f)} record is deleted"),
                    )
        hooks = self.dml.hooks()
        if obj.triggerable:
            cur.execute(f"DELETE FROM {self.old} WHERE _row IN (SELECT _row FROM {self.err})")
            ctx = SaveContext(self.dml.org, self.dml, obj, self.op, self.old, self.old, cur)
            hooks.before_save(ctx)
            for pos, errs in ctx.failures.items():
                for e in errs:
                    cur.execute(
                        f"INSERT INTO {self.err} VALUES (?, 5000, ?, ?, ?)",
                        [pos, e.status_code, e.message, e.fields],
                    )
        self.failures = collect_errors(cur, self.err)

    def _fail(self, where: str, code: str, msg: str) -> None:
        self.cur.execute(
            f"INSERT INTO {self.err} SELECT _row, 2000, {q.lit(code)}, {msg}, [] FROM {self.old} "
            f"WHERE {where}"
        )

    def write(self) -> dict[int, list[DmlError]]:
        cur, store, obj = self.cur, self.store, self.obj
        cur.execute(f"DELETE FROM {self.old} WHERE _row IN (SELECT _row FROM {self.err})")
        self.ids = dict(cur.execute(f"SELECT _row, {ID} FROM {self.old}").fetchall())
        if not self.ids:
            return {}
        rows = pa.table(
            {
                "Id": pa.array(list(self.ids.values()), pa.string()),
                "ts": pa.array([self.stamp] * len(self.ids), pa.timestamp("ms")),
            }
        )
        if self.op == "undelete":
            recyclebin.undelete(store, obj, rows)
        elif self.hard:
            recyclebin.hard_delete(store, obj, rows)
        else:
            recyclebin.soft_delete(store, obj, rows)
        late: dict[int, list[DmlError]] = {}
        hooks = self.dml.hooks()
        if obj.triggerable:
            ctx = SaveContext(self.dml.org, self.dml, obj, self.op, self.old, self.old, cur)
            hooks.after_save(ctx)
            late = ctx.failures
        self.dml.refresh_rollups(obj, [self.old], self.stamp, self.user_id)
        return late

    def results(self) -> dict[int, RowResult]:
        return {
            pos: RowResult(None, False, False, self.failures[pos])
            if pos in self.failures
            else RowResult(self.ids.get(pos), True)
            for pos in self.positions
        }

    def drop(self) -> None:
        for t in (self.old, self.err):
            self.cur.execute(f"DROP TABLE IF EXISTS {t}")


def _column(rows: pa.Table, name: str) -> str | None:
    """The table's column for a field name, matched case-insensitively."""
    return next((c for c in rows.column_names if c.lower() == name.lower()), None)


def _take(rows: pa.Table, positions: list[int]) -> pa.Table:
    return rows.take(pa.array(positions, pa.int64()))


def _drop(rows: pa.Table, col: str | None) -> pa.Table:
    return rows.drop_columns([col]) if col is not None else rows


def _id_errors(resolved: pa.Table, positions: list[int], op: str) -> dict[int, list[DmlError]]:
    """Errors of rows whose id did not resolve (codes from Dml.resolve), keyed by input position."""
    out: dict[int, list[DmlError]] = {}
    codes = resolved.column("code").to_pylist()
    texts = resolved.column("v").to_pylist()
    for i, code in enumerate(codes):
        if code is not None:
            message = ID_ERRORS[code].format(op=op, v=texts[i])
            out[positions[i]] = [DmlError(code, message, ["Id"] if code == "MISSING_ARGUMENT" else [])]
    return out


def _finish(results: dict[int, RowResult], n: int, all_or_none: bool) -> list[RowResult]:
    """Results in input order; with allOrNone and any failure, the good rows are rolled back too."""
    ordered = [results[i] for i in range(n)]
    if all_or_none and any(not r.success for r in ordered):
        return [r if not r.success else RowResult(None, False, False, [ROLLED_BACK]) for r in ordered]
    return ordered


def dml_engine(org: EmulatedOrg) -> Dml:
    """The org's DML engine (created on first use, cached in org.extensions["dml"])."""
    engine = org.extensions.get("dml")
    if engine is None:
        engine = org.extensions["dml"] = Dml(org)
    return engine
