"""What automations see of a save and what they implement: the seam between the DML engine and them.

The engine calls `AutomationHooks` around every save of a triggerable object; the hooks get a
`SaveContext` whose `dml` is only the `Writer` protocol (the engine satisfies it), so automations
can run further DML without importing the engine that calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sfemu.dml.results import DmlError, RowResult

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from sfemu.org import EmulatedOrg
    from sfemu.schema import SObject


class Writer(Protocol):
    """The DML an automation may run from after-save: it joins the save's transaction."""

    def insert(self, obj: SObject, rows: pa.Table) -> list[RowResult]: ...


@dataclass
class SaveContext:
    """What automations see during one save: the staged rows and the transaction they run in.

    `staged` is a DuckDB temp table (on `cursor`) with every stored field of `obj` (canonical names)
    plus "_row" (input position). `old` holds the previous values of the same records (update,
    delete, undelete), also with "_row". Hooks may UPDATE `staged` in before_save, and call
    `fail()` to reject rows; after_save may run further DML through `dml`.
    """

    org: EmulatedOrg
    dml: Writer
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
