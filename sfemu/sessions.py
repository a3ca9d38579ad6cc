"""Access tokens and their expiry.

Tokens look like real Salesforce session ids (`<org id>!<opaque>`), expire after a configurable
idle time on the emulator clock, and can be forced to expire after N calls (a fault) so clients'
re-login paths get exercised.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sfemu.clock import Clock


@dataclass
class Session:
    token: str
    user_id: str
    username: str
    created: datetime
    last_used: datetime
    calls: int = 0
    refresh_token: str | None = None
    scopes: list[str] = field(default_factory=lambda: ["api", "refresh_token"])


class Sessions:
    """Issued sessions and refresh tokens of one org."""

    def __init__(self, clock: Clock, org_id: str, timeout_seconds: int = 7200) -> None:
        self.clock = clock
        self.org_id = org_id
        self.timeout = timedelta(seconds=timeout_seconds)
        self.expire_after_calls: int | None = None  # fault: sessions die after N calls
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._refresh: dict[str, tuple[str, str]] = {}  # refresh token -> (user id, username)

    def issue(self, user_id: str, username: str, with_refresh: bool = False) -> Session:
        now = self.clock.now()
        token = f"{self.org_id[:15]}!AR{secrets.token_urlsafe(72)}"
        session = Session(token, user_id, username, now, now)
        if with_refresh:
            session.refresh_token = "5Aep" + secrets.token_urlsafe(60)
            with self._lock:
                self._refresh[session.refresh_token] = (user_id, username)
        with self._lock:
            self._sessions[token] = session
        return session

    def user_for_refresh(self, refresh_token: str) -> tuple[str, str] | None:
        with self._lock:
            return self._refresh.get(refresh_token)

    def touch(self, token: str) -> Session | None:
        """The live session for a token (counting the call), or None if unknown or expired."""
        now = self.clock.now()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            idle_expired = now - session.last_used > self.timeout
            calls_expired = (self.expire_after_calls is not None
                             and session.calls >= self.expire_after_calls)
            if idle_expired or calls_expired:
                del self._sessions[token]
                return None
            session.calls += 1
            session.last_used = now
            return session

    def revoke_all(self) -> int:
        with self._lock:
            n = len(self._sessions)
            self._sessions.clear()
            return n
