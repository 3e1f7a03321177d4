"""The operator's commands against a stack on AWS (TARGET=aws): what make would run for them, and
how they find the stack, read its token and call its migrate function, with stand-in clients."""

import io
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions
import pytest

from tools.ops import status
from tools.ops.deployed import aws_stack_api
from tools.ops.migrate import READ_TIMEOUT_MARGIN_S, invoke_migrate, migrate_client_config
from tools.stage import ROOT, function_settings

# Each operator's rule, with the variables it needs, and the command it must run on AWS.
OPS_RULES = {
    "migrate": ([], "-m tools.ops.migrate --stage prod --target aws"),
    "redrive": ([], "-m tools.ops.redrive dead-letters --stage prod --target aws"),
    "replay-rejects": ([], "-m tools.ops.redrive rejects --stage prod --target aws"),
    "key": (["NAME=web-1", "SOURCES=web-1"], "-m tools.ops.keys create --stage prod"),
    "status": ([], "-m tools.ops.status --stage prod --target aws"),
}
# What needs more than the app's Python environment: apt's MariaDB and Redis, the emulators' and the
# Lambda runtime's environments, the local services.
LOCAL_ONLY = (
    "ensure-system-packages",
    "tools.devstack",
    "make-venv.sh .venv-",
    ".venv-localstack",
    ".venv-lambda",
    ".venv-ministack",
    "host_executor",
)


def make_dry_run(rule: str, *variables: str) -> str:
    """What `make -n <rule> <variables>` would run (nothing is run), joined into one text."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "TARGET", "STAGE", "STACK_NAME")
    }
    ran = subprocess.run(
        ["make", "-n", "--no-print-directory", rule, *variables],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.replace("\\\n", " ")


@pytest.mark.parametrize("rule", sorted(OPS_RULES))
def test_an_operators_command_on_aws_needs_only_python_and_credentials(rule):
    """GIVEN an operator's rule with TARGET=aws STAGE=prod WHEN make shows what it would run
    THEN it runs the tool against the stack on AWS, and nothing installs or starts local services."""
    variables, command = OPS_RULES[rule]
    would_run = make_dry_run(rule, "TARGET=aws", "STAGE=prod", *variables)
    assert command in would_run
    assert "--target aws" in would_run
    assert [part for part in LOCAL_ONLY if part in would_run] == []


@pytest.mark.parametrize("rule", sorted(OPS_RULES))
def test_the_same_command_for_a_local_stack_still_sets_up_the_local_services(rule):
    """GIVEN the same rule for a stack in LocalStack WHEN make shows what it would run
    THEN it sets up and starts the local services first (the check above can see them)."""
    variables, _ = OPS_RULES[rule]
    would_run = make_dry_run(rule, "TARGET=localstack", "STAGE=stack", *variables)
    assert "tools.devstack" in would_run
    if rule != "status":  # make status reads what runs; it installs no system packages
        assert "ensure-system-packages" in would_run


def test_a_stack_name_reaches_the_aws_command():
    """GIVEN STACK_NAME with TARGET=aws WHEN make shows what migrate would run THEN it names that stack."""
    assert '--stack-name "sluice-blue"' in make_dry_run("migrate", "TARGET=aws", "STAGE=prod", "STACK_NAME=sluice-blue")


class FakeCloudFormation:
    """describe_stacks of one stack with the given outputs."""

    def __init__(self, outputs: dict[str, str], status: str = "CREATE_COMPLETE") -> None:
        self.stack = {
            "StackName": "sluice-prod",
            "StackStatus": status,
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        }
        self.asked: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.asked.append(StackName)
        if StackName != self.stack["StackName"]:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}},
                "DescribeStacks",
            )
        return {"Stacks": [self.stack]}


class FakeSecrets:
    """get_secret_value of the admin token's secret."""

    def __init__(self, arn: str, token: str) -> None:
        self.arn, self.token = arn, token

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        assert SecretId == self.arn
        return {"SecretString": json.dumps({"token": self.token})}


SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AdminTokenSecret-abc"
ENDPOINT = "https://abc123.execute-api.eu-west-1.amazonaws.com/api/"


