"""The neutral type model of a stored column, from the describe recorded with each run.

Every reader of the store (exports to SQL and CSV, endpoint loads, later the loader into orgs)
maps these kinds to its own types; none of them derives types from DuckDB's DDL, which loses the
Salesforce lengths and precisions.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("text", "bool", "int", "bigint", "decimal", "double", "date", "datetime", "time", "blob")


@dataclass(frozen=True)
class ColumnType:
    """One column of an exported table: the Salesforce-ish kind plus describe sizes (0 = unknown)."""

    name: str
    kind: str  # one of KINDS
    length: int = 0
    precision: int = 0
    scale: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown column kind {self.kind!r} for {self.name}")
