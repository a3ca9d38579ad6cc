"""config.toml -> typed, validated settings.

Why so strict: a backup tool that silently ignores a misspelt key backs up the wrong thing. Every
unknown key, wrong type or dangling reference is a `ConfigError` naming the file and the key.
Secrets never live in the file: it names environment variables (`password_env = "SF_PASSWORD"`),
and the values are wrapped in `Secret`, whose str/repr is `***`, so they cannot reach logs.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

DEFAULT_CONFIG = "config.toml"
CONFIG_ENV = "REPLICATOR_CONFIG"
MASK = "***"

AUTH_METHODS = ("password", "oauth_refresh_token", "jwt_bearer", "client_credentials")
JOB_KINDS = ("daily", "hourly")
ENDPOINT_KINDS = {"postgresql": 5432, "mysql": 3306}  # kind -> default port
# libpq's sslmode values; MySQL/MariaDB endpoints accept the subset pymysql can honour.
SSL_MODES = {
    "postgresql": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "mysql": ("disable", "require", "verify-ca", "verify-full"),
}
DEFAULT_SSL_MODE = {"postgresql": "prefer", "mysql": "disable"}
RETENTIONS = {"3m": 3, "6m": 6, "unlimited": None}
HOURLY_MAX_OBJECTS = 10
# Keys that would hold a secret literally; each must be given as `<key>_env` instead.
LITERAL_SECRET_KEYS = ("password", "client_secret", "refresh_token", "security_token", "private_key")
_DAILY_SCHEDULE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_HOURLY_SCHEDULE = re.compile(r"^:[0-5]\d$")
_API_VERSION = re.compile(r"^\d{2,3}\.0$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """A config problem, located by file and dotted key so the user can fix it at once."""

    def __init__(self, path: Path | str, key: str, message: str) -> None:
        self.path = Path(path)
        self.key = key
        self.message = message
        super().__init__(f"{self.path}: {key}: {message}" if key else f"{self.path}: {message}")


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


@dataclass(frozen=True)
class StorageSettings:
    """Where the snapshot store, blobs and logs live.

    `blob_key_env` names the environment variable holding the file-encryption key; without it the
    key is generated once into <path>/blob.key (losing that file loses every backed-up file).
    """

    path: Path
    blob_key_env: str | None = None


@dataclass(frozen=True)
class PasswordAuth:
    """Username + password (+ security token); with client_id/secret the OAuth password grant, else SOAP."""

    method: ClassVar[str] = "password"
    username: str
    password: Secret
    security_token: Secret | None = None
    client_id: str | None = None
    client_secret: Secret | None = None


@dataclass(frozen=True)
class OAuthRefreshTokenAuth:
    method: ClassVar[str] = "oauth_refresh_token"
    client_id: str
    client_secret: Secret
    refresh_token: Secret


@dataclass(frozen=True)
class JwtBearerAuth:
    method: ClassVar[str] = "jwt_bearer"
    client_id: str
    username: str
    private_key_file: Path


@dataclass(frozen=True)
class ClientCredentialsAuth:
    method: ClassVar[str] = "client_credentials"
    client_id: str
    client_secret: Secret


Auth = PasswordAuth | OAuthRefreshTokenAuth | JwtBearerAuth | ClientCredentialsAuth


@dataclass(frozen=True)
class OrgSettings:
    name: str
    login_url: str
    api_version: str
    auth: Auth
    ca_bundle: Path | None = None
    sandbox: bool = False


@dataclass(frozen=True)
class ObjectSelection:
    """Which sObjects a job covers: the recommended set and/or an explicit list, minus exclusions."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    recommended: bool = True


@dataclass(frozen=True)
class JobSettings:
    name: str
    org: str
    objects: ObjectSelection
    kind: str = "daily"
    api_cap_percent: int = 50
    schedule: str = "02:00"
    retention: str = "unlimited"

    @property
    def retention_months(self) -> int | None:
        """Months of history to keep; None keeps everything."""
        return RETENTIONS[self.retention]


@dataclass(frozen=True)
class EndpointSettings:
    """An external database that `replicator export --endpoint NAME` loads (tables created and evolved).

    `schema` is the PostgreSQL schema the tables go to (MySQL has none: `database` is the schema);
    `sslmode` takes libpq's names (MySQL: disable, require, verify-ca, verify-full).
    """

    name: str
    kind: str  # "postgresql" | "mysql" (MySQL or MariaDB)
    host: str
    port: int
    database: str
    user: str
    password: Secret
    schema: str | None = None
    sslmode: str = "prefer"
    ssl_ca: Path | None = None


