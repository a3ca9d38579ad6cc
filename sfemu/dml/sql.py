"""SQL building blocks of the DML engine: text -> typed value, and the checks Salesforce runs on save.

Every input value reaches the engine as text (JSON scalars and CSV cells alike); these expressions
convert a text column to the field's DuckDB type and say, set-wise, which rows are invalid and
with which Salesforce error. Column names come from the schema and are quoted; values are never
pasted into SQL.
"""

from __future__ import annotations

from sfemu.schema import NUMBER_TYPES, Field
from sfemu.store import quote

EMAIL_RE = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
ID_RE = r"^[0-9A-Za-z]{15}([0-9A-Za-z]{3})?$"
DATETIME_RE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
DATE_RE = r"^\d{4}-\d{2}-\d{2}([T ].*)?$"
TIME_RE = r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?$"


def lit(text: str) -> str:
    """A SQL string literal for schema-derived text (labels, names, picklist values)."""
    return "'" + text.replace("'", "''") + "'"


def label(f: Field) -> str:
    """The name Salesforce puts in front of field errors: the field's label."""
    return f.label or f.name


def convert(f: Field, v: str) -> str:
    """DuckDB expression turning the text expression `v` into the field's stored value (NULL if invalid)."""
    t = f.type
    if t == "boolean":
        return (
            f"CASE lower(trim({v})) WHEN 'true' THEN true WHEN '1' THEN true WHEN 'false' THEN false "
            f"WHEN '0' THEN false END"
        )
    if t in NUMBER_TYPES:
        return f"TRY_CAST(trim({v}) AS {f.sql_type})"
    if t == "date":
        return f"TRY_CAST(left(trim({v}), 10) AS DATE)"
    if t == "datetime":  # with a zone: to naive UTC; without: taken as UTC
        zoned = f"regexp_replace(trim({v}), '([+-]\\d{{2}})(\\d{{2}})$', '\\1:\\2')"
        return (
            f"date_trunc('millisecond', CASE WHEN regexp_matches(trim({v}), '(Z|[+-]\\d{{2}}:?\\d{{2}})$') "
            f"THEN timezone('UTC', TRY_CAST({zoned} AS TIMESTAMPTZ)) "
            f"ELSE TRY_CAST(trim({v}) AS TIMESTAMP) END)"
        )
    if t == "time":
        return f"TRY_CAST(rtrim(trim({v}), 'Z') AS TIME)"
    if t == "base64":
        return f"TRY(from_base64(regexp_replace({v}, '\\s', '', 'g')))"
    return v


def type_ok(f: Field, v: str, value: str) -> str:
    """Condition: the text `v` has the shape the field's type needs (`value` = convert(f, v))."""
    t = f.type
    if t in NUMBER_TYPES:
        return f"TRY_CAST(trim({v}) AS DOUBLE) IS NOT NULL"
    if t == "date":
        return f"regexp_matches(trim({v}), {lit(DATE_RE)}) AND {value} IS NOT NULL"
    if t == "datetime":
        return f"regexp_matches(trim({v}), {lit(DATETIME_RE)}) AND {value} IS NOT NULL"
    if t == "time":
        return f"regexp_matches(trim({v}), {lit(TIME_RE)}) AND {value} IS NOT NULL"
    if t in ("boolean", "base64"):
        return f"{value} IS NOT NULL"
    return "true"


def range_ok(f: Field, v: str, value: str) -> str:
    """Condition for numbers: the value fits the field's precision (checked after type_ok)."""
    return f"{value} IS NOT NULL" if f.type in NUMBER_TYPES else "true"


def text_checks(f: Field, col: str) -> list[tuple[str, str, str]]:
    """(failure condition, errorCode, message SQL) for a converted text value in column `col`."""
    checks: list[tuple[str, str, str]] = []
    name = lit(label(f))
    if f.type == "email":
        checks.append(
            (
                f"NOT regexp_matches({col}, {lit(EMAIL_RE)})",
                "INVALID_EMAIL_ADDRESS",
                f"{name} || ': invalid email address: ' || {col}",
            )
        )
    if f.length and f.type not in ("reference", "id") and f.type not in NUMBER_TYPES:
        checks.append(
            (
                f"length({col}) > {int(f.length)}",
                "STRING_TOO_LONG",
                f"{name} || ': data value too large: ' || {col} || ' (max length={int(f.length)})'",
            )
        )
    if f.restricted_picklist and f.picklist_values:
        values = "[" + ", ".join(lit(x) for x in f.picklist_values) + "]"
        if f.type == "multipicklist":
            bad = f"NOT list_has_all({values}, list_transform(string_split({col}, ';'), x -> trim(x)))"
        else:
            bad = f"NOT list_contains({values}, {col})"
        checks.append(
            (
                bad,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{name} || ': bad value for restricted picklist field: ' || {col}",
            )
        )
    return checks


def required_on_write(f: Field) -> bool:
    """Fields a save must leave non-null: required ones and non-nillable ones nobody defaults."""
    if f.system or f.type == "boolean" or f.formula_sql is not None or f.auto_number:
        return False
    return f.required or (not f.nillable and not f.defaulted_on_create and f.createable)


def fold(f: Field, col: str) -> str:
    """Comparison key of a unique / external id value: case-insensitive unless case_sensitive."""
    if (
        f.type in NUMBER_TYPES
        or f.case_sensitive
        or f.type
        not in ("string", "email", "phone", "url", "textarea", "picklist", "combobox", "encryptedstring")
    ):
        return col
    return f"lower({col})"


def id_join(src_col: str, table: str, alias: str) -> list[str]:
    """Two equi-join conditions matching an id text to a table's canonical Id: 18-character ids
    compare case-insensitively, 15-character ids case-sensitively on the first 15 characters."""
    return [
        f"length({src_col}) = 18 AND lower({alias}.{quote('Id')}) = lower({src_col})",
        f"length({src_col}) = 15 AND left({alias}.{quote('Id')}, 15) = {src_col}",
    ]
