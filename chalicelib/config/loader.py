"""Reads the settings (settings.py) from the environment, field by field, naming the variable on error.

Chalice puts a stage's variables (.chalice/config.json) into the environment before it imports
`app.py`, both in Lambda and for `chalice local`, `chalice deploy` and `chalice package`, so the
SQS decorator can read them at import. What a stage leaves out comes from the declared defaults.
"""

import os
import typing
from collections.abc import Mapping
from typing import Any

from chalicelib.config.credentials import (
    LOCAL_ONLY_VARIABLES,
    SECRET_DEFAULTS,
    SECRET_FIELDS,
    SECRETS_FROM_ENV,
    SECRETS_FROM_SECRETS_MANAGER,
    SecretSettings,
    secret_id_variable,
    secret_variables,
)
from chalicelib.config.fields import FromSettings, Setting, declared
from chalicelib.config.settings import MySQLSettings, Settings
from chalicelib.errors import ConfigError


def every_setting() -> list[Setting]:
    """Every variable the loader reads, in the order the documentation lists them."""
    declarations = [found for cls in (Settings, MySQLSettings, SecretSettings) for _, found in declared(cls)]
    return [*declarations, *secret_variables()]


def declared_default(name: str) -> str:
    """The declared default of the variable `name`, as text (one that is not made from other settings)."""
    found = next(s for s in every_setting() if s.env == name)
    if not isinstance(found.default, str):
        raise ValueError(f"{name} has no plain default")
    return found.default


def defaulted_variables() -> set[str]:
    """The variables whose value a stage may leave to the declared defaults."""
    return {
        found.env for found in every_setting() if isinstance(found.default, str | FromSettings) and not found.fallback
    }


def with_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with every unset setting that has a default filled in (a default made from an
    unset or empty setting is left out: reading that setting names the problem)."""
    resolved = dict(environ)
    settings = {found.env: found for found in every_setting() if found.env not in SECRET_DEFAULTS}

    def resolve(name: str) -> str | None:
        if name in resolved:
            return resolved[name]
        found = settings.get(name)
        if found is None:
            return None
        if found.fallback is not None:
            value = resolved.get(found.fallback) or (found.default if isinstance(found.default, str) else None)
        elif isinstance(found.default, FromSettings):
            value = _render(found.default, resolve)
        else:
            value = found.default if isinstance(found.default, str) else None
        if value is not None:
            resolved[name] = value
        return value

    for name, found in settings.items():
        if found.fallback is not None and not resolved.get(name):
            resolved.pop(name, None)  # unset or empty: the fallback, then the default
        resolve(name)
    return resolved


def default_accounts(environ: Mapping[str, str]) -> dict[str, str]:
    """The MySQL account names that follow from the database's name (MYSQL_API_USER: <database>_api, ...)."""
    env = _Reader(with_defaults(environ))
    found = {variable: _secret_default(variable, env) for variable in SECRET_DEFAULTS}
    return {variable: value for variable, value in found.items() if value}


def _render(default: FromSettings, resolve: typing.Callable[[str], str | None]) -> str | None:
    values = {name: resolve(name) for name in default.inputs()}
    if not all(values.values()):
        return None
    return default.render({name: value for name, value in values.items() if value})


