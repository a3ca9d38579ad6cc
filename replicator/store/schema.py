"""Column types, schema evolution and the SQL of the snapshot store's views and macros.

Why a module of its own: the store's SQL surface (history tables, `<Object>` views, `<Object>_as_of`
and `<Object>_history` macros) is what analysts and other jobs read, so its shape lives in one place.

Type evolution rule (Salesforce admins do change field types): the history table keeps ONE column per
field, named exactly like the field, so as-of queries and history stay continuous. When describe
gives a new type, the column takes the narrowest type that holds old and new values losslessly:
INTEGER -> BIGINT / DOUBLE / wide enough DECIMAL, DECIMAL(p,s) -> DECIMAL with enough integer and
fraction digits, and VARCHAR when nothing narrower holds both (every value keeps its text form). A
new value that already fits the column (e.g. BIGINT -> INTEGER) leaves the column alone. There are
no `<Field>__<type>` side columns: they would split one field's history across columns.
"""

from __future__ import annotations

import re

import pyarrow as pa

from replicator.salesforce.catalog import FieldPlan, ObjectPlan, arrow_type

# Columns the store adds to every history table. `_key` is a BIGINT read from the Id's record
# number; DuckDB's zonemaps prune on it (they keep only 8-byte string prefixes, and Salesforce Ids of
# one object share their first 8 characters), which makes one record's history ~4x faster.
META_COLUMNS = ("_valid_from", "_valid_to", "_run_id", "_deleted", "_key")
META_DDL = ('"_valid_from" TIMESTAMPTZ NOT NULL, "_valid_to" TIMESTAMPTZ, "_run_id" INTEGER NOT NULL, '
            '"_deleted" BOOLEAN NOT NULL, "_key" BIGINT')
VARCHAR = "VARCHAR"
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_INT_DIGITS = {"INTEGER": 10, "BIGINT": 19}
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def quote(name: str) -> str:
    """A quoted SQL identifier: Salesforce names are kept verbatim (case, `__c`)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal, for the few places DuckDB takes no parameters (ATTACH, view bodies)."""
    return "'" + text.replace("'", "''") + "'"


def duckdb_type(dt: pa.DataType) -> str:
    """The DuckDB column type for a staged Arrow type, spelled as duckdb_columns() reports it."""
    if pa.types.is_string(dt) or pa.types.is_large_string(dt):
        return VARCHAR
    if pa.types.is_boolean(dt):
        return "BOOLEAN"
    if pa.types.is_int32(dt):
        return "INTEGER"
    if pa.types.is_int64(dt):
        return "BIGINT"
    if pa.types.is_floating(dt):
        return "DOUBLE"
    if pa.types.is_decimal(dt):
        return f"DECIMAL({dt.precision},{dt.scale})"
    if pa.types.is_date(dt):
        return "DATE"
    if pa.types.is_timestamp(dt):
        return "TIMESTAMP WITH TIME ZONE"
    if pa.types.is_time(dt):
        return "TIME"
    raise ValueError(f"no snapshot column type for Arrow type {dt}")


def plan_columns(plan: ObjectPlan) -> dict[str, str]:
    """Field name -> DuckDB type of everything the store keeps for an object.

    The blob field (e.g. ContentVersion.VersionData) is not an included field, since its bytes go to
    the blob store, but its staged value (the sha256 of the body) is kept so a version says which
    bytes it had.
    """
    fields = list(plan.included_fields)
    if plan.blob_field and all(f.name != plan.blob_field for f in fields):
        fields.append(FieldPlan(name=plan.blob_field, type="base64", included=True))
    return {f.name: duckdb_type(arrow_type(f)) for f in fields}


def _decimal(t: str) -> tuple[int, int] | None:
    m = _DECIMAL.fullmatch(t)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _holds(wide: str, narrow: str) -> bool:
    """True if every value of type `narrow` casts into `wide` without loss."""
    if wide in (narrow, VARCHAR):
        return True
    if narrow == "INTEGER" and wide in ("BIGINT", "DOUBLE"):
        return True
    dw = _decimal(wide)
    if dw is None:
        return False
    if narrow in _INT_DIGITS:
        return dw[0] - dw[1] >= _INT_DIGITS[narrow]
    dn = _decimal(narrow)
    return dn is not None and dw[1] >= dn[1] and dw[0] - dw[1] >= dn[0] - dn[1]