@dataclass(frozen=True)
class Config:
    path: Path
    storage: StorageSettings
    orgs: dict[str, OrgSettings] = field(default_factory=dict)
    jobs: dict[str, JobSettings] = field(default_factory=dict)
    endpoints: dict[str, EndpointSettings] = field(default_factory=dict)

    def secrets(self) -> list[tuple[str, Secret]]:
        """Every secret with its dotted key, e.g. for `config check` to report unset variables."""
        found = []
        for org in self.orgs.values():
            for name in ("password", "security_token", "client_secret", "refresh_token"):
                value = getattr(org.auth, name, None)
                if isinstance(value, Secret):
                    found.append((f"orgs.{org.name}.{name}_env", value))
        found += [(f"endpoints.{e.name}.password_env", e.password) for e in self.endpoints.values()]
        return found

    def endpoint(self, name: str) -> EndpointSettings:
        """The named endpoint, or a ConfigError listing the defined ones."""
        if name not in self.endpoints:
            known = ", ".join(sorted(self.endpoints)) or "none defined"
            raise ConfigError(self.path, f"endpoints.{name}", f"no such endpoint (endpoints: {known})")
        return self.endpoints[name]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view for `config show`: a secret shows its variable name and `***`, never its value."""
        return _plain(self)


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return {"env": value.env, "value": MASK, "set": value.is_set}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if is_dataclass(value):
        out = {"method": value.method} if hasattr(type(value), "method") else {}
        out.update({f.name: _plain(getattr(value, f.name)) for f in fields(value)})
        return out
    return value


def default_config_path() -> Path:
    """$REPLICATOR_CONFIG, else ./config.toml."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; secrets are looked up in `environ` (default os.environ)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    return _Parser(path, os.environ if environ is None else environ).config(raw)


