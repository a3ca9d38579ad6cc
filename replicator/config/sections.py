"""The sections of config.toml, one dataclass each: a field is a key, its type and its default.

Why so strict: a backup tool that silently ignores a misspelt key backs up the wrong thing. The
reader (`replicator.config.reader`) turns every unknown key, wrong type or bad choice into a
`ConfigError` naming the file and the key; what types cannot say (a schedule that depends on the
job's kind, a reference to an org) is a section's `validate` hook. A new section is one dataclass
here and one field of `Config`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from replicator.config.error import ConfigError
from replicator.config.schema import (
    CONFIG_FILE,
    ENV_NAME,
    TABLE_NAME,
    Items,
    Range,
    Shape,
    Where,
    in_file,
    only_if,
)
from replicator.config.secret import MASK, Secret

ENDPOINT_KINDS = {"postgresql": 5432, "mysql": 3306}  # kind -> default port
# libpq's sslmode values; MySQL/MariaDB endpoints accept the subset pymysql can honour.
SSL_MODES = {
    "postgresql": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "mysql": ("disable", "require", "verify-ca", "verify-full"),
}
DEFAULT_SSL_MODE = {"postgresql": "prefer", "mysql": "disable"}
RETENTIONS = {"3m": 3, "6m": 6, "unlimited": None}
HOURLY_MAX_OBJECTS = 10
MIN_KEY_CHARS = 32  # the snapshot store's encryption key: 32 random bytes in base64 are 44
# kind -> (pattern, how it looks, default)
SCHEDULES = {
    "daily": (re.compile(r"^([01]\d|2[0-3]):[0-5]\d$"), '"HH:MM"', "02:00"),
    "hourly": (re.compile(r"^:[0-5]\d$"), '":MM"', ":00"),
}

EnvName = Annotated[str, ENV_NAME]
Https = Annotated[str, Shape(r"^https://[^/\s?#]+(/|$)",
                             "must be https:// followed by a host (Salesforce clients force HTTPS)")]
ApiVersion = Annotated[str, Shape(r"^\d{2,3}\.0$", 'must look like "62.0" (got {value!r})')]
ObjectNames = Annotated[tuple[str, ...], Items("object API names")]
Percent = Annotated[int, Range(1, 100)]
Port = Annotated[int, Range(1, 65535)]


@dataclass(frozen=True)
class StorageSettings:
    """Where the snapshot store, blobs and logs live.

    `blob_key_env` names the environment variable holding the file-encryption key, or
    `blob_key_file` a file holding it kept away from the storage folder (a copy of the folder then
    holds no key; give one of the two); without either the key is generated once into
    <path>/blob.key (losing that file loses every backed-up file).
    `encryption_key_env` or `encryption_key_file` give the snapshot store's own key (store.encryption):
    with one, the store and a run's staging are encrypted DuckDB files. Never in this file, and a key
    file never inside the storage folder: a key beside the data it locks protects nothing.
    """

    path: Path = field(metadata=in_file("var"))
    blob_key_env: EnvName | None = None
    blob_key_file: Path | None = None
    encryption_key: Secret | None = None
    encryption_key_file: Path | None = None

    def validate(self, where: Where) -> StorageSettings:
        """A key file becomes the store's key, read when the store is opened (a missing file must not
        stop commands that never open it, nor the example config from loading)."""
        if self.encryption_key_file is None:
            return self
        key = where.key + ".encryption_key_file" if where.key else "encryption_key_file"
        return replace(self, encryption_key=KeyFile(self.encryption_key_file, self.path, path=where.path,
                                                    key=key, conflict=self.encryption_key is not None))

    def store_key(self) -> Secret | None:
        """The store's key, checked now (set, long enough); None when the store is not encrypted."""
        return None if self.encryption_key is None else strong_key(self.encryption_key)


