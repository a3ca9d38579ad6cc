"""The README's type table is the dialect registry's (datasette's test_docs idea): it fails when one
drifts from the other, and when a type in the registry is not what sqlglot writes into the scripts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlglot import exp

from replicator.sinks.sql.reference import type_table
from replicator.sinks.sql.registry import DIALECTS

README = Path(__file__).parents[2] / "README.md"


def test_readme_type_table_is_rendered_from_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("| kind |")
    table = text[start:text.index("\n\n", start) + 1]
    assert table == type_table(), "README.md's type table differs: paste type_table() into it"


@pytest.mark.parametrize("name", list(DIALECTS))
def test_type_tables_say_what_the_scripts_emit(name: str) -> None:
    """Every spelling in a type table comes back unchanged from sqlglot, so the table (and the README)
    shows the DDL as written (an Oracle BINARY_DOUBLE would come back as DOUBLE PRECISION)."""
    d = DIALECTS[name]
    spellings = [*d.types.values(), d.decimal.format(p=18, s=2)]
    spellings += [template.format(n=40) for _, template in d.text_sizes]
    for spelling in spellings:
        assert exp.DataType.build(spelling, dialect=d.sqlglot).sql(d.sqlglot) == spelling
