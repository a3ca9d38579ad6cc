"""How a client reaches an emulator: a requests session trusting its CA, and a simple-salesforce login.

Login hosts are hard-coded in simple-salesforce (`https://login.salesforce.com`), so the session
sends those to the emulator; the leaf certificate also names them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
API_VERSION = "62.0"


class LoginRedirect(HTTPAdapter):
    """Send requests for Salesforce's login hosts to the emulator instead."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        if parts.hostname in LOGIN_HOSTS:
            request.url = self.base_url + (request.url or "")[len(f"{parts.scheme}://{parts.netloc}"):]
        return super().send(request, *args, **kwargs)


def emulator_session(base_url: str, ca_path: str) -> requests.Session:
    """A requests session that trusts the emulator's CA and reaches it for login.salesforce.com.

    trust_env is off because REQUESTS_CA_BUNDLE in the environment would override `verify`.
    """
    session = requests.Session()
    session.verify = ca_path
    session.trust_env = False
    for host in LOGIN_HOSTS:
        session.mount(f"https://{host}", LoginRedirect(base_url))
    return session


def login(info: dict[str, Any], session: requests.Session | None = None, version: str = API_VERSION) -> Any:
    """simple-salesforce logged in with the OAuth password grant, exactly as a user configures it."""
    from simple_salesforce import Salesforce

    return Salesforce(
        username=info["username"], password=info["password"], consumer_key=info["client_id"],
        consumer_secret=info["client_secret"], domain="test" if info["org_type"] == "sandbox" else "login",
        session=session or emulator_session(info["base_url"], info["ca_path"]), version=version,
    )
