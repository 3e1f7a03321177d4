"""The secret store's plain-value source (local stages) and how it names what is missing."""

import pytest

from chalicelib.config import SECRETS_FROM_ENV, SECRETS_FROM_SECRETS_MANAGER, SecretSettings
from chalicelib.errors import ConfigError
from chalicelib.secrets import Credentials, SecretStore


def no_aws() -> None:
    raise AssertionError("a plain-value secret must not call AWS")


def test_plain_values_are_read_as_the_functions_read_them():
    store = SecretStore(
        SecretSettings(
            SECRETS_FROM_ENV,
            plain={"mysql_api": {"username": "api", "password": "pw"}, "admin_token": {"token": "t"}},
        ),
        no_aws,
    )
    assert store.credentials("mysql_api") == Credentials("api", "pw")
    assert store.token("admin_token") == "t"
    assert store.has("mysql_api") and not store.has("redis")


def test_a_secret_the_stage_does_not_configure_is_named_with_its_variables():
    store = SecretStore(SecretSettings(SECRETS_FROM_ENV), no_aws)
    with pytest.raises(
        ConfigError, match="secret mysql_writer is not configured: set MYSQL_WRITER_USER, MYSQL_WRITER_PASSWORD"
    ):
        store.credentials("mysql_writer")


def test_a_secret_not_given_to_this_function_is_named_with_its_id_variable():
    store = SecretStore(SecretSettings(SECRETS_FROM_SECRETS_MANAGER, ids={"mysql_api": "arn:x"}), no_aws)
    with pytest.raises(ConfigError, match="MYSQL_WRITER_SECRET_ID is not set"):
        store.credentials("mysql_writer")


def test_a_password_never_shows_in_a_repr():
    assert "hunter2" not in repr(Credentials("api", "hunter2"))
    assert "hunter2" not in str(Credentials("api", "hunter2"))
