"""Injected faults, switchable at start and at run time.

A backup tool is only as good as its behaviour when Salesforce misbehaves, so the emulator can
answer 500/503 at a rate, cut a response body in the middle, answer slowly, expire sessions
after N calls, time out queries on named objects, fail Bulk jobs and refuse the describe of named
objects (as an org does when a permission set change hides an object between two calls). Draws
come from a seeded RNG so a failing test can be replayed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FaultConfig:
    """What to inject. Rates are probabilities per API call (0..1)."""

    error_rate: float = 0.0  # answer an API call with an HTTP error instead of handling it
    error_status: int = 503  # 500 or 503
    reset_rate: float = 0.0  # cut the body of a large response in the middle
    reset_min_bytes: int = 4096  # only bodies at least this large are cut
    slow_ms: int = 0  # delay every API call by this many milliseconds
    session_expire_after: int | None = None  # a session dies after this many calls
    query_timeout_objects: list[str] = field(default_factory=list)  # QUERY_TIMEOUT on these
    bulk_fail_objects: list[str] = field(default_factory=list)  # Bulk jobs on these end Failed
    describe_fail_objects: list[str] = field(default_factory=list)  # describe of these: 404 NOT_FOUND
    seed: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(known))}")
        cfg = cls(**data)
        for name in ("error_rate", "reset_rate"):
            if not 0 <= getattr(cfg, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if cfg.error_status not in (500, 502, 503):
            raise ValueError("error_status must be 500, 502 or 503")
        return cfg


class Faults:
    """The live fault configuration plus its seeded random draws."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.config = config or FaultConfig()
        self._rng = random.Random(self.config.seed)

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)

    def to_json(self) -> dict[str, Any]:
        return asdict(self.config)

    def _draw(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def server_error(self) -> int | None:
        """HTTP status to answer instead of handling this call, or None."""
        return self.config.error_status if self._draw(self.config.error_rate) else None

    def cut_body(self, size: int) -> bool:
        """True when this response body should be cut off mid-way."""
        return size >= self.config.reset_min_bytes and self._draw(self.config.reset_rate)

    def query_times_out(self, object_name: str) -> bool:
        return object_name.lower() in {o.lower() for o in self.config.query_timeout_objects}

    def bulk_job_fails(self, object_name: str) -> bool:
        return object_name.lower() in {o.lower() for o in self.config.bulk_fail_objects}

    def describe_fails(self, object_name: str) -> bool:
        return object_name.lower() in {o.lower() for o in self.config.describe_fail_objects}
