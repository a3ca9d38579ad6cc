"""Careless or hostile config files (issue 13): each gets one clear line naming the file and key, no
traceback, and nothing is created on disk; names cannot walk out of the storage folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from replicator.cli import cli

BASE = """[storage]
path = "var"

[orgs.demo]
login_url = "https://127.0.0.1:8443"
auth = "password"
username = "a@b.c"
password_env = "PW"

[jobs.daily]
org = "demo"
kind = "daily"
"""

CASES = [
    # (replace, with, key in the message, words of the message)
    ("[jobs.daily]", '[jobs."../../x"]', "jobs.../../x", "names are identifiers"),
    ("[orgs.demo]", '[orgs."a b"]', "orgs.a b", "names are identifiers"),
    ("https://127.0.0.1:8443", "https://", "orgs.demo.login_url", "followed by a host"),
    ("https://127.0.0.1:8443", "https:///x", "orgs.demo.login_url", "followed by a host"),
    ('auth = "password"', 'ca_bundle = "absent.pem"\nauth = "password"', "orgs.demo.ca_bundle",
     "does not exist"),
    ('auth = "password"\nusername = "a@b.c"\npassword_env = "PW"',
     'auth = "jwt_bearer"\nclient_id = "x"\nusername = "a@b.c"\nprivate_key_file = "keys"',
     "orgs.demo.private_key_file", "is a folder, not a file"),
    ('path = "var"', 'path = "afile"', "storage.path", "is a file, not a folder"),
]


def check(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "check"], catch_exceptions=False)
    return result.exit_code, result.output


def listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*"))


@pytest.mark.parametrize(("old", "new", "key", "words"), CASES)
def test_config_mistakes_get_one_line_and_touch_nothing(tmp_path: Path, old: str, new: str, key: str,
                                                        words: str) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "afile").write_text("not a folder")
    path = tmp_path / "config.toml"
    path.write_text(BASE.replace(old, new))
    before = listing(tmp_path)
    code, output = check(path)
    assert code != 0 and "Traceback" not in output
    assert output.strip().splitlines() == [output.strip()]  # one line
    assert f"{path}: {key}: " in output and words in output
    assert listing(tmp_path) == before


def test_a_config_that_is_not_utf8_or_not_a_file(tmp_path: Path) -> None:
    binary = tmp_path / "config.toml"
    binary.write_bytes(b'[storage]\npath = "\xff\xfe"\n')
    code, output = check(binary)
    assert code != 0 and "is not UTF-8 text" in output and "Traceback" not in output
    unreadable = tmp_path / "locked.toml"
    unreadable.write_text(BASE)
    unreadable.chmod(0)
    if os.geteuid() != 0:  # root reads anything
        code, output = check(unreadable)
        assert code != 0 and "permission denied" in output


def test_the_valid_base_config_passes(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BASE)
    code, output = check(path)
    assert code == 0, output
