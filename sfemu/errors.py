"""Salesforce error shapes.

Real clients index `response.json()[0]['errorCode']`, so every REST error is a JSON array; OAuth
errors use `error`/`error_description`. Handlers raise SalesforceError and the server renders it.
"""

from __future__ import annotations

from typing import Any


class SalesforceError(Exception):
    """An error answered the way Salesforce answers it (status, errorCode, message, fields)."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


def not_found() -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_session() -> SalesforceError:
    return SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid",
                           headers={"WWW-Authenticate": "Token"})


def limit_exceeded() -> SalesforceError:
    return SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def method_not_allowed(method: str, allowed: list[str]) -> SalesforceError:
    return SalesforceError(405, "METHOD_NOT_ALLOWED",
                           f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}")


class OAuthError(Exception):
    """Token-endpoint failure: {"error", "error_description"} with HTTP 400 (or 401)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description
