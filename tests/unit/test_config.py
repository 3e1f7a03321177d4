"""Settings come from the environment, and every stage in .chalice/config.json provides them."""

import pytest

from chalicelib.config import load_settings
from chalicelib.errors import ConfigError
from tools.stage import stage_environment


@pytest.mark.parametrize("stage", ["local", "test", "integration", "prod"])
def test_every_stage_defines_every_setting(stage):
    settings = load_settings(stage_environment(stage))
    assert settings.stage == stage


def test_the_local_stages_share_servers_but_not_data():
    stages = [load_settings(stage_environment(name)) for name in ("local", "test", "integration")]
    assert len({(s.mysql.port, s.redis_url, s.sqs_endpoint_url) for s in stages}) == 1
    for attribute in ("redis_key_prefix", "log_queue_name", "log_dlq_name", "admin_token"):
        assert len({getattr(s, attribute) for s in stages}) == 3, attribute
    for attribute in ("database", "api_user", "writer_user"):
        assert len({getattr(s.mysql, attribute) for s in stages}) == 3, attribute


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
