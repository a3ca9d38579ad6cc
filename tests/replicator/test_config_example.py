"""config.example.toml is the user's reference: it names every key the reader accepts, and it loads.

Why: the reader's keys come from the section dataclasses, so a new field is a new key; this test
fails until the example documents it. A key counts as documented when the example has a line for
it, set (`key = value`) or commented out (`# key = value`) under a `[table]` or `# [table]` header.
Commented-out lines are working examples, so uncommented they must load too; a named table
(`[orgs.prod]`) stands for every `orgs.*`.
"""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from replicator.config import Config, known_keys, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
# A table header or a key line, set or commented out; prose comments match neither.
_EXAMPLE_LINE = re.compile(r"^#?\s*(\[[\w.]+\]|\w+\s*=.*)$")


def uncommented(text: str) -> str:
    """The example with every commented-out header and key line switched on, and no prose."""
    return "\n".join(m.group(1) for line in text.splitlines() if (m := _EXAMPLE_LINE.match(line))) + "\n"


def dotted(table: dict[str, Any], prefix: str = "") -> set[str]:
    """Every leaf key of a TOML document, dotted (`orgs.demo.auth`)."""
    keys: set[str] = set()
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        keys |= dotted(value, key) if isinstance(value, dict) else {key}
    return keys


def undocumented(text: str) -> list[str]:
    """Keys the reader accepts (as `orgs.*.auth`) that no line of the example shows."""
    shown = dotted(tomllib.loads(uncommented(text)))
    return sorted(key for key in known_keys(Config) if not any(fnmatchcase(s, key) for s in shown))


def test_example_documents_every_key():
    assert undocumented(EXAMPLE.read_text(encoding="utf-8")) == []


def test_example_loads_as_is_and_with_every_example_switched_on(tmp_path):
    cfg = load_config(EXAMPLE, environ={})
    assert set(cfg.orgs) == {"demo"} and set(cfg.jobs) == {"daily"}
    switched_on = tmp_path / "config.toml"
    switched_on.write_text(uncommented(EXAMPLE.read_text(encoding="utf-8")), encoding="utf-8")
    cfg = load_config(switched_on, environ={})
    assert set(cfg.orgs) == {"demo", "prod", "uat", "integration"}
    assert set(cfg.jobs) == {"daily", "hot"}
    assert set(cfg.endpoints) == {"warehouse", "reporting"}


@pytest.mark.parametrize("key", sorted(known_keys(Config)))
def test_a_key_missing_from_the_example_is_reported(key):
    name = key.rsplit(".", 1)[-1]
    text = EXAMPLE.read_text(encoding="utf-8")
    without = "\n".join(line for line in text.splitlines() if not re.match(rf"^#?\s*{name}\s*=", line))
    assert key in undocumented(without)


def test_known_keys_follow_the_sections():
    keys = known_keys(Config)
    assert {"storage.path", "orgs.*.auth", "orgs.*.password_env", "orgs.*.private_key_file",
            "jobs.*.objects.include", "endpoints.*.schema"} <= keys
    assert not {"orgs.*.name", "path", "orgs.*.password"} & keys
