"""One emulated org: its schema, records, clock, sessions, limits and faults together.

Everything a request handler needs hangs off this object, so the HTTP layer stays a thin
translation of Salesforce's protocol onto it. The org also provisions itself: generation is the
slow part of a start, so the generated org survives restarts (a marker file in the state
directory records what was generated, and the data is regenerated only when the requested org
differs, on --reset-data, or when the control API resets the org).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sfemu.clock import Clock
from sfemu.faults import FaultConfig, Faults
from sfemu.ids import make_id
from sfemu.limits import ApiLimits
from sfemu.schema import STANDARD_SCHEMA, Schema
from sfemu.sessions import Sessions
from sfemu.store import Store

MARKER = "generated.json"
DB_FILE = "org.duckdb"


@dataclass
class OrgSettings:
    """How an org is created: identity, size, credentials and limits."""

    state_dir: Path
    seed: int = 42
    scale: int = 2000
    counts: dict[str, int] = field(default_factory=dict)
    files: bool = True
    org_type: str = "production"  # production | sandbox
    sandbox_type: str = "partial"  # developer | developer_pro | partial | full: sets DataStorageMB
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
        self.store = Store(self.schema, self.clock, settings.state_dir / DB_FILE)
        self.org_id = make_id("00D", 1)
        self.instance_name = "CS42" if settings.sandbox else "NA224"
        self.sessions = Sessions(self.clock, self.org_id, settings.session_seconds)
        self.limits = ApiLimits(self.clock, settings.api_limit)
        self.faults = Faults(settings.faults)
        self.extensions: dict[str, Any] = {}  # per-feature state (query locators, bulk jobs...)
        self.control_token: str | None = None  # the X-Emulator-Token the control API requires, if any

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

    def reset(self, seed: int, scale: int, counts: dict[str, int], now: datetime) -> dict[str, int]:
        """Regenerate the records from a new seed, scale and counts at `now`, and forget all run-time
        state (sessions, faults, per-feature state, the call ledger) as if the org were started anew.

        Returns the generated record counts.
        """
        s = self.settings
        s.seed, s.scale, s.counts = seed, scale, dict(counts)
        if self.extensions.get("fields_added"):  # fields added at run time go with the reset
            self.schema = Schema.load(*(s.schema_files or [STANDARD_SCHEMA]))
        self.extensions.clear()  # query locators, bulk jobs and any other per-feature state
        self.sessions.revoke_all()
        self.faults.configure(s.faults)
        self.clock.set(now)
        generated = self.regenerate(now)
        self.limits.reset()
        self.limits.daily_max = s.api_limit
        return generated

    def regenerate(self, start: datetime | None = None) -> dict[str, int]:
        """Throw the records away and generate them again.

        A new Store on a new file is simpler and faster than deleting every row, and it restarts the
        id counters; in-flight requests on the old store fail, as they would during a real outage.
        """
        old = self.store
        with old.write_lock:
            old.close()
            (self.settings.state_dir / MARKER).unlink(missing_ok=True)
            _remove_db(self.settings.state_dir)
            self.store = Store(self.schema, self.clock, self.settings.state_dir / DB_FILE)
        return generate_data(self, start)


# --- provisioning -----------------------------------------------------------------------------


def generation_params(settings: OrgSettings) -> dict[str, Any]:
    """What decides the generated data; a different value means the stored org is not the one asked for."""
    return {"seed": settings.seed, "scale": settings.scale, "counts": dict(sorted(settings.counts.items())),
            "files": settings.files, "org_type": settings.org_type,
            "schema_files": [str(p) for p in settings.schema_files]}


def open_org(settings: OrgSettings, reset_data: bool = False) -> tuple[EmulatedOrg, bool]:
    """The org of a state directory, generating its data unless the same org is already there.

    Returns (org, generated).
    """
    marker = settings.state_dir / MARKER
    stored = json.loads(marker.read_text()) if marker.exists() else None
    fresh = reset_data or stored != generation_params(settings)
    if fresh:
        _remove_db(settings.state_dir)
        marker.unlink(missing_ok=True)
    org = EmulatedOrg(settings)
    if fresh:
        generate_data(org)
    return org, fresh


def generate_data(org: EmulatedOrg, start: datetime | None = None) -> dict[str, int]:
    """Fill the (empty) store from the org's seed and scale, then record the marker.

    `start` is the org's "now" for the generated history; the same start, seed and scale give
    identical records.
    """
    from sfemu import datagen  # the generator is heavy and only needed here

    s = org.settings
    counts = datagen.generate(org.store, seed=s.seed, scale=s.scale, counts=dict(s.counts),
                              start=start or org.clock.now(), files=s.files, sandbox=s.sandbox)
    (s.state_dir / MARKER).write_text(json.dumps(generation_params(s)))
    return counts


def _remove_db(state_dir: Path) -> None:
    for name in (DB_FILE, DB_FILE + ".wal"):
        (state_dir / name).unlink(missing_ok=True)
