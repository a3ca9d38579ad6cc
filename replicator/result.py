"""What every job returns: a typed result that renders itself as text or JSON and knows its exit code.

The CLI prints `text()` or `to_json()` and exits with `exit_code`; the REST service returns
`to_json()` with a 200. One contract, so a command and its route never drift apart.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any


def jsonable(value: Any) -> Any:
    """Plain JSON values from dataclasses, paths, datetimes and decimals (recursively)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


class JobResult:
    """Base of job results (dataclasses): JSON from the fields, text and exit code per job."""

    @property
    def exit_code(self) -> int:
        """0 unless the job says otherwise (e.g. a partial backup)."""
        return 0

    def to_json(self) -> Any:
        """The result as JSON values; a dataclass's public fields by default."""
        return jsonable(self)

    def text(self) -> str:
        """The result for a person reading a terminal."""
        raise NotImplementedError(f"{type(self).__name__} does not render text")
