"""config.toml parsing and validation: typed settings, secrets only from the environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from replicator.config import (
    ClientCredentialsAuth,
    ConfigError,
    JwtBearerAuth,
    OAuthRefreshTokenAuth,
    PasswordAuth,
    load_config,
)

ROOT = Path(__file__).resolve().parents[2]
ORG = """
[orgs.demo]
login_url = "https://127.0.0.1:8443"
auth = "password"
username = "admin@demo.replicator.local"
password_env = "PW"
"""


def test_example_config_is_valid_and_uses_the_emulator():
    cfg = load_config(ROOT / "config.example.toml", environ={"REPLICATOR_DEMO_PASSWORD": "pw"})
    demo = cfg.orgs["demo"]
    assert demo.login_url == "https://127.0.0.1:8443"
    assert isinstance(demo.auth, PasswordAuth)
    assert demo.auth.username == "admin@demo.replicator.local"
    assert demo.auth.password.env == "REPLICATOR_DEMO_PASSWORD"
    assert demo.auth.password.reveal() == "pw"
    assert demo.ca_bundle == ROOT / "var/emulator/tls/ca.pem"
    job = cfg.jobs["daily"]
    assert (job.org, job.kind, job.schedule, job.api_cap_percent) == ("demo", "daily", "02:00", 50)
    assert job.objects.recommended and job.objects.exclude == ("LoginHistory",)
    assert job.retention_months is None


def test_defaults_and_relative_paths(tmp_config):
    path = tmp_config()
    cfg = load_config(path, environ={})
    assert cfg.storage.path == path.parent / "store"
    org = cfg.orgs["demo"]
    assert (org.api_version, org.sandbox, org.ca_bundle) == ("62.0", False, None)
    job = cfg.jobs["daily"]
    assert (job.kind, job.schedule, job.retention, job.api_cap_percent) == ("daily", "02:00", "unlimited", 50)
    assert job.objects.recommended is True


@pytest.mark.parametrize(
    ("auth_lines", "cls"),
    [
        ('auth = "oauth_refresh_token"\nclient_id = "cid"\nclient_secret_env = "CS"\n'
         'refresh_token_env = "RT"',
         OAuthRefreshTokenAuth),
        ('auth = "jwt_bearer"\nclient_id = "cid"\nusername = "u@x"\nprivate_key_file = "keys/k.pem"',
         JwtBearerAuth),
        ('auth = "client_credentials"\nclient_id = "cid"\nclient_secret_env = "CS"', ClientCredentialsAuth),
        ('auth = "password"\nusername = "u@x"\npassword_env = "PW"\nsecurity_token_env = "TOK"\n'
         'client_id = "cid"\nclient_secret_env = "CS"', PasswordAuth),
    ],
)
def test_every_auth_method_parses(tmp_config, auth_lines, cls):
    path = tmp_config(f'[orgs.o]\nlogin_url = "https://login.salesforce.com/"\n{auth_lines}\n')
    env = {"CS": "client-secret", "RT": "refresh", "PW": "pw", "TOK": "tok"}
    auth = load_config(path, environ=env).orgs["o"].auth
    assert isinstance(auth, cls)
    assert auth.method == cls.method
    if isinstance(auth, JwtBearerAuth):
        assert auth.private_key_file == path.parent / "keys/k.pem"
    else:
        assert auth.client_secret is None or auth.client_secret.reveal() == "client-secret"


@pytest.mark.parametrize("key", ["password", "client_secret", "refresh_token", "security_token"])
def test_literal_secret_is_refused(tmp_config, key):
    path = tmp_config(ORG + f'{key} = "hunter2"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.key == f"orgs.demo.{key}"
    assert f"{key}_env" in str(info.value)
    assert str(path) in str(info.value)
    assert "hunter2" not in str(info.value)


def test_env_name_that_looks_like_a_pasted_secret_is_not_echoed(tmp_config):
    path = tmp_config(ORG.replace('password_env = "PW"', 'password_env = "p@ss w0rd!"'))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.key == "orgs.demo.password_env"
    assert "p@ss" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[storage]\npaht = 'x'\n", "storage.paht"),
        ("[sotrage]\npath = 'x'\n", "sotrage"),
        (ORG + "usename = 'x'\n", "orgs.demo.usename"),
        (ORG + "refresh_token_env = 'RT'\n", "orgs.demo.refresh_token_env"),
        (ORG + "[jobs.j]\norg = 'demo'\nretension = '3m'\n", "jobs.j.retension"),
        (ORG + "[jobs.j]\norg = 'demo'\n[jobs.j.objects]\ninclud = ['Account']\n", "jobs.j.objects.includ"),
    ],
)
def test_unknown_key_is_named(tmp_config, text, key):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_config(text), environ={})
    assert info.value.key == key
    assert f"{key}: unknown key" in str(info.value)


@pytest.mark.parametrize(
    ("job", "key", "fragment"),
    [
        ("org = 'nope'", "jobs.j.org", "unknown org 'nope'"),
        ("org = 'demo'\napi_cap_percent = '50'", "jobs.j.api_cap_percent", "integer from 1 to 100"),
        ("org = 'demo'\napi_cap_percent = 0", "jobs.j.api_cap_percent", "integer from 1 to 100"),
        ("org = 'demo'\nkind = 'weekly'", "jobs.j.kind", "daily, hourly"),
        ("org = 'demo'\nschedule = '25:00'", "jobs.j.schedule", '"HH:MM"'),
        ("org = 'demo'\nretention = '1y'", "jobs.j.retention", "3m, 6m, unlimited"),
        ("org = 'demo'\nkind = 'hourly'\nobjects = { include = ['Account'] }\nschedule = '02:00'",
         "jobs.j.schedule", '":MM"'),
        ("org = 'demo'\nkind = 'hourly'", "jobs.j.objects.recommended", "at most 10"),
        ("org = 'demo'\nkind = 'hourly'\nobjects = { include = " + str([f"O{i}" for i in range(11)]) + " }",
         "jobs.j.objects.include", "at most 10 objects (got 11)"),
        ("org = 'demo'\nobjects = { recommended = false }", "jobs.j.objects", "selects nothing"),
        ("org = 'demo'\nobjects = { include = 'Account' }", "jobs.j.objects.include", "list of object"),
        ("org = 42", "jobs.j.org", "non-empty string"),
    ],
)
def test_job_validation(tmp_config, job, key, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_config(ORG + "[jobs.j]\n" + job + "\n"), environ={})
    assert info.value.key == key
    assert fragment in info.value.message


def test_hourly_job_with_ten_objects_is_fine(tmp_config):
    objects = ", ".join(f"'O{i}'" for i in range(10))
    path = tmp_config(ORG + f"[jobs.h]\norg = 'demo'\nkind = 'hourly'\nschedule = ':15'\n"
                            f"retention = '3m'\nobjects = {{ include = [{objects}] }}\n")
    job = load_config(path, environ={}).jobs["h"]
    assert len(job.objects.include) == 10 and not job.objects.recommended
    assert job.retention_months == 3


@pytest.mark.parametrize(
    ("org", "key"),
    [
        (ORG.replace("https://127.0.0.1:8443", "http://127.0.0.1:8443"), "orgs.demo.login_url"),
        (ORG.replace('auth = "password"', 'auth = "magic"'), "orgs.demo.auth"),
        (ORG.replace('password_env = "PW"', ""), "orgs.demo.password_env"),
        (ORG + "sandbox = 'yes'\n", "orgs.demo.sandbox"),
        (ORG + "api_version = 'v62'\n", "orgs.demo.api_version"),
    ],
)
def test_org_validation(tmp_config, org, key):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_config(org), environ={})
    assert info.value.key == key


def test_missing_and_malformed_files(tmp_path, tmp_config):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_config("[storage\npath = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(bad)
    assert info.value.path == bad


def test_secret_never_prints_its_value(tmp_config):
    cfg = load_config(tmp_config(), environ={"REPLICATOR_TEST_PASSWORD": "s3cr3t-value"})
    secret = cfg.orgs["demo"].auth.password
    rendered = [str(secret), repr(secret), f"{secret}", f"{secret!r}", repr(cfg), str(cfg.as_dict())]
    for text in rendered:
        assert "s3cr3t-value" not in text
    assert str(secret) == "***"
    assert secret.reveal() == "s3cr3t-value"
    assert cfg.secrets() == [("orgs.demo.password_env", secret)]


def test_unset_secret_fails_only_when_used(tmp_config):
    cfg = load_config(tmp_config(), environ={})
    secret = cfg.orgs["demo"].auth.password
    assert not secret.is_set
    with pytest.raises(ConfigError, match="REPLICATOR_TEST_PASSWORD is not set") as info:
        secret.reveal()
    assert info.value.key == "orgs.demo.password_env"


def test_secret_reads_os_environ_by_default(tmp_config, monkeypatch):
    monkeypatch.setenv("REPLICATOR_TEST_PASSWORD", "from-env")
    assert load_config(tmp_config()).orgs["demo"].auth.password.reveal() == "from-env"


def test_storage_blob_key_env(tmp_config):
    cfg = load_config(tmp_config("[storage]\npath = 's'\nblob_key_env = 'BLOB_KEY'\n"), environ={})
    assert cfg.storage.blob_key_env == "BLOB_KEY"
    assert load_config(tmp_config("[storage]\n"), environ={}).storage.blob_key_env is None


def test_storage_blob_key_env_that_looks_like_a_pasted_key_is_not_echoed(tmp_config):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_config("[storage]\nblob_key_env = 'q8Zx+/abc='\n"), environ={})
    assert info.value.key == "storage.blob_key_env"
    assert "q8Zx" not in str(info.value)


ENDPOINT = """
[endpoints.wh]
kind = "postgresql"
host = "db.example.com"
database = "sf"
user = "replicator"
password_env = "WH_PW"
"""


def test_endpoints_parse_with_defaults(tmp_config):
    path = tmp_config(ENDPOINT + "[endpoints.my]\nkind = 'mysql'\ndatabase = 'sf'\nuser = 'u'\n"
                      "password_env = 'MY_PW'\nport = 3307\nsslmode = 'verify-full'\nssl_ca = 'ca.pem'\n")
    cfg = load_config(path, environ={"WH_PW": "pg-secret"})
    wh, my = cfg.endpoints["wh"], cfg.endpoints["my"]
    assert (wh.kind, wh.host, wh.port, wh.database, wh.user, wh.schema, wh.sslmode, wh.ssl_ca) == (
        "postgresql", "db.example.com", 5432, "sf", "replicator", "public", "prefer", None)
    assert wh.password.reveal() == "pg-secret"
    assert (my.kind, my.host, my.port, my.schema, my.sslmode, my.ssl_ca) == (
        "mysql", "localhost", 3307, None, "verify-full", path.parent / "ca.pem")
    assert cfg.endpoint("wh") is wh
    assert ("endpoints.wh.password_env", wh.password) in cfg.secrets()
    assert "pg-secret" not in str(cfg.as_dict())
    with pytest.raises(ConfigError, match=r"no such endpoint \(endpoints: my, wh\)"):
        cfg.endpoint("nope")


@pytest.mark.parametrize(
    ("change", "key", "fragment"),
    [
        (("kind = \"postgresql\"", "kind = \"oracle\""), "endpoints.wh.kind", "postgresql, mysql"),
        (("database = \"sf\"\n", ""), "endpoints.wh.database", "is required"),
        (("user = \"replicator\"\n", ""), "endpoints.wh.user", "is required"),
        (("password_env = \"WH_PW\"\n", ""), "endpoints.wh.password_env", "is required"),
        (("password_env = \"WH_PW\"", "password = \"hunter2\""), "endpoints.wh.password", "password_env"),
        (("password_env = \"WH_PW\"", "password_env = \"hunter2 !\""), "endpoints.wh.password_env",
         "environment variable name"),
        (("host", "port = 70000\nhost"), "endpoints.wh.port", "1 to 65535"),
        (("host", "port = \"5432\"\nhost"), "endpoints.wh.port", "1 to 65535"),
        (("host", "sslmode = \"sometimes\"\nhost"), "endpoints.wh.sslmode", "verify-full"),
        (("host", "scheme = \"x\"\nhost"), "endpoints.wh.scheme", "unknown key"),
        (("kind = \"postgresql\"", "kind = \"mysql\"\nschema = \"x\""), "endpoints.wh.schema",
         "unknown key with kind = 'mysql'"),
        (("kind = \"postgresql\"", "kind = \"mysql\"\nsslmode = \"prefer\""), "endpoints.wh.sslmode",
         "disable, require, verify-ca, verify-full for kind 'mysql'"),
    ],
)
def test_endpoint_validation(tmp_config, change, key, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_config(ENDPOINT.replace(*change)), environ={})
    assert info.value.key == key
    assert fragment in str(info.value)
    assert "hunter2" not in str(info.value)


def test_example_config_documents_endpoints(tmp_config):
    """The commented endpoint examples are valid once uncommented (they are the user's template)."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    block = text[text.index("# [endpoints.warehouse]"):]
    lines = [m.group(1) for m in re.finditer(r"^# ((?:\[endpoints\.\w+\]|\w+ = [^#]*))", block, re.M)]
    cfg = load_config(tmp_config("\n".join(lines) + "\n"), environ={})
    assert set(cfg.endpoints) == {"warehouse", "reporting"}
    assert cfg.endpoints["warehouse"].sslmode == "verify-full"
