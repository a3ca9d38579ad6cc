"""What Bulk API 2.0 query jobs refuse (sf_api.md 4.1), with the codes and texts clients match on.

airbyte string-matches `Selecting compound data not supported in Bulk Query` and INVALIDENTITY's
`is not supported by the Bulk API`, then falls back to REST, so those two texts are exact.
"""

from __future__ import annotations

from sfemu.soql import ast
from sfemu.soql.compiled import CompiledQuery
from sfemu.soql.errors import SoqlError

_RESTRICTION = "Implementation restriction: "


def check_bulk(query: ast.Query, compiled: CompiledQuery) -> None:
    """Raise the Bulk API 2.0 job-creation error for a query it cannot run."""
    obj = compiled.sobject
    if not obj.bulk_supported:
        raise SoqlError("INVALIDENTITY", f"Entity '{obj.name}' is not supported by the Bulk API.")
    if compiled.children:
        raise SoqlError("API_ERROR",
                        "Aggregate Relationships not supported in Bulk V2 Query with CSV content type")
    if any(isinstance(i, ast.TypeOf) for i in query.select):
        raise SoqlError("API_ERROR", f"{_RESTRICTION}TYPEOF is not supported in Bulk API 2.0 queries")
    if compiled.count_only or compiled.aggregate:
        what = "GROUP BY" if query.group_by else "Aggregate functions such as COUNT()"
        raise SoqlError("API_ERROR", f"{_RESTRICTION}{what} not supported in Bulk API 2.0 queries")
    if query.offset is not None:
        raise SoqlError("API_ERROR", f"{_RESTRICTION}OFFSET is not supported in Bulk API 2.0 queries")
    kinds = {c.kind for c in compiled.columns}
    if "compound" in kinds:
        raise SoqlError("API_ERROR", "Selecting compound data not supported in Bulk Query")
    if "blob" in kinds:
        raise SoqlError("API_ERROR", "Selecting binary data not supported in Bulk Query")
