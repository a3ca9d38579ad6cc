"""The generic config reader: a section is a dataclass, and a new one needs nothing else.

The sections of later issues (restore, seeding, GDPR, service, scheduler, notifications) will be
read this way, so these tests read a section declared here, as such an issue would declare it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import pytest

from replicator.config import ConfigError, Secret, load_config
from replicator.config.reader import Reader, known_keys
from replicator.config.schema import Range, in_file
from replicator.errors import ConfigProblem, ReplicatorError


@dataclass(frozen=True)
class Notifications:
    """A section as a later issue would add it."""

    channel: Literal["email", "webhook"]
    outbox: Path = field(metadata=in_file("outbox"))
    webhook: Secret | None = None
    share: float = 0.5
    retries: Annotated[int, Range(0, 5)] = 3


def read(raw: dict, environ: dict | None = None) -> Notifications:
    reader = Reader(Path("/etc/replicator/config.toml"), environ or {})
    return reader.section(Notifications, "notifications", raw, {})


def test_a_new_section_is_read_from_its_fields():
    section = read({"channel": "webhook", "webhook_env": "HOOK", "share": 1}, {"HOOK": "https://h"})
    assert (section.channel, section.share, section.retries) == ("webhook", 1.0, 3)
    assert section.webhook is not None and section.webhook.reveal() == "https://h"
    assert section.webhook.key == "notifications.webhook_env"
    assert section.outbox == Path("/etc/replicator/outbox")
    assert known_keys(Notifications) == {"channel", "webhook_env", "share", "retries", "outbox"}


@pytest.mark.parametrize(
    ("raw", "key", "message"),
    [
        ({}, "notifications.channel", "is required"),
        ({"channel": "pigeon"}, "notifications.channel", "must be one of email, webhook (got 'pigeon')"),
        ({"channel": "email", "share": "half"}, "notifications.share", "must be a number (got 'half')"),
        ({"channel": "email", "retries": 9}, "notifications.retries",
         "must be an integer from 0 to 5 (got 9)"),
        ({"channel": "email", "outbox": 3}, "notifications.outbox", "must be a non-empty string (got 3)"),
        ({"channel": "email", "chanel": "x"}, "notifications.chanel",
         "unknown key (allowed: channel, outbox, retries, share, webhook_env)"),
        ({"channel": "email", "webhook": "https://secret"}, "notifications.webhook",
         'secrets may not be written in the config file; put the value in an environment variable and '
         'name it with `webhook_env = "VARIABLE_NAME"`'),
    ],
)
def test_a_new_section_fails_with_file_key_and_reason(raw, key, message):
    with pytest.raises(ConfigError) as info:
        read(raw)
    assert (info.value.key, info.value.message) == (key, message)
    assert str(info.value) == f"/etc/replicator/config.toml: {key}: {message}"


def test_config_error_is_the_config_problem_of_the_error_root(tmp_config):
    with pytest.raises(ConfigProblem) as info:
        load_config(tmp_config("[storage]\npaht = 'x'\n"), environ={})
    error = info.value
    assert isinstance(error, ConfigError) and isinstance(error, ReplicatorError)
    assert error.to_json() == {"kind": "config", "key": "storage.paht",
                               "message": "unknown key (allowed: blob_key_env, blob_key_file, "
                                          "encryption_key_env, encryption_key_file, path)"}
    assert str(error).endswith("config.toml: storage.paht: unknown key (allowed: blob_key_env, "
                               "blob_key_file, encryption_key_env, encryption_key_file, path)")
