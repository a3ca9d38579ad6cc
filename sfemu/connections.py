"""HTTP/1.1 connections a client cannot hold open without finishing its request.

uvicorn closes a connection idle *between* requests (`timeout_keep_alive`), but not one that opens
and sends nothing, or sends its headers or body a byte at a time (slowloris): each such client
holds a socket and a coroutine for ever, and enough of them stop the emulator answering anyone.
Here a client must deliver each whole request (head and body) within `request_seconds` of the
connection opening or of the previous answer; otherwise the connection is closed. The time the
emulator itself takes to answer (a slow fault, a big query) never counts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_REQUEST_SECONDS = 60.0


class _DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol plus one timer per request; see the module docstring."""

    request_seconds = DEFAULT_REQUEST_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        """The request is not all here in time: close (a request already received is being answered)."""
        self._deadline = None
        if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self.transport.close()


def deadline_protocol(request_seconds: float) -> type[H11Protocol]:
    """The protocol class to give uvicorn (`http=`) for a given request deadline."""
    return type("DeadlineProtocol", (_DeadlineProtocol,), {"request_seconds": request_seconds})