class _Reader:
    """Reads typed values from an environment mapping, naming the variable on error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        """The value, or None when the variable is unset or empty."""
        return self._environ.get(name) or None

    def text(self, name: str, *, allow_empty: bool = False) -> str:
        value = self._environ.get(name)
        if value is None:
            raise ConfigError(f"environment variable {name} is not set")
        if not value and not allow_empty:
            raise ConfigError(f"environment variable {name} is empty")
        return value

    def integer(self, name: str, *, minimum: int = 0) -> int:
        raw = self.text(name)
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None
        if value < minimum:
            raise ConfigError(f"environment variable {name}={value} is below {minimum}")
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.text(name)
        if value not in choices:
            raise ConfigError(f"environment variable {name}={value!r} is not one of {', '.join(choices)}")
        return value

    def number(self, name: str) -> float:
        raw = self.text(name)
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"environment variable {name}={raw!r} is not a number") from None
        if value <= 0:
            raise ConfigError(f"environment variable {name}={value} must be positive")
        return value

    def flag(self, name: str) -> bool:
        raw = self.text(name).lower()
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment variable {name}={raw!r} is not a boolean")

    def setting(self, found: Setting, kind: Any) -> Any:
        """The value of one declared setting of type `kind`."""
        if kind is bool:
            return self.flag(found.env)
        if kind is int:
            return self.integer(found.env, minimum=found.minimum)
        if kind is float:
            return self.number(found.env)
        if kind is str:
            return self.text(found.env)
        if kind == str | None:
            if found.default is None:
                return self.optional(found.env)
            return self.text(found.env, allow_empty=True) or None  # must be set; empty means none
        raise TypeError(f"{found.env}: no reader for {kind}")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment; raise ConfigError naming what is missing or wrong."""
    env = _Reader(with_defaults(os.environ if environ is None else environ))
    own = _declared_values(Settings, env)
    settings = Settings(mysql=_mysql_settings(env), secrets=_secret_settings(env), **own)
    if not settings.api_keys_required and settings.secrets.source == SECRETS_FROM_SECRETS_MANAGER:
        raise ConfigError("API_KEYS_REQUIRED is off in a deployed stack: only a local stage may run /logs without keys")
    reserved = settings.api_key_read_slots + settings.api_public_read_slots
    if reserved >= settings.api_read_slots:
        raise ConfigError(
            f"API_KEY_READ_SLOTS + API_PUBLIC_READ_SLOTS = {reserved} leave none of API_READ_SLOTS"
            f" ({settings.api_read_slots}) for `GET /logs`: raise API_READ_SLOTS or lower them"
        )
    _refuse_local_only(settings, env)
    return settings


def _refuse_local_only(settings: Settings, env: _Reader) -> None:
    """A function on AWS takes no local-only secret source, and no deployed function (in AWS or an
    emulator: the endpoint variable tells them apart) holds a development key or a plain secret."""
    if not env.optional("AWS_LAMBDA_FUNCTION_NAME"):  # chalice local, the tools, the tests
        return
    if not env.optional("AWS_ENDPOINT_URL") and settings.secrets.source == SECRETS_FROM_ENV:
        raise ConfigError(
            f"SECRETS_SOURCE={SECRETS_FROM_ENV} is for local stages: a function on AWS reads its secrets from"
            f" Secrets Manager (SECRETS_SOURCE={SECRETS_FROM_SECRETS_MANAGER})"
        )
    if settings.secrets.source == SECRETS_FROM_SECRETS_MANAGER:
        local_only = [name for name in LOCAL_ONLY_VARIABLES if env.optional(name)]
        if local_only:
            raise ConfigError(f"{', '.join(local_only)}: local stages only, never set in a deployed stack")


def _declared_values(cls: type, env: _Reader) -> dict[str, Any]:
    """The values of the dataclass `cls`'s declared settings, by attribute, in declaration order."""
    kinds = typing.get_type_hints(cls)
    return {item.name: env.setting(found, kinds[item.name]) for item, found in declared(cls)}


def _mysql_settings(env: _Reader) -> MySQLSettings:
    mysql = MySQLSettings(**_declared_values(MySQLSettings, env))
    if mysql.tls and mysql.ca_bundle is None:
        # Never fall back to the system's CA store (RDS certificates chain to Amazon RDS's own CA)
        # or to no verification at all.
        raise ConfigError("MYSQL_TLS is on but MYSQL_CA_BUNDLE is not set: name the CA bundle to verify MySQL with")
    return mysql


def _secret_settings(env: _Reader) -> SecretSettings:
    source = env.choice("SECRETS_SOURCE", (SECRETS_FROM_ENV, SECRETS_FROM_SECRETS_MANAGER))
    if source == SECRETS_FROM_SECRETS_MANAGER:
        ids = {name: env.optional(secret_id_variable(name)) for name in SECRET_FIELDS}
        return SecretSettings(source, ids={name: value for name, value in ids.items() if value})
    plain: dict[str, dict[str, str]] = {}
    for name, fields in SECRET_FIELDS.items():
        values = {key: env.optional(variable) for key, variable in fields.items()}
        if any(values.values()):  # a secret the stage configures; a field it leaves out may have a default
            defaults = {key: _secret_default(variable, env) for key, variable in fields.items()}
            plain[name] = {key: value or defaults[key] or "" for key, value in values.items()}
    return SecretSettings(source, plain=plain)


def _secret_default(variable: str, env: _Reader) -> str | None:
    default = SECRET_DEFAULTS.get(variable)
    return None if default is None else _render(default, env.optional)
