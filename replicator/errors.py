"""One exception root for every job, so the CLI and the REST service map failures in one place.

A job raises a `ReplicatorError` subclass with a sentence for a person; the CLI turns it into an
exit code and (under `--json`) an error object, the service into an HTTP status. Messages name
what is wrong (a run, an object, a config key), never a CLI flag: the same error reaches users of
the REST API, who have no flags.
"""

from __future__ import annotations


class ReplicatorError(Exception):
    """A failure a user can act on: a message, optionally the config key at fault, and its codes."""

    exit_code = 1
    http_status = 500
    kind = "error"

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key

    def to_json(self) -> dict[str, str | None]:
        """The error as the CLI's `--json` and the service's error body show it."""
        return {"kind": self.kind, "message": self.message, "key": self.key}


class NotFound(ReplicatorError):
    """A run, object, record, job or endpoint that does not exist."""

    http_status = 404
    kind = "not_found"


class InvalidInput(ReplicatorError):
    """A request that cannot be carried out as asked (bad selection, bad value, empty choice)."""

    http_status = 400
    kind = "invalid_input"


class Locked(ReplicatorError):
    """Another writer holds the store (or the resource) right now; try again when it is done."""

    http_status = 409
    kind = "locked"


class ConfigProblem(ReplicatorError):
    """The settings file (or an environment variable it names) is wrong; `key` says where."""

    http_status = 500
    kind = "config"


class OrgProblem(ReplicatorError):
    """Salesforce refused or failed a call for good."""

    http_status = 502
    kind = "org"


class AuthProblem(OrgProblem):
    """The org refused the credentials: nothing runs against it until someone fixes them."""

    http_status = 502
    kind = "auth"


class BudgetProblem(OrgProblem):
    """The org's API usage reached the job's cap."""

    http_status = 429
    kind = "api_budget"


class StorageProblem(ReplicatorError):
    """The storage folder refused a write (full, read-only, over quota, failing): nothing of the
    interrupted step was committed, and the run says so instead of showing a traceback."""

    http_status = 507
    kind = "storage"
