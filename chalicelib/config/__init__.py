"""Every tunable of sluice, declared once (settings.py) and read from the environment in one place (loader.py)."""

from chalicelib.config.credentials import (
    SECRET_FIELDS,
    SECRETS_FROM_ENV,
    SECRETS_FROM_SECRETS_MANAGER,
    SecretSettings,
    secret_id_variable,
)
from chalicelib.config.fields import FromSettings, Setting
from chalicelib.config.loader import (
    declared_default,
    default_accounts,
    defaulted_variables,
    every_setting,
    load_settings,
    with_defaults,
)
from chalicelib.config.settings import MySQLSettings, Settings

__all__ = [
    "SECRETS_FROM_ENV",
    "SECRETS_FROM_SECRETS_MANAGER",
    "SECRET_FIELDS",
    "FromSettings",
    "MySQLSettings",
    "SecretSettings",
    "Setting",
    "Settings",
    "declared_default",
    "default_accounts",
    "defaulted_variables",
    "every_setting",
    "load_settings",
    "secret_id_variable",
    "with_defaults",
]
