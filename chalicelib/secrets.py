"""Credentials and tokens, from the stage's secret source.

Local stages keep plain values in environment variables (`SECRETS_SOURCE=env`). Deployed stacks
read them from AWS Secrets Manager (`SECRETS_SOURCE=secretsmanager`): each function is given the
ids of the secrets it needs only, reads each once per cold start and keeps it for the life of its
execution environment. Both sources go through this one class, so the code path is the same.
A secret's value never reaches a log line or an error message; its name and setting do.
"""

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import botocore.exceptions

from chalicelib.aws import error_code, is_unavailable
from chalicelib.config import SECRET_FIELDS, SECRETS_FROM_ENV, SecretSettings, secret_id_variable
from chalicelib.errors import ConfigError, SecretsUnavailableError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    """A user name and password (MySQL, Redis); also a CredentialSource that never changes."""

    username: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(username={self.username!r}, password=***)"

    def get(self) -> "Credentials":
        return self

    def refresh(self) -> "Credentials":
        return self


class CredentialSource(Protocol):
    """Where a connector gets its credentials: `get` the known ones, `refresh` after the server
    refused them (the secret may have been rotated since it was read)."""

    def get(self) -> Credentials: ...

    def refresh(self) -> Credentials: ...


class StoredCredentials:
    """A credentials secret of a SecretStore, as a CredentialSource."""

    def __init__(self, store: "SecretStore", name: str) -> None:
        self._store = store
        self._name = name

    def get(self) -> Credentials:
        return self._store.credentials(self._name)

    def refresh(self) -> Credentials:
        self._store.forget(self._name)
        return self._store.credentials(self._name)


class SecretStore:
    """The function's secrets, each fetched once and then kept."""

    def __init__(self, settings: SecretSettings, secretsmanager: Callable[[], Any]) -> None:
        self._settings = settings
        self._secretsmanager = secretsmanager  # called only when a secret is first read from AWS
        self._cache: dict[str, Mapping[str, str]] = {}
        self._lock = threading.Lock()

    def has(self, name: str) -> bool:
        """Whether the function is configured with the secret `name`."""
        return name in (self._settings.plain if self._settings.source == SECRETS_FROM_ENV else self._settings.ids)

    def credentials(self, name: str) -> Credentials:
        """A `{"username", "password"}` secret."""
        fields = self._fields(name)
        return Credentials(fields["username"], fields["password"])

    def token(self, name: str) -> str:
        """A `{"token"}` secret."""
        return self._fields(name)["token"]

    def source(self, name: str) -> StoredCredentials:
        """The credentials secret `name` as a source a connector can refresh."""
        return StoredCredentials(self, name)

    def forget(self, name: str) -> None:
        """Drop the kept value: the next read fetches the secret again."""
        with self._lock:
            self._cache.pop(name, None)

    def _fields(self, name: str) -> Mapping[str, str]:
        with self._lock:
            if name not in self._cache:
                self._cache[name] = self._load(name)
            return self._cache[name]

    def _load(self, name: str) -> Mapping[str, str]:
        expected = SECRET_FIELDS[name]
        if self._settings.source == SECRETS_FROM_ENV:
            if name not in self._settings.plain:
                variables = ", ".join(expected.values())
                raise ConfigError(f"secret {name} is not configured: set {variables}")
            return self._settings.plain[name]
        setting = secret_id_variable(name)
        secret_id = self._settings.ids.get(name)
        if secret_id is None:
            raise ConfigError(f"secret {name} is not configured for this function: {setting} is not set")
        value = _parse(self._get_secret_value(secret_id, setting), setting)
        missing = [key for key in expected if not isinstance(value.get(key), str) or not value[key]]
        if missing:
            raise ConfigError(
                f"the secret named by {setting} has no {', '.join(missing)}: expected JSON with {list(expected)}"
            )
        logger.info("secret read", extra={"secret": name, "setting": setting})
        return {key: value[key] for key in expected}

    def _get_secret_value(self, secret_id: str, setting: str) -> str:
        try:
            response = self._secretsmanager().get_secret_value(SecretId=secret_id)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            if is_unavailable(exc):
                raise SecretsUnavailableError(f"Secrets Manager is unavailable ({error_code(exc)})") from exc
            # Not found, access denied, a key that cannot decrypt: a deployment mistake, not an outage.
            logger.error("cannot read the secret named by %s: %s", setting, exc)
            raise ConfigError(f"cannot read the secret named by {setting} ({error_code(exc)})") from exc
        secret = response.get("SecretString")
        if not isinstance(secret, str):
            raise ConfigError(f"the secret named by {setting} has no SecretString")
        return secret


def _parse(secret: str, setting: str) -> dict[str, Any]:
    try:
        value = json.loads(secret)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError(f"the secret named by {setting} is not a JSON object")
    return value
