"""Loading config.toml: the file's location, and parsing it into a validated `Config`."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from replicator.config.error import ConfigError
from replicator.config.reader import Reader
from replicator.config.sections import Config

DEFAULT_CONFIG = "config.toml"
CONFIG_ENV = "REPLICATOR_CONFIG"


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; secrets are looked up in `environ` (default os.environ)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, "", "is a folder, not a config file") from None
    except PermissionError:
        raise ConfigError(path, "", "cannot be read (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", f"is not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    reader = Reader(path, os.environ if environ is None else environ)
    return reader.section(Config, "", raw, {"file": path})
