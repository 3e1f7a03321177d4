"""Settings come from the environment: each stage in .chalice/config.json sets what has no declared default."""

import os

import pytest

from chalicelib.config import every_setting, load_settings
from chalicelib.errors import ConfigError
from tools.ops import configuration
from tools.stage import stage_environment, stage_settings

LOCAL_STAGES = ["local", "test", "browser", "integration", "bench", "faults", "faults-deployed"]
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
    # GIVEN a stage without a setting that has no default (API_READ_SLOTS has one now)
    env = stage_environment("local")
    del env["MYSQL_HOST"]
    # WHEN it loads THEN the variable is named
    with pytest.raises(ConfigError, match="MYSQL_HOST is not set"):
        load_settings(env)


def test_names_follow_from_the_stage_unless_it_sets_them():
    # GIVEN a stage named faults-deployed that sets only its password and its shortened maintainer account
    settings = load_settings(stage_environment("faults-deployed"))
    # THEN the names it leaves out follow from its name
    assert settings.mysql.database == "sluice_faults_deployed"
    assert settings.redis_key_prefix == "sluice:faults-deployed:"
    assert (settings.log_queue_name, settings.log_dlq_name) == (
        "sluice-faults-deployed-logs",
        "sluice-faults-deployed-logs-dlq",
    )
    assert settings.secrets.plain["mysql_api"]["username"] == "sluice_faults_deployed_api"
    assert settings.secrets.plain["mysql_writer"]["username"] == "sluice_faults_deployed_writer"
    # AND what it sets wins
    assert settings.secrets.plain["mysql_maintainer"]["username"] == "sluice_fdeployed_maintainer"
    # AND a database it names carries the account names along (prod's "sluice": sluice_api)
    env = {**stage_environment("local"), "MYSQL_DATABASE": "sluice"}
    assert load_settings(env).secrets.plain["mysql_api"]["username"] == "sluice_api"


def test_a_secret_the_stage_does_not_configure_gets_no_default_account():
    # GIVEN a local stage without the writer's password WHEN it loads THEN the writer's secret is absent
    env = {k: v for k, v in stage_environment("local").items() if not k.startswith("MYSQL_WRITER_")}
    assert "mysql_writer" not in load_settings(env).secrets.plain


def test_another_stages_environment_does_not_change_a_stage(monkeypatch):
    # GIVEN this process holds another stage's overrides and names (as after apply_stage_environment)
    monkeypatch.setenv("QUEUE_MAX_RECEIVE_COUNT", "3")
    monkeypatch.setenv("LOG_QUEUE_NAME", "sluice-test-logs")
    monkeypatch.setenv("MYSQL_API_USER", "sluice_test_api")
    # WHEN the local stage's settings are read THEN they are the stage's own and the defaults
    settings = stage_settings("local")
    assert settings.queue_max_receive_count == 5
    assert settings.log_queue_name == "sluice-local-logs"
    assert settings.secrets.plain["mysql_api"]["username"] == "sluice_local_api"


def test_the_generated_page_lists_every_setting():
    text = configuration.rendered()
    missing = [found.env for found in every_setting() if f"| `{found.env}` |" not in text]
    assert not missing


def test_the_check_fails_on_a_stale_page(tmp_path, capsys):
    # GIVEN a page written from the declarations, then edited by hand
    page = tmp_path / "configuration.md"
    assert configuration.main([], path=page) == 0
    assert configuration.main(["--check"], path=page) == 0
    page.write_text(page.read_text().replace("`QUEUE_MAX_RECEIVE_COUNT` | `5`", "`QUEUE_MAX_RECEIVE_COUNT` | `6`"))
    # WHEN it is checked THEN the check fails, saying what to run
    assert configuration.main(["--check"], path=page) == 1
    assert "run python -m tools.ops.configuration" in capsys.readouterr().err


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


def test_what_a_stage_leaves_to_its_defaults_is_never_taken_from_this_process(monkeypatch):
    # GIVEN this process's environment holds another stage's value of a defaulted setting
    from tools.stage import forget_defaulted_variables, outside_environment

    monkeypatch.setenv("SLOT_WAIT_MS", "300")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    # WHEN the environment chalice package, chalice deploy and chalice local get is made
    # THEN the defaulted setting is left out, and what is not a setting stays
    assert "SLOT_WAIT_MS" not in outside_environment()
    assert outside_environment()["AWS_REGION"] == "eu-west-1"
    forget_defaulted_variables()
    assert "SLOT_WAIT_MS" not in os.environ


def deployed_environment() -> dict[str, str]:
    """The prod stage as its stack's API function sees it on AWS."""
    env = {**stage_environment("prod"), "MYSQL_HOST": "db.example", "MYSQL_PORT": "3306"}
    env |= {"REDIS_URL": "rediss://cache.example:6379/0", "AWS_LAMBDA_FUNCTION_NAME": "sluice-api"}
    return env


def test_a_function_on_aws_refuses_the_local_secret_source():
    # GIVEN a local stage's settings in a function on AWS (no emulator's endpoint)
    env = {**stage_environment("local"), "AWS_LAMBDA_FUNCTION_NAME": "sluice-api"}
    # THEN it refuses to start, naming the setting
    with pytest.raises(ConfigError, match="SECRETS_SOURCE=env is for local stages"):
        load_settings(env)
    # AND the same function in an emulator (which sets the endpoint) starts: the integration stage's case
    assert load_settings({**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}).secrets.source == "env"


@pytest.mark.parametrize("variable", ["DEV_API_KEY", "ADMIN_TOKEN", "MYSQL_API_PASSWORD"])
def test_a_deployed_function_refuses_a_development_key_or_a_plain_secret(variable):
    # GIVEN the prod stage's function, which loads (Secrets Manager)
    assert load_settings(deployed_environment()).secrets.source == "secretsmanager"
    # WHEN a local-only variable is in its environment THEN it refuses to start, naming it
    with pytest.raises(ConfigError, match=f"^{variable}: local stages only"):
        load_settings({**deployed_environment(), variable: "slk_" + "x" * 43})


def test_the_reserved_read_slots_leave_some_for_the_rest():
    # GIVEN R = 5 with 2 slots for key lookups and 3 for anonymous reads
    env = {**stage_environment("local"), "API_READ_SLOTS": "5"}
    # THEN nothing is left for GET /logs: refused, naming the settings
    with pytest.raises(ConfigError, match="API_KEY_READ_SLOTS \\+ API_PUBLIC_READ_SLOTS = 5"):
        load_settings(env)
    assert load_settings({**env, "API_READ_SLOTS": "6"}).api_read_slots == 6
