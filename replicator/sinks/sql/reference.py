"""The type table of the README's "Exports" section, rendered from the dialect registry.

Why generated: a hand-written table drifted from what the scripts emit (it once said DOUBLE PRECISION
where the code asked for BINARY_DOUBLE). A test renders this table and fails when README.md differs.
"""

from __future__ import annotations

from replicator.sinks.sql.dialect import SqlDialect
from replicator.sinks.sql.registry import DIALECTS

__all__ = ["KIND_LABELS", "type_table"]

# Our column kinds in table order, labelled with the Salesforce field types they hold.
KIND_LABELS = {
    "text": "text (length n)", "bool": "boolean", "int": "int", "bigint": "long", "decimal": "currency",
    "double": "double, percent", "date": "date", "datetime": "datetime (UTC, ms)", "time": "time",
    "blob": "file body",
}


def _text_cell(d: SqlDialect) -> str:
    parts = [template.format(n="n") + (f" up to {limit:,}" if limit else "")
             for limit, template in d.text_sizes]
    if len(parts) > 1:
        parts[-1] = "else " + parts[-1]
    return ", ".join(parts)


def _cell(d: SqlDialect, kind: str) -> str:
    if kind == "text":
        sql_type = _text_cell(d)
    elif kind == "decimal":
        sql_type = d.decimal.format(p="p", s="s")
    else:
        sql_type = d.types[kind]
    return sql_type + d.type_notes.get(kind, "")


def type_table() -> str:
    """The Markdown table: one row per kind, one column per registered dialect."""
    dialects = list(DIALECTS.values())
    lines = ["| kind | " + " | ".join(d.title for d in dialects) + " |",
             "|---|" + "---|" * len(dialects)]
    for kind, label in KIND_LABELS.items():
        lines.append(f"| {label} | " + " | ".join(_cell(d, kind) for d in dialects) + " |")
    return "\n".join(lines) + "\n"
