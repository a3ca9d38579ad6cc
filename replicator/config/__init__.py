"""config.toml -> typed, validated settings.

Why so strict: a backup tool that silently ignores a misspelt key backs up the wrong thing. Every
unknown key, wrong type or dangling reference is a `ConfigError` naming the file and the key.
Secrets never live in the file: it names environment variables (`password_env = "SF_PASSWORD"`),
and the values are wrapped in `Secret`, whose str/repr is `***`, so they cannot reach logs.

The sections are dataclasses (`sections.py`) read by one generic reader (`reader.py`) in the
vocabulary of `schema.py`; this module only gathers the names the rest of the product imports.
"""

from replicator.config.error import ConfigError
from replicator.config.load import CONFIG_ENV, DEFAULT_CONFIG, load_config
from replicator.config.reader import known_keys
from replicator.config.secret import MASK, Secret
from replicator.config.sections import (
    Auth,
    ClientCredentialsAuth,
    Config,
    EndpointSettings,
    JobSettings,
    JwtBearerAuth,
    OAuthRefreshTokenAuth,
    ObjectSelection,
    OrgSettings,
    PasswordAuth,
    StorageSettings,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "MASK",
    "Auth",
    "ClientCredentialsAuth",
    "Config",
    "ConfigError",
    "EndpointSettings",
    "JobSettings",
    "JwtBearerAuth",
    "OAuthRefreshTokenAuth",
    "ObjectSelection",
    "OrgSettings",
    "PasswordAuth",
    "Secret",
    "StorageSettings",
    "known_keys",
    "load_config",
]
