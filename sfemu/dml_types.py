"""Result and hook types of the DML engine (see dml.py), kept apart so the engine's helpers can share them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import duckdb

    from sfemu.dml import Dml
    from sfemu.org import EmulatedOrg
    from sfemu.schema import SObject

NULL_MARKER = "#N/A"  # Bulk CSV: "set this field to null"


@dataclass
class DmlError:
    """One error of one row, as Salesforce reports it (statusCode, message, fields)."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """sObject Collections / tree shape: {"statusCode", "message", "fields"}."""
        return {"statusCode": self.status_code, "message": self.message, "fields": list(self.fields)}

    def to_rest(self) -> dict[str, Any]:
        """REST error-array item shape: {"message", "errorCode", "fields"}."""
        return {"message": self.message, "errorCode": self.status_code, "fields": list(self.fields)}


@dataclass
class RowResult:
    """The outcome of one input row: the record id (when written), success, created (upsert/insert)."""

    id: str | None
    success: bool
    created: bool = False
    errors: list[DmlError] = field(default_factory=list)


@dataclass
class SaveContext:
    """What automations see during one save: the staged rows and the transaction they run in.

    `staged` is a DuckDB temp table (on `cursor`) with every stored field of `obj` (canonical names)
    plus "_row" (input position). `old` holds the previous values of the same records (update,
    delete, undelete), also with "_row". Hooks may UPDATE `staged` in before_save, and call
    `fail()` to reject rows; after_save may run further DML through `dml`.
    """

    org: EmulatedOrg
    dml: Dml
    obj: SObject
    op: str  # insert | update | delete | undelete
    staged: str
    old: str | None
    cursor: duckdb.DuckDBPyConnection
    failures: dict[int, list[DmlError]] = field(default_factory=dict)

    def fail(
        self, rows: str | list[int], status_code: str, message: str, fields: list[str] | None = None
    ) -> None:
        """Mark rows failed: a list of `_row` positions, or a SQL boolean condition over `staged`
        (e.g. `"Amount" < 0`; column names quoted) selecting them."""
        if isinstance(rows, str):
            found = self.cursor.execute(f'SELECT "_row" FROM {self.staged} WHERE {rows}').fetchall()
            positions = [r[0] for r in found]
        else:
            positions = list(rows)
        for pos in positions:
            self.failures.setdefault(int(pos), []).append(DmlError(status_code, message, list(fields or [])))


class AutomationHooks(Protocol):
    """Registered at org.extensions["automations"] by the automations module."""

    def before_save(self, ctx: SaveContext) -> None: ...

    def after_save(self, ctx: SaveContext) -> None: ...