class _Parser:
    """Walks the TOML tree once, keeping the file path for error messages."""

    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self.path = path
        self.environ = environ
        self.base = path.resolve().parent

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.path, key, message)

    def config(self, raw: dict[str, Any]) -> Config:
        self.check_keys("", raw, {"storage", "orgs", "jobs", "endpoints"})
        storage = self.table("storage", raw.get("storage", {}))
        self.check_keys("storage", storage, {"path", "blob_key_env"})
        orgs_raw = self.table("orgs", raw.get("orgs", {}))
        orgs = {name: self.org(name, self.table(f"orgs.{name}", body)) for name, body in orgs_raw.items()}
        jobs_raw = self.table("jobs", raw.get("jobs", {}))
        jobs = {
            name: self.job(name, self.table(f"jobs.{name}", body), orgs) for name, body in jobs_raw.items()
        }
        endpoints_raw = self.table("endpoints", raw.get("endpoints", {}))
        endpoints = {name: self.endpoint(name, self.table(f"endpoints.{name}", body))
                     for name, body in endpoints_raw.items()}
        return Config(
            path=self.path,
            storage=self.storage(storage),
            orgs=orgs,
            jobs=jobs,
            endpoints=endpoints,
        )

    def storage(self, raw: dict[str, Any]) -> StorageSettings:
        key_env = raw.get("blob_key_env")
        if key_env is not None:
            key_env = self.string("storage.blob_key_env", key_env)
            if not _ENV_NAME.match(key_env):
                # Not echoed: it may be the key itself pasted by mistake.
                raise self.error("storage.blob_key_env",
                                 "must be an environment variable name (letters, digits, _)")
        return StorageSettings(path=self.file_path("storage.path", raw.get("path", "var")),
                               blob_key_env=key_env)

    def org(self, name: str, raw: dict[str, Any]) -> OrgSettings:
        key = f"orgs.{name}"
        self.refuse_literal_secrets(key, raw)
        method = self.string(f"{key}.auth", raw.get("auth"))
        if method not in AUTH_METHODS:
            raise self.error(f"{key}.auth", f"must be one of {', '.join(AUTH_METHODS)} (got {method!r})")
        common = {"login_url", "api_version", "auth", "ca_bundle", "sandbox"}
        auth_keys = {
            "password": {"username", "password_env", "security_token_env", "client_id", "client_secret_env"},
            "oauth_refresh_token": {"client_id", "client_secret_env", "refresh_token_env"},
            "jwt_bearer": {"client_id", "username", "private_key_file"},
            "client_credentials": {"client_id", "client_secret_env"},
        }[method]
        self.check_keys(key, raw, common | auth_keys, context=f"with auth = {method!r}")
        login_url = self.string(f"{key}.login_url", raw.get("login_url"))
        if not login_url.startswith("https://"):
            raise self.error(f"{key}.login_url", "must start with https:// (Salesforce clients force HTTPS)")
        api_version = self.string(f"{key}.api_version", raw.get("api_version", "62.0"))
        if not _API_VERSION.match(api_version):
            raise self.error(f"{key}.api_version", f"must look like \"62.0\" (got {api_version!r})")
        ca_bundle = raw.get("ca_bundle")
        return OrgSettings(
            name=name,
            login_url=login_url.rstrip("/"),
            api_version=api_version,
            auth=self.auth(key, method, raw),
            ca_bundle=None if ca_bundle is None else self.file_path(f"{key}.ca_bundle", ca_bundle),
            sandbox=self.boolean(f"{key}.sandbox", raw.get("sandbox", False)),
        )

    def refuse_literal_secrets(self, key: str, raw: dict[str, Any]) -> None:
        for secret_key in LITERAL_SECRET_KEYS:
            if secret_key in raw:
                raise self.error(
                    f"{key}.{secret_key}",
                    f"secrets may not be written in the config file; put the value in an environment "
                    f"variable and name it with `{secret_key}_env = \"VARIABLE_NAME\"`",
                )

    def secret(self, key: str, name: str, raw: dict[str, Any], *, required: bool = True) -> Secret | None:
        """The Secret named by `<name>_env` in table `key` (the variable's value is read lazily)."""
        env_key = f"{key}.{name}_env"
        if name + "_env" not in raw:
            if required:
                raise self.error(env_key, "is required (the name of an environment variable)")
            return None
        env = self.string(env_key, raw[name + "_env"])
        if not _ENV_NAME.match(env):
            # The value is not echoed: a user who pasted the secret itself here must not see it logged.
            raise self.error(env_key, "must be an environment variable name (letters, digits, _)")
        return Secret(env, self.environ.get(env), path=self.path, key=env_key)

    def endpoint(self, name: str, raw: dict[str, Any]) -> EndpointSettings:
        key = f"endpoints.{name}"
        self.refuse_literal_secrets(key, raw)
        kind = self.string(f"{key}.kind", raw.get("kind"))
        if kind not in ENDPOINT_KINDS:
            raise self.error(f"{key}.kind", f"must be one of {', '.join(ENDPOINT_KINDS)} (got {kind!r})")
        allowed = {"kind", "host", "port", "database", "user", "password_env", "sslmode", "ssl_ca"}
        self.check_keys(key, raw, allowed | ({"schema"} if kind == "postgresql" else set()),
                        context=f"with kind = {kind!r}")
        port = raw.get("port", ENDPOINT_KINDS[kind])
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise self.error(f"{key}.port", f"must be an integer from 1 to 65535 (got {port!r})")
        sslmode = self.string(f"{key}.sslmode", raw.get("sslmode", DEFAULT_SSL_MODE[kind]))
        if sslmode not in SSL_MODES[kind]:
            raise self.error(f"{key}.sslmode", f"must be one of {', '.join(SSL_MODES[kind])} for kind "
                             f"{kind!r} (got {sslmode!r})")
        ssl_ca = raw.get("ssl_ca")
        password = self.secret(key, "password", raw)
        assert password is not None
        schema = self.string(f"{key}.schema", raw.get("schema", "public")) if kind == "postgresql" else None
        return EndpointSettings(
            name=name, kind=kind, host=self.string(f"{key}.host", raw.get("host", "localhost")), port=port,
            database=self.string(f"{key}.database", raw.get("database")),
            user=self.string(f"{key}.user", raw.get("user")), password=password,
            schema=schema,
            sslmode=sslmode, ssl_ca=None if ssl_ca is None else self.file_path(f"{key}.ssl_ca", ssl_ca),
        )

    def auth(self, key: str, method: str, raw: dict[str, Any]) -> Auth:
        def text(name: str) -> str:
            return self.string(f"{key}.{name}", raw.get(name))

        def secret(name: str, *, required: bool = True) -> Secret | None:
            return self.secret(key, name, raw, required=required)

        if method == "password":
            client_id = raw.get("client_id")
            return PasswordAuth(
                username=text("username"),
                password=secret("password"),
                security_token=secret("security_token", required=False),
                client_id=None if client_id is None else text("client_id"),
                client_secret=secret("client_secret", required=client_id is not None),
            )
        if method == "oauth_refresh_token":
            return OAuthRefreshTokenAuth(
                client_id=text("client_id"), client_secret=secret("client_secret"),
                refresh_token=secret("refresh_token"),
            )
        if method == "jwt_bearer":
            return JwtBearerAuth(
                client_id=text("client_id"), username=text("username"),
                private_key_file=self.file_path(f"{key}.private_key_file", raw.get("private_key_file")),
            )
        return ClientCredentialsAuth(client_id=text("client_id"), client_secret=secret("client_secret"))

    def job(self, name: str, raw: dict[str, Any], orgs: dict[str, OrgSettings]) -> JobSettings:
        key = f"jobs.{name}"
        self.check_keys(key, raw, {"org", "objects", "kind", "api_cap_percent", "schedule", "retention"})
        org = self.string(f"{key}.org", raw.get("org"))
        if org not in orgs:
            known = ", ".join(sorted(orgs)) or "none defined"
            raise self.error(f"{key}.org", f"unknown org {org!r} (orgs: {known})")
        kind = self.string(f"{key}.kind", raw.get("kind", "daily"))
        if kind not in JOB_KINDS:
            raise self.error(f"{key}.kind", f"must be one of {', '.join(JOB_KINDS)} (got {kind!r})")
        objects = self.objects(f"{key}.objects", self.table(f"{key}.objects", raw.get("objects", {})), kind)
        cap = raw.get("api_cap_percent", 50)
        if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= 100:
            raise self.error(f"{key}.api_cap_percent", f"must be an integer from 1 to 100 (got {cap!r})")
        default_schedule = "02:00" if kind == "daily" else ":00"
        schedule = self.string(f"{key}.schedule", raw.get("schedule", default_schedule))
        pattern, shape = (_DAILY_SCHEDULE, '"HH:MM"') if kind == "daily" else (_HOURLY_SCHEDULE, '":MM"')
        if not pattern.match(schedule):
            raise self.error(f"{key}.schedule", f"a {kind} job's schedule looks like {shape} "
                             f"(got {schedule!r})")
        retention = self.string(f"{key}.retention", raw.get("retention", "unlimited"))
        if retention not in RETENTIONS:
            raise self.error(f"{key}.retention",
                             f"must be one of {', '.join(RETENTIONS)} (got {retention!r})")
        return JobSettings(name=name, org=org, objects=objects, kind=kind, api_cap_percent=cap,
                           schedule=schedule, retention=retention)

    def objects(self, key: str, raw: dict[str, Any], kind: str) -> ObjectSelection:
        self.check_keys(key, raw, {"include", "exclude", "recommended"})
        include = self.names(f"{key}.include", raw.get("include", []))
        exclude = self.names(f"{key}.exclude", raw.get("exclude", []))
        recommended = self.boolean(f"{key}.recommended", raw.get("recommended", not include))
        if not recommended and not include:
            raise self.error(key, "selects nothing: set recommended = true or list objects in include")
        if kind == "hourly":
            if recommended:
                raise self.error(f"{key}.recommended", "an hourly job must list its objects in include "
                                 f"(at most {HOURLY_MAX_OBJECTS}), not use the recommended set")
            if len(include) > HOURLY_MAX_OBJECTS:
                raise self.error(f"{key}.include", f"an hourly job may cover at most {HOURLY_MAX_OBJECTS} "
                                 f"objects (got {len(include)})")
        return ObjectSelection(include=include, exclude=exclude, recommended=recommended)

    # -- small typed readers -------------------------------------------------------------------

    def check_keys(self, key: str, raw: dict[str, Any], allowed: set[str], context: str = "") -> None:
        for name in raw:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                hint = f" {context}" if context else ""
                raise self.error(where, f"unknown key{hint} (allowed: {', '.join(sorted(allowed))})")

    def table(self, key: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table, got {type(value).__name__}")
        return value

    def string(self, key: str, value: Any) -> str:
        if value is None:
            raise self.error(key, "is required")
        if not isinstance(value, str) or not value:
            raise self.error(key, f"must be a non-empty string (got {value!r})")
        return value

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false (got {value!r})")
        return value

    def names(self, key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, "must be a list of object API names")
        return tuple(value)

    def file_path(self, key: str, value: Any) -> Path:
        """Relative paths are relative to the config file, so the file works from any directory."""
        path = Path(self.string(key, value)).expanduser()
        return path if path.is_absolute() else self.base / path
