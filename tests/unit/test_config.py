"""Settings come from the environment, and every stage in .chalice/config.json provides them."""

import pytest

from chalicelib.config import load_settings
from chalicelib.errors import ConfigError
from tools.stage import stage_environment

LOCAL_STAGES = ["local", "test", "integration", "bench", "faults", "faults-deployed"]
PACKAGED_STAGES = ["stack", "prod"]


@pytest.mark.parametrize("stage", LOCAL_STAGES)
def test_every_local_stage_defines_every_setting(stage):
    settings = load_settings(stage_environment(stage))
    assert settings.stage == stage
    assert settings.secrets.source == "env"
    assert {"mysql_api", "mysql_writer", "admin_token"} <= set(settings.secrets.plain)


@pytest.mark.parametrize("stage", PACKAGED_STAGES)
def test_a_packaged_stage_gets_its_servers_and_secrets_from_the_stack(stage):
    # GIVEN a packaged stage's own settings: no server address, no secret, nothing to fill in
    env = stage_environment(stage)
    assert not {"MYSQL_HOST", "MYSQL_PORT", "REDIS_URL", "LOG_QUEUE_URL"} & set(env)
    assert not [name for name in env if "PASSWORD" in name or "TOKEN" in name or name.endswith("_USER")]
    assert not [value for value in env.values() if "REPLACE" in value.upper()]
    # WHEN the stack provides the deploy-time settings THEN they load, with secrets from Secrets Manager
    deployed = {**env, "MYSQL_HOST": "db.example", "MYSQL_PORT": "3306", "REDIS_URL": "rediss://cache.example:6379/0"}
    deployed["MYSQL_API_SECRET_ID"] = "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-AbCdEf"
    settings = load_settings(deployed)
    assert settings.secrets.source == "secretsmanager"
    assert settings.secrets.ids == {"mysql_api": deployed["MYSQL_API_SECRET_ID"]}
    assert settings.mysql.tls and settings.mysql.ca_bundle


def test_the_local_stages_share_servers_but_not_data():
    stages = [load_settings(stage_environment(name)) for name in LOCAL_STAGES]
    assert len({(s.mysql.port, s.redis_url) for s in stages}) == 1
    # (the fault suite's stage reaches the same LocalStack through its fault proxy, faults/proxy.py)
    assert len({s.sqs_endpoint_url for s in stages if s.stage != "faults"}) == 1
    for attribute in ("redis_key_prefix", "log_queue_name", "log_dlq_name"):
        assert len({getattr(s, attribute) for s in stages}) == len(stages), attribute
    assert len({s.mysql.database for s in stages}) == len(stages)
    for secret in ("mysql_api", "mysql_writer", "admin_token"):
        assert len({tuple(s.secrets.plain[secret].values()) for s in stages}) == len(stages), secret


def test_tls_without_a_ca_bundle_is_refused_by_name():
    env = {**stage_environment("local"), "MYSQL_TLS": "true"}
    with pytest.raises(ConfigError, match="MYSQL_CA_BUNDLE is not set"):
        load_settings(env)


def test_a_missing_variable_is_named():
    env = stage_environment("local")
    del env["API_READ_SLOTS"]
    with pytest.raises(ConfigError, match="API_READ_SLOTS is not set"):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("API_READ_SLOTS", "eight", "not an integer"),
        ("API_READ_SLOTS", "0", "below 1"),
        ("MYSQL_TLS", "maybe", "not a boolean"),
        ("REDIS_TIMEOUT_S", "-1", "must be positive"),
        ("SECRETS_SOURCE", "vault", "not one of env, secretsmanager"),
        ("LOG_QUEUE_NAME", "", "is empty"),
    ],
)
def test_bad_values_are_explained(name, value, needle):
    env = {**stage_environment("local"), name: value}
    with pytest.raises(ConfigError, match=needle):
        load_settings(env)


def test_an_empty_sqs_endpoint_means_aws_itself():
    env = {**stage_environment("local"), "SQS_ENDPOINT_URL": ""}
    assert load_settings(env).sqs_endpoint_url is None


def test_a_deployed_stack_may_not_run_without_keys():
    env = {
        **stage_environment("stack"),
        "MYSQL_HOST": "db.example",
        "MYSQL_PORT": "3306",
        "REDIS_URL": "rediss://cache.example:6379/0",
        "API_KEYS_REQUIRED": "false",
    }
    with pytest.raises(ConfigError, match="API_KEYS_REQUIRED is off in a deployed stack"):
        load_settings(env)
