"""The config's exception: every problem names the file and the dotted key, so it is fixed at once."""

from __future__ import annotations

from pathlib import Path

from replicator.errors import ConfigProblem


class ConfigError(ConfigProblem):
    """A config problem, located by file and dotted key (`path: key: message`); `key` is "" for the file."""

    def __init__(self, path: Path | str, key: str, message: str) -> None:
        super().__init__(message, key=key)
        self.path = Path(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.key}: {self.message}" if self.key else f"{self.path}: {self.message}"
