"""Response header names spelled as Salesforce spells them (`Content-Type`, `Sforce-Limit-Info`).

HTTP says header names are case-insensitive, but real clients index them by Salesforce's spelling:
the Airbyte source's CDK looks `Content-Type` up in a plain dict and mis-parses the Bulk 2.0 answer
when it reads `content-type`. Starlette and uvicorn emit lower-case names, so this ASGI wrapper
rewrites the names of every response start (h11 sends them as given) and adds the `Date` header
itself, since uvicorn's own is lower-case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import formatdate
from typing import Any

__all__ = ["CanonicalHeaders", "canonical"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# Names whose spelling is not "each dash-separated word capitalised".
SPECIAL = {"etag": "ETag", "www-authenticate": "WWW-Authenticate",
           "sforce-numberofrecords": "Sforce-NumberOfRecords", "content-md5": "Content-MD5"}


def canonical(name: str) -> str:
    """Salesforce's spelling of a header name given in any case."""
    lower = name.lower()
    return SPECIAL.get(lower) or "-".join(word[:1].upper() + word[1:] for word in lower.split("-"))


class CanonicalHeaders:
    """Wraps the emulator's ASGI app; serve it with uvicorn's own date and server headers off."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def spelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(canonical(name.decode("latin-1")).encode("latin-1"), value)
                           for name, value in message.get("headers", [])]
                if not any(name == b"Date" for name, _ in headers):  # the app's: the org's clock
                    headers.append((b"Date", formatdate(usegmt=True).encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, spelled)
