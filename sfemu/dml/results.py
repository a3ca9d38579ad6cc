"""Per-row outcomes of DML calls, shared by the engine, its saves, automations and the API modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


ROLLED_BACK = DmlError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)