def test_make_key_on_aws_calls_the_stacks_endpoint_with_the_token_from_its_secret():
    """GIVEN a stack whose outputs name its API and its admin token's secret WHEN make key looks
    it up THEN it calls the EndpointURL with the token from Secrets Manager (or the URL it is given)."""
    cfn = FakeCloudFormation({"EndpointURL": ENDPOINT, "AdminTokenSecretArn": SECRET_ARN})
    secrets = FakeSecrets(SECRET_ARN, "the-admin-token")
    assert aws_stack_api(cfn, secrets, "sluice-prod") == (ENDPOINT, "the-admin-token")
    assert aws_stack_api(cfn, secrets, "sluice-prod", "https://logs.example.com/") == (
        "https://logs.example.com/",
        "the-admin-token",
    )
    assert cfn.asked == ["sluice-prod", "sluice-prod"]


def test_make_key_on_aws_names_a_missing_stack_or_output():
    """GIVEN no such stack, then a stack without the token's output WHEN make key looks them up
    THEN it stops with a line that says which, not a traceback."""
    secrets = FakeSecrets(SECRET_ARN, "unused")
    with pytest.raises(SystemExit, match=r"stack sluice-nope cannot be read: .*does not exist"):
        aws_stack_api(FakeCloudFormation({}), secrets, "sluice-nope")
    cfn = FakeCloudFormation({"EndpointURL": ENDPOINT}, status="ROLLBACK_COMPLETE")
    with pytest.raises(SystemExit, match=r"\(ROLLBACK_COMPLETE\) has no output AdminTokenSecretArn"):
        aws_stack_api(cfn, secrets, "sluice-prod")


@pytest.mark.parametrize("stage", ["stack", "prod"])
def test_the_migrate_call_outwaits_the_function_and_is_never_retried(stage):
    """GIVEN a packaged stage's migrate function and its timeout WHEN make migrate makes its Lambda
    client THEN the client reads longer than the function may run, and makes one attempt only."""
    config = migrate_client_config(stage)
    timeout_s = function_settings(stage, "migrate").timeout_s
    assert config.read_timeout == timeout_s + READ_TIMEOUT_MARGIN_S > timeout_s
    assert config.retries == {"total_max_attempts": 1}


class FakeLambda:
    """invoke, answering with `answer` or raising it."""

    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.calls = 0

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        assert kwargs["InvocationType"] == "RequestResponse"
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_a_migration_that_outlasts_the_read_is_not_invoked_again():
    """GIVEN a migrate function that gives no answer in time WHEN make migrate invokes it
    THEN it stops after one call, saying it may still run."""
    client = FakeLambda(botocore.exceptions.ReadTimeoutError(endpoint_url="https://lambda"))
    with pytest.raises(SystemExit, match="may still be running"):
        invoke_migrate("sluice-prod-migrate", client)
    assert client.calls == 1


def test_a_migrations_answer_and_its_failure():
    """GIVEN a migrate function that answers, then one that fails WHEN make migrate invokes each
    THEN it returns the answer, then stops with the function's error."""
    result = {"database": "sluice", "schema_version": 7, "applied": [], "max_connections": 60, "budget": 16}
    answered = FakeLambda({"Payload": io.BytesIO(json.dumps(result).encode())})
    assert invoke_migrate("sluice-prod-migrate", answered) == result
    error = {"errorType": "MigrationError", "errorMessage": "migration 7 failed"}
    failed = FakeLambda({"Payload": io.BytesIO(json.dumps(error).encode()), "FunctionError": "Unhandled"})
    with pytest.raises(SystemExit, match="sluice-prod-migrate failed: MigrationError: migration 7 failed"):
        invoke_migrate("sluice-prod-migrate", failed)


class FakePaginator:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def paginate(self, StackName: str) -> list[dict[str, Any]]:
        return self.pages


