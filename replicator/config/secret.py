"""Secrets named by the config and read from the environment, masked wherever they are printed.

Why a type of its own: the value must reach exactly one call (the login) and never a log line, a
repr or `config show`; a `str` would leak through any f-string.
"""

from __future__ import annotations

from pathlib import Path

from replicator.config.error import ConfigError

MASK = "***"


class Secret:
    """A secret read from an environment variable; prints as `***` everywhere (str, repr, f-strings)."""

    __slots__ = ("_value", "env", "key", "path")

    def __init__(self, env: str, value: str | None, *, path: Path | str = "", key: str = "") -> None:
        self.env = env
        self._value = value
        self.path = Path(path)
        self.key = key

    @property
    def is_set(self) -> bool:
        return bool(self._value)

    def reveal(self) -> str:
        """The plain value, for the one call that sends it to Salesforce; never log the result."""
        if not self._value:
            raise ConfigError(self.path, self.key, f"environment variable {self.env} is not set or empty")
        return self._value

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__
