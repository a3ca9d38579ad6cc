"""One emulated org: its schema, records, clock, sessions, limits and faults together.

Everything a request handler needs hangs off this object, so the HTTP layer stays a thin
translation of Salesforce's protocol onto it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfemu.clock import Clock
from sfemu.faults import FaultConfig, Faults
from sfemu.ids import make_id
from sfemu.limits import ApiLimits
from sfemu.schema import STANDARD_SCHEMA, Schema
from sfemu.sessions import Sessions
from sfemu.store import Store


@dataclass
class OrgSettings:
    """How an org is created: identity, size, credentials and limits."""

    state_dir: Path
    seed: int = 42
    scale: int = 2000
    counts: dict[str, int] = field(default_factory=dict)
    files: bool = True
    org_type: str = "production"  # production | sandbox
    schema_files: list[Path] = field(default_factory=list)
    username: str = "admin@demo.replicator.local"
    password: str = "demo-password"
    security_token: str = "DEMOTOKEN"
    client_id: str = "3MVG9demo.replicator.emulator"
    client_secret: str = "demo-client-secret"
    jwt_public_key: Path | None = None  # PEM certificate or public key that verifies JWT bearer assertions
    session_seconds: int = 7200
    api_limit: int = 15000
    faults: FaultConfig = field(default_factory=FaultConfig)

    @property
    def sandbox(self) -> bool:
        return self.org_type == "sandbox"


class EmulatedOrg:
    """The state behind one emulator instance."""

    def __init__(self, settings: OrgSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        # What the org was started with: a reset without arguments goes back to exactly this.
        self.initial = (settings.seed, settings.scale, dict(settings.counts))
        self.clock = clock or Clock()
        schema_files = settings.schema_files or [STANDARD_SCHEMA]
        self.schema = Schema.load(*schema_files)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.schema, self.clock, settings.state_dir / "org.duckdb")
        self.org_id = make_id("00D", 1)
        self.instance_name = "CS42" if settings.sandbox else "NA224"
        self.sessions = Sessions(self.clock, self.org_id, settings.session_seconds)
        self.limits = ApiLimits(self.clock, settings.api_limit)
        self.faults = Faults(settings.faults)
        self.extensions: dict[str, Any] = {}  # per-feature state (query locators, bulk jobs...)

    @property
    def spool_dir(self) -> Path:
        """Where query results are materialised (query locators, Bulk results)."""
        path = self.settings.state_dir / "spool"
        path.mkdir(exist_ok=True)
        return path

    def admin_user(self) -> tuple[str, str]:
        """(user id, username) of the API user: the first User record."""
        cur = self.store.cursor()
        row = cur.execute('SELECT "Id", "Username" FROM "User" ORDER BY "Id" LIMIT 1').fetchone()
        if row is None:
            return make_id("005", 1), self.settings.username
        return row[0], self.settings.username