class FakeStackCloudFormation(FakeCloudFormation):
    """A stack with two alarms among its resources."""

    def get_paginator(self, operation: str) -> FakePaginator:
        assert operation == "list_stack_resources"
        alarms = [
            {"LogicalResourceId": logical, "PhysicalResourceId": f"sluice-prod-{logical}"}
            for logical in ("DeadLettersAlarm", "QueueBacklogAlarm")
        ]
        resources = [{**alarm, "ResourceType": "AWS::CloudWatch::Alarm"} for alarm in alarms]
        resources.append(
            {"LogicalResourceId": "LogQueue", "PhysicalResourceId": "q", "ResourceType": "AWS::SQS::Queue"}
        )
        return FakePaginator([{"StackResourceSummaries": resources[:1]}, {"StackResourceSummaries": resources[1:]}])


class FakeSQS:
    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        waiting = "3" if QueueUrl.endswith("/sluice-prod-logs") else "1"
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": waiting,
                "ApproximateNumberOfMessagesNotVisible": "0",
                "ApproximateNumberOfMessagesDelayed": "0",
            }
        }


class FakeCloudWatch:
    def __init__(self, refuse_alarms: bool = False) -> None:
        self.refuse_alarms = refuse_alarms
        self.asked_for: list[str] = []

    def get_metric_statistics(self, **kwargs: Any) -> dict[str, Any]:
        self.asked_for.append(kwargs["Dimensions"][0]["Value"])
        now = datetime.now(UTC)
        return {
            "Datapoints": [
                {"Timestamp": now - timedelta(minutes=2), "Maximum": 9.0},
                {"Timestamp": now, "Maximum": 42.0},
            ]
        }

    def describe_alarms(self, AlarmNames: list[str]) -> dict[str, Any]:
        if self.refuse_alarms:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "DescribeAlarms"
            )
        states = {"sluice-prod-DeadLettersAlarm": "ALARM", "sluice-prod-QueueBacklogAlarm": "OK"}
        return {"MetricAlarms": [{"AlarmName": name, "StateValue": states[name]} for name in AlarmNames]}


def stack_clients(monkeypatch: pytest.MonkeyPatch, cloudwatch: FakeCloudWatch) -> None:
    """tools.ops.status's AWS clients, stand-ins of a stack on AWS (no endpoint: AWS itself)."""
    outputs = {
        "LogQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/sluice-prod-logs",
        "LogDeadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/sluice-prod-logs-dlq",
        "SchemaVersion": "7",
    }
    clients = {"cloudformation": FakeStackCloudFormation(outputs), "sqs": FakeSQS(), "cloudwatch": cloudwatch}

    def aws_client(service: str, endpoint_url: str | None = None, **_: Any) -> Any:
        assert endpoint_url is None
        return clients[service]

    monkeypatch.setattr(status, "aws_client", aws_client)


def test_make_status_on_aws_reads_the_stack_and_says_what_it_skips(monkeypatch):
    """GIVEN a stack on AWS with waiting messages, a dead letter and an alarm firing WHEN make status
    reads it THEN it shows its queues, the oldest message's age and the alarm, and says the database's
    figures are skipped and why."""
    cloudwatch = FakeCloudWatch()
    stack_clients(monkeypatch, cloudwatch)
    lines = status.stack_sample("prod", "aws")
    assert "stage prod: stack sluice-prod (CREATE_COMPLETE, schema version 7)" in lines[0]
    assert lines[1:5] == [
        "  log queue:    3 waiting, 0 in flight, 0 delayed",
        "  dead letters: 1",
        "  oldest:       42 s (ApproximateAgeOfOldestMessage, CloudWatch, last 10 min)",
        "  alarms:       1 of 2 in ALARM: DeadLettersAlarm",
    ]
    assert lines[5] == status.SKIPPED_ON_A_STACK
    assert "skipped for a deployed stack" in lines[5] and "inside its VPC" in lines[5]
    assert cloudwatch.asked_for == ["sluice-prod-logs"]


def test_make_status_on_aws_reports_what_it_may_not_read(monkeypatch):
    """GIVEN credentials that may not describe the alarms WHEN make status reads the stack
    THEN the alarms' line says why, and the rest is still reported."""
    stack_clients(monkeypatch, FakeCloudWatch(refuse_alarms=True))
    lines = status.stack_sample("prod", "aws")
    assert lines[4].startswith("  alarms:       cannot be read (ClientError: ")
    assert "AccessDenied" in lines[4]
    assert lines[1] == "  log queue:    3 waiting, 0 in flight, 0 delayed"