class KeyFile(Secret):
    """A store key kept in a file: private to its owner, outside the storage folder, read on use."""

    __slots__ = ("conflict", "file", "storage")

    def __init__(self, file: Path, storage: Path, *, path: Path, key: str, conflict: bool = False) -> None:
        super().__init__("", None, path=path, key=key)
        self.file, self.storage, self.conflict = file, storage, conflict

    @property
    def is_set(self) -> bool:
        """Always: a file's problems are named when it is read (reveal)."""
        return True

    def reveal(self) -> str:
        """The file's text (surrounding whitespace dropped), or a ConfigError saying what is wrong."""
        if self.conflict:
            raise ConfigError(self.path, self.key, "give the store's key by encryption_key_env or by "
                              "encryption_key_file, not both")
        if self.file.resolve().is_relative_to(self.storage.resolve()):
            raise ConfigError(self.path, self.key, f"{self.file} is inside the storage folder; keep the "
                              "key elsewhere (a key beside the data it locks protects nothing)")
        try:
            mode, text = self.file.stat().st_mode, self.file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise ConfigError(self.path, self.key, f"{self.file} cannot be read ({reason})") from None
        if mode & 0o077:
            raise ConfigError(self.path, self.key, f"{self.file} is open to other users: chmod 600 it")
        return text


def strong_key(secret: Secret) -> Secret:
    """The key itself, refused when unset or shorter than MIN_KEY_CHARS (never echoed)."""
    if len(secret.reveal()) < MIN_KEY_CHARS:
        raise ConfigError(secret.path, secret.key, f"the store's key must be at least {MIN_KEY_CHARS} "
                          "characters (e.g. the output of `openssl rand -base64 32`)")
    return secret


@dataclass(frozen=True)
class PasswordAuth:
    """Username + password (+ security token); with client_id/secret the OAuth password grant, else SOAP."""

    method: ClassVar[str] = "password"
    username: str
    password: Secret
    security_token: Secret | None = None
    client_id: str | None = None
    client_secret: Secret | None = None

    def validate(self, where: Where) -> PasswordAuth:
        """The OAuth password grant needs both halves of the connected app's credentials."""
        if self.client_id is not None and self.client_secret is None:
            raise where.error("client_secret_env", "is required (the name of an environment variable)")
        return self


@dataclass(frozen=True)
class OAuthRefreshTokenAuth:
    """A connected app's client id and secret plus a refresh token obtained once by a person."""

    method: ClassVar[str] = "oauth_refresh_token"
    client_id: str
    client_secret: Secret
    refresh_token: Secret


@dataclass(frozen=True)
class JwtBearerAuth:
    """A connected app that trusts our certificate: no password is stored at all."""

    method: ClassVar[str] = "jwt_bearer"
    client_id: str
    username: str
    private_key_file: Path


@dataclass(frozen=True)
class ClientCredentialsAuth:
    """A connected app's client credentials flow, running as its configured integration user."""

    method: ClassVar[str] = "client_credentials"
    client_id: str
    client_secret: Secret


Auth = PasswordAuth | OAuthRefreshTokenAuth | JwtBearerAuth | ClientCredentialsAuth


@dataclass(frozen=True)
class OrgSettings:
    """One Salesforce org: where to log in and how (`auth` picks the method, its keys sit beside it)."""

    name: str = field(metadata=TABLE_NAME)
    login_url: Https
    api_version: ApiVersion = field(metadata=in_file("62.0"))
    auth: Auth
    ca_bundle: Path | None = None
    sandbox: bool = False

    def validate(self, where: Where) -> OrgSettings:
        """The URL is kept without a trailing slash, so paths append cleanly."""
        return replace(self, login_url=self.login_url.rstrip("/"))


@dataclass(frozen=True)
class ObjectSelection:
    """Which sObjects a job covers: the recommended set and/or an explicit list, minus exclusions."""

    include: ObjectNames = ()
    exclude: ObjectNames = ()
    recommended: bool = field(default=True, metadata=in_file(lambda values: not values["include"]))

    def validate(self, where: Where) -> ObjectSelection:
        """A selection of nothing is a mistake, not a quiet no-op backup."""
        if not self.recommended and not self.include:
            raise where.error("", "selects nothing: set recommended = true or list objects in include")
        return self


