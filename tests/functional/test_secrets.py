"""Secrets from the real Secrets Manager (LocalStack's): read once, read again after a refusal,
and every way a secret can be wrong named by its setting."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.config
import pymysql
import pytest

from chalicelib.config import SECRETS_FROM_SECRETS_MANAGER, SecretSettings
from chalicelib.errors import ConfigError, SecretsUnavailableError
from chalicelib.mysql.connector import MySQLConnector
from chalicelib.secrets import Credentials, SecretStore
from tests.functional.conftest import SETTINGS, closed_port
from tools.admin import admin_connection
from tools.aws import aws_client


class CountingClient:
    """A real Secrets Manager client that counts GetSecretValue calls."""

    def __init__(self) -> None:
        self.client = aws_client("secretsmanager", SETTINGS)
        self.reads = 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.reads += 1
        return self.client.get_secret_value(**kwargs)


@pytest.fixture
def secretsmanager() -> Iterator[Any]:
    client = aws_client("secretsmanager", SETTINGS)
    made: list[str] = []

    def make(value: str) -> str:
        arn = str(client.create_secret(Name=f"sluice-test/{uuid.uuid4()}", SecretString=value)["ARN"])
        made.append(arn)
        return arn

    client.make = make
    yield client
    for arn in made:
        client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def store_for(arn: str, client: Any) -> SecretStore:
    return SecretStore(SecretSettings(SECRETS_FROM_SECRETS_MANAGER, ids={"mysql_api": arn}), lambda: client)


def test_a_secret_is_read_once_and_kept_until_forgotten(secretsmanager):
    arn = secretsmanager.make(json.dumps({"username": "u", "password": "first"}))
    client = CountingClient()
    store = store_for(arn, client)
    assert store.credentials("mysql_api") == Credentials("u", "first")
    assert store.credentials("mysql_api") == Credentials("u", "first")
    assert client.reads == 1
    # WHEN the secret is rotated THEN the kept value stays until the source is refreshed
    secretsmanager.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": "u", "password": "second"}))
    assert store.credentials("mysql_api").password == "first"
    assert store.source("mysql_api").refresh() == Credentials("u", "second")
    assert client.reads == 2


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("not json", "is not a JSON object"),
        ('["a list"]', "is not a JSON object"),
        ('{"username": "u"}', "has no password"),
        ('{"username": "", "password": "p"}', "has no username"),
    ],
)
def test_a_malformed_secret_is_named_by_its_setting_without_its_value(secretsmanager, value, needle):
    arn = secretsmanager.make(value)
    with pytest.raises(ConfigError, match=needle) as raised:
        store_for(arn, secretsmanager).credentials("mysql_api")
    assert "MYSQL_API_SECRET_ID" in raised.value.message
    assert arn not in raised.value.message and '"p"' not in raised.value.message


def test_a_secret_that_does_not_exist_is_a_configuration_error(secretsmanager):
    missing = "arn:aws:secretsmanager:us-east-1:000000000000:secret:sluice-test/missing-AbCdEf"
    with pytest.raises(ConfigError, match=r"cannot read the secret named by MYSQL_API_SECRET_ID \(ResourceNotFound"):
        store_for(missing, secretsmanager).credentials("mysql_api")


def test_an_unreachable_secrets_manager_is_unavailability():
    config = botocore.config.Config(connect_timeout=1, retries={"max_attempts": 1})
    unreachable = aws_client("secretsmanager", endpoint_url=f"http://127.0.0.1:{closed_port()}", config=config)
    with pytest.raises(SecretsUnavailableError):
        store_for("arn:aws:secretsmanager:us-east-1:000000000000:secret:x-AbCdEf", unreachable).credentials("mysql_api")


class RotatedSource:
    """Credentials that MySQL refuses at first (an old password) and accepts once refreshed."""

    def __init__(self, stale: Credentials, current: Credentials) -> None:
        self.value, self.current, self.refreshes = stale, current, 0

    def get(self) -> Credentials:
        return self.value

    def refresh(self) -> Credentials:
        self.refreshes += 1
        self.value = self.current
        return self.value


def test_a_refused_password_is_read_again_once():
    user = f"sluice_rot_{uuid.uuid4().hex[:8]}"
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY 'current-password'", (user,))
    try:
        source = RotatedSource(Credentials(user, "old-password"), Credentials(user, "current-password"))
        connector = MySQLConnector(SETTINGS.mysql, source, use_database=False)
        connector.connect().close()
        assert source.refreshes == 1
        # AND a password that is still wrong after the refresh is MySQL's refusal, once
        wrong = RotatedSource(Credentials(user, "old"), Credentials(user, "also-wrong"))
        with pytest.raises(pymysql.err.OperationalError, match="1045"):
            MySQLConnector(SETTINGS.mysql, wrong, use_database=False).connect()
        assert wrong.refreshes == 1
    finally:
        with admin_connection() as conn, conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
