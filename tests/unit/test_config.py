"""Settings come from the environment, and every stage in .chalice/config.json provides them."""

import pytest

from chalicelib.config import load_settings
from chalicelib.errors import ConfigError
from tools.stage import stage_environment


@pytest.mark.parametrize("stage", ["local", "test", "prod"])
def test_every_stage_defines_every_setting(stage):
    settings = load_settings(stage_environment(stage))
    assert settings.stage == stage


def test_the_local_and_test_stages_share_servers_but_not_data():
    local, test = load_settings(stage_environment("local")), load_settings(stage_environment("test"))
    assert (local.mysql.port, local.redis_url, local.sqs_endpoint_url) == (
        test.mysql.port,
        test.redis_url,
        test.sqs_endpoint_url,
    )
    assert local.mysql.database != test.mysql.database
    assert local.redis_key_prefix != test.redis_key_prefix
    assert local.log_queue_name != test.log_queue_name
    assert local.mysql.api_user != test.mysql.api_user


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
        ("ADMIN_TOKEN", "", "is empty"),
    ],
)
def test_bad_values_are_explained(name, value, needle):
    env = {**stage_environment("local"), name: value}
    with pytest.raises(ConfigError, match=needle):
        load_settings(env)


def test_an_empty_sqs_endpoint_means_aws_itself():
    assert load_settings(stage_environment("prod")).sqs_endpoint_url is None