@dataclass(frozen=True)
class JobSettings:
    """One scheduled backup of one org."""

    name: str = field(metadata=TABLE_NAME)
    org: str
    objects: ObjectSelection
    kind: Literal["daily", "hourly"] = "daily"
    api_cap_percent: Percent = 50
    schedule: str = field(
        default="02:00", metadata=in_file(lambda values: SCHEDULES[values["kind"]][2]))
    retention: Literal["3m", "6m", "unlimited"] = "unlimited"
    full_every_days: Annotated[int, Range(0, 366)] = 7
    # An incremental run waits (at most a minute) for the org's minute-wide change log to pass its
    # start, so a change made seconds before the run is in it; false: such changes come next run.
    wait_for_change_log: bool = True

    @property
    def retention_months(self) -> int | None:
        """Months of history to keep; None keeps everything."""
        return RETENTIONS[self.retention]

    def validate(self, where: Where) -> JobSettings:
        """An hourly job must stay small and name its objects; each kind has its schedule's shape."""
        if self.kind == "hourly":
            if self.objects.recommended:
                raise where.error("objects.recommended", "an hourly job must list its objects in include "
                                  f"(at most {HOURLY_MAX_OBJECTS}), not use the recommended set")
            if len(self.objects.include) > HOURLY_MAX_OBJECTS:
                raise where.error("objects.include", f"an hourly job may cover at most {HOURLY_MAX_OBJECTS} "
                                  f"objects (got {len(self.objects.include)})")
        pattern, shape, _ = SCHEDULES[self.kind]
        if not pattern.match(self.schedule):
            raise where.error("schedule", f"a {self.kind} job's schedule looks like {shape} "
                              f"(got {self.schedule!r})")
        return self


@dataclass(frozen=True)
class EndpointSettings:
    """An external database that an export loads (tables created and evolved).

    `schema` is the PostgreSQL schema the tables go to (MySQL has none: `database` is the schema);
    `sslmode` takes libpq's names (MySQL: disable, require, verify-ca, verify-full).
    """

    name: str = field(metadata=TABLE_NAME)
    kind: Literal["postgresql", "mysql"]  # MySQL or MariaDB
    host: str = field(metadata=in_file("localhost"))
    port: Port = field(metadata=in_file(lambda values: ENDPOINT_KINDS[values["kind"]]))
    database: str
    user: str
    password: Secret
    schema: str | None = field(
        default=None, metadata=in_file("public") | only_if("kind", "postgresql"))
    sslmode: str = field(
        default="prefer", metadata=in_file(lambda values: DEFAULT_SSL_MODE[values["kind"]]))
    ssl_ca: Path | None = None

    def validate(self, where: Where) -> EndpointSettings:
        """Each kind has its own TLS modes."""
        if self.sslmode not in SSL_MODES[self.kind]:
            raise where.error("sslmode", f"must be one of {', '.join(SSL_MODES[self.kind])} for kind "
                              f"{self.kind!r} (got {self.sslmode!r})")
        return self


@dataclass(frozen=True)
class Config:
    """The whole file: one field per top-level table."""

    path: Path = field(metadata=CONFIG_FILE)
    storage: StorageSettings
    orgs: dict[str, OrgSettings] = field(default_factory=dict)
    jobs: dict[str, JobSettings] = field(default_factory=dict)
    endpoints: dict[str, EndpointSettings] = field(default_factory=dict)

    def validate(self, where: Where) -> Config:
        """Every job names an org that exists."""
        for job in self.jobs.values():
            if job.org not in self.orgs:
                known = ", ".join(sorted(self.orgs)) or "none defined"
                raise where.error(f"jobs.{job.name}.org", f"unknown org {job.org!r} (orgs: {known})")
        return self

    def secrets(self) -> list[tuple[str, Secret]]:
        """Every secret with its dotted key, e.g. for `config check` to report unset variables."""
        return [(secret.key, secret) for secret in _secrets(self)]

    def endpoint(self, name: str) -> EndpointSettings:
        """The named endpoint, or a ConfigError listing the defined ones."""
        if name not in self.endpoints:
            known = ", ".join(sorted(self.endpoints)) or "none defined"
            raise ConfigError(self.path, f"endpoints.{name}", f"no such endpoint (endpoints: {known})")
        return self.endpoints[name]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view for `config show`: a secret shows its variable name and `***`, never its value."""
        return _plain(self)


def _secrets(value: Any) -> list[Secret]:
    """The secrets below a value, in the order the sections declare them."""
    if isinstance(value, Secret):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _secrets(v)]
    if is_dataclass(value):
        return [s for f in fields(value) for s in _secrets(getattr(value, f.name))]
    return []


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