def widened(old: str, new: str) -> str:
    """The column type that holds values of both `old` and `new` (see the module docstring)."""
    if _holds(old, new):
        return old
    if _holds(new, old):
        return new
    do, dn = _decimal(old), _decimal(new)
    if do and dn:
        scale = max(do[1], dn[1])
        digits = max(do[0] - do[1], dn[0] - dn[1]) + scale
        if digits <= 38:
            return f"DECIMAL({digits},{scale})"
    return VARCHAR


def history_ddl(obj: str, columns: dict[str, str]) -> str:
    cols = ", ".join(f"{quote(name)} {sql_type}" for name, sql_type in columns.items())
    return f"CREATE TABLE hist.{quote(obj)} ({cols}, {META_DDL})"


def key_expr(id_sql: str) -> str:
    """SQL for `_key`: the Id's 10 record-number characters (positions 6-15) read as base 62.

    Salesforce Ids are base 62 in ASCII order, so the key grows with the Id. Any other string still
    gets a deterministic key, which is all the lookups (`_key = key(x) AND "Id" = x`) need.
    """
    terms = [f"(instr('{_BASE62}', substr({id_sql}, {6 + k}, 1)) - 1)::BIGINT * {62 ** (9 - k)}"
             for k in range(10)]
    return " + ".join(terms)


# Helper macros in main: the run timestamp an as-of argument stands for, and the Id key.
HELPER_MACROS = (
    # A run id (anything that reads as an INTEGER) or a timestamp/date (anything that reads as one).
    "CREATE OR REPLACE MACRO main._as_of_ts(_x) AS coalesce("
    "(SELECT run_ts FROM main.runs WHERE run_id = TRY_CAST(_x::VARCHAR AS INTEGER)), "
    "TRY_CAST(_x::VARCHAR AS TIMESTAMPTZ))",
    f"CREATE OR REPLACE MACRO main._sf_key(_id) AS {key_expr('_id')}",
)


def excluded_meta() -> str:
    return ", ".join(quote(c) for c in META_COLUMNS)


def as_of_select(obj: str, ts_sql: str, *, meta: bool = False) -> str:
    """Records of `obj` that existed (not deleted) at the instant `ts_sql`; metadata columns removed
    unless `meta`.

    Validity is [_valid_from, _valid_to) with both bounds set to run timestamps, so "as of run N"
    (ts = run N's run_ts) is exactly the state right after run N committed.
    """
    columns = "*" if meta else f"* EXCLUDE ({excluded_meta()})"
    return (f"SELECT {columns} FROM hist.{quote(obj)} "
            f"WHERE NOT _deleted AND _valid_from <= {ts_sql} AND (_valid_to IS NULL OR _valid_to > {ts_sql})")


def object_sql(obj: str) -> list[str]:
    """(Re)create the current-state view and the as-of and history macros of one object."""
    q = quote(obj)
    return [
        f"CREATE OR REPLACE VIEW main.{q} AS SELECT * EXCLUDE ({excluded_meta()}) "
        f"FROM hist.{q} WHERE _valid_to IS NULL AND NOT _deleted",
        f"CREATE OR REPLACE MACRO main.{quote(obj + '_as_of')}(_x) AS TABLE "
        + as_of_select(obj, "main._as_of_ts(_x)"),
        # 15-character Ids (as in Salesforce URLs) match their 18-character form.
        f"CREATE OR REPLACE MACRO main.{quote(obj + '_history')}(_id) AS TABLE "
        f"SELECT * EXCLUDE (_key) FROM hist.{q} WHERE _key = main._sf_key(_id) "
        f"AND (\"Id\" = _id OR (length(_id) = 15 AND \"Id\"[1:15] = _id)) ORDER BY _valid_from",
    ]


def objects_view(objects: list[str]) -> str:
    """main.objects: one row per backed-up object with its current, deleted and version counts."""
    if not objects:
        return ("CREATE OR REPLACE VIEW main.objects AS SELECT NULL::VARCHAR AS object, "
                "0::BIGINT AS records, 0::BIGINT AS deleted, 0::BIGINT AS versions, "
                "NULL::INTEGER AS last_run WHERE false")
    parts = [
        f"SELECT {literal(obj)} AS object, "
        "count(*) FILTER (WHERE _valid_to IS NULL AND NOT _deleted) AS records, "
        "count(*) FILTER (WHERE _valid_to IS NULL AND _deleted) AS deleted, "
        f"count(*) AS versions, max(_run_id) AS last_run FROM hist.{quote(obj)}"
        for obj in objects
    ]
    return "CREATE OR REPLACE VIEW main.objects AS " + " UNION ALL ".join(parts)
