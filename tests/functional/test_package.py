"""`make package`: the packaged templates of the prod and stack stages, read as a reviewer would."""

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.deploy.gateway_responses import definition_extension
from tools.deploy.iam_usage import allowed_statements
from tools.deploy.package import Package, package
from tools.stage import DEPLOY_TIME_STAND_INS, function_settings, stage_settings

STAGES = ("stack", "prod")
ROLES = ("ApiHandlerRole", "ConsumeLogsRole", "MigrateRole", "MaintainPartitionsRole")


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Package]:
    return {stage: package(stage, tmp_path_factory.mktemp(stage)) for stage in STAGES}


@pytest.fixture(scope="module")
def templates(packages) -> dict[str, dict[str, Any]]:
    return {stage: yaml.safe_load(p.template.read_text()) for stage, p in packages.items()}


@pytest.mark.parametrize("stage", STAGES)
def test_no_placeholder_stand_in_or_secret_is_in_the_template(templates, stage):
    text = json.dumps(templates[stage])
    for needle in ("REPLACE", "set.at.deploy.invalid", "PASSWORD", 'ADMIN_TOKEN"'):
        assert needle not in text
    for value in DEPLOY_TIME_STAND_INS.values():
        assert value not in text or value == "3306"


@pytest.mark.parametrize("stage", STAGES)
def test_each_function_has_its_own_role_allowing_only_what_it_needs(templates, stage):
    template = templates[stage]
    resources = template["Resources"]
    assert "DefaultRole" not in resources
    roles = {
        name: resources[name]["Properties"]["Role"]["Fn::GetAtt"][0]
        for name in ("APIHandler", "ConsumeLogs", "Migrate")
    }
    assert roles == {"APIHandler": "ApiHandlerRole", "ConsumeLogs": "ConsumeLogsRole", "Migrate": "MigrateRole"}
    vpc = {
        f"ec2:{action}"
        for action in (
            "CreateNetworkInterface",
            "DescribeNetworkInterfaces",
            "DescribeSubnets",
            "DeleteNetworkInterface",
            "AssignPrivateIpAddresses",
            "UnassignPrivateIpAddresses",
        )
    }
    expected = {
        "ApiHandlerRole": {
            "sqs:SendMessage*": ["LogQueue.Arn"],
            "sqs:GetQueueAttributes": ["LogQueue.Arn"],
            "secretsmanager:GetSecretValue": ["ApiDatabaseSecret.Id", "AdminTokenSecret.Id", "RedisSecretArn"],
        },
        "ConsumeLogsRole": {
            "sqs:ReceiveMessage": ["LogQueue.Arn"],
            "sqs:DeleteMessage": ["LogQueue.Arn"],
            "sqs:GetQueueAttributes": ["LogQueue.Arn"],
            "sqs:ChangeMessageVisibility*": ["LogQueue.Arn"],  # a given-back batch's short delay
            "secretsmanager:GetSecretValue": ["WriterDatabaseSecret.Id"],
        },
        "MigrateRole": {
            "secretsmanager:GetSecretValue": [
                "MySQLAdminSecretArn",
                "ApiDatabaseSecret.Id",
                "WriterDatabaseSecret.Id",
                "MaintainerDatabaseSecret.Id",
            ],
        },
        "MaintainPartitionsRole": {"secretsmanager:GetSecretValue": ["MaintainerDatabaseSecret.Id"]},
    }
    logs = {
        "ApiHandlerRole": "api",
        "ConsumeLogsRole": "consumer",
        "MigrateRole": "migrate",
        "MaintainPartitionsRole": "maintain",
    }
    for role in ROLES:
        allowed = allowed_statements(template, role)
        own_group = (
            "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${AWS::StackName}-"
            f"{logs[role]}:*"
        )
        assert {a: r for a, r in allowed.items() if a.startswith("logs:")} == {
            "logs:CreateLogStream": [own_group],
            "logs:PutLogEvents": [own_group],
        }
        assert {a for a in allowed if a.startswith("ec2:")} == vpc
        assert {a: r for a, r in allowed.items() if a.split(":")[0] in ("sqs", "secretsmanager")} == expected[role]


@pytest.mark.parametrize("stage", STAGES)
def test_api_gateways_own_answers_are_in_the_error_shape(templates, stage):
    # GIVEN the REST API's definition in the packaged template
    definition = templates[stage]["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    # THEN it carries every gateway answer of tools/deploy/gateway_responses.py (merged into Chalice's own)
    responses = definition["x-amazon-apigateway-gateway-responses"]
    assert responses == definition_extension()
    assert "/logs" in definition["paths"]
    # AND a path without a route is a 404 in the error shape, with API Gateway's request id
    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    body = json.loads(missing["responseTemplates"]["application/json"].replace("$context.requestId", "r-1"))
    assert (missing["statusCode"], body["error"]["code"], body["error"]["request_id"]) == ("404", "not_found", "r-1")


@pytest.mark.parametrize("stage", STAGES)
def test_the_queues_follow_the_stage_and_awss_rules(templates, stage):
    settings = stage_settings(stage)
    resources = templates[stage]["Resources"]
    queue, dlq = resources["LogQueue"]["Properties"], resources["LogDeadLetterQueue"]["Properties"]
    assert queue["QueueName"] == settings.log_queue_name and dlq["QueueName"] == settings.log_dlq_name
    assert int(queue["VisibilityTimeout"]) >= 6 * function_settings(stage, "consume_logs").timeout_s
    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) == settings.queue_max_receive_count
    assert queue["SqsManagedSseEnabled"] and dlq["SqsManagedSseEnabled"]
    event = resources["ConsumeLogs"]["Properties"]["Events"]["ConsumeLogsSqsEventSource"]["Properties"]
    assert event["ScalingConfig"]["MaximumConcurrency"] == settings.consumer_max_concurrency
    assert resources["ConsumeLogs"]["Properties"]["ReservedConcurrentExecutions"] >= settings.consumer_max_concurrency
    # AND partition maintenance runs every hour, on EventBridge
    schedule = resources["MaintainPartitions"]["Properties"]["Events"]["MaintainPartitionsEvent"]
    assert (schedule["Type"], schedule["Properties"]["Schedule"]) == ("Schedule", "rate(1 hour)")


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_is_throttled_and_its_concurrency_reserved(templates, stage):
    # GIVEN the packaged stage's template
    settings = stage_settings(stage)
    template = templates[stage]
    # THEN the stage's throttling covers every route and method, from parameters that default to its settings
    (method,) = template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert (method["ResourcePath"], method["HttpMethod"]) == ("/*", "*")
    assert method["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRate"}
    assert method["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurst"}
    parameters = template["Parameters"]
    assert int(parameters["ApiThrottleRate"]["Default"]) == settings.api_throttle_rate_per_s
    assert int(parameters["ApiThrottleBurst"]["Default"]) == settings.api_throttle_burst
    # AND the API function's concurrency is reserved, enough for every read slot
    reserved = template["Resources"]["APIHandler"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == function_settings(stage, "api_handler").reserved_concurrency
    assert reserved >= settings.api_read_slots


@pytest.mark.parametrize("stage", STAGES)
def test_both_queues_are_sealed_by_their_policies(templates, stage):
    # GIVEN the packaged stage's template
    resources = templates[stage]["Resources"]
    take = ["sqs:ReceiveMessage", "sqs:DeleteMessage*", "sqs:ChangeMessageVisibility*", "sqs:PurgeQueue"]
    for policy, queue in (("LogQueuePolicy", "LogQueue"), ("LogDeadLetterQueuePolicy", "LogDeadLetterQueue")):
        statements = resources[policy]["Properties"]["PolicyDocument"]["Statement"]
        # THEN every principal but the consumer's role and the operator's is denied taking messages
        (taking,) = [s for s in statements if s.get("Sid") == "OnlyTheConsumerAndTheOperatorTake"]
        assert (taking["Effect"], taking["Principal"], taking["Action"]) == ("Deny", "*", take)
        assert taking["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}

        allowed_if_operator, allowed_otherwise = taking["Condition"]["ArnNotLike"]["aws:PrincipalArn"]["Fn::If"][1:]
        assert {"Fn::GetAtt": ["ConsumeLogsRole", "Arn"]} in allowed_otherwise
        assert allowed_if_operator == [*allowed_otherwise, {"Ref": "RedriveRoleArn"}]
    # AND nobody but the operator sends to the dead-letter queue (nobody at all without one), and
    # only the log queue may use it as its dead-letter queue
    dead = resources["LogDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Fn::If"]
    with_operator, without = dead[1], dead[2]
    assert (with_operator["Effect"], with_operator["Action"], without["Effect"], without["Action"]) == (
        "Deny",
        "sqs:SendMessage*",
        "Deny",
        "sqs:SendMessage*",
    )
    assert with_operator["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": [{"Ref": "RedriveRoleArn"}]}}
    assert "Condition" not in without
    allow = resources["LogDeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    assert allow["sourceQueueArns"][0]["Fn::Sub"].endswith(f":{stage_settings(stage).log_queue_name}")


@pytest.mark.parametrize("stage", STAGES)
def test_the_migration_is_answered_once_and_waited_for_a_bounded_time(templates, stage):
    # GIVEN the packaged stage's template
    resources = templates[stage]["Resources"]
    migrate_timeout = function_settings(stage, "migrate").timeout_s
    # THEN CloudFormation waits for the migration's answer a bounded time beyond the function's (not
    # its default hour), and Lambda runs each of CloudFormation's requests once (no async retries)
    service_timeout = resources["DatabaseMigration"]["Properties"]["ServiceTimeout"]
    assert migrate_timeout < service_timeout <= 600
    assert resources["Migrate"]["Properties"]["EventInvokeConfig"] == {"MaximumRetryAttempts": 0}


@pytest.mark.parametrize("stage", STAGES)
def test_a_failed_first_create_does_not_leave_queues_that_block_the_retry(templates, stage):
    # GIVEN the packaged stage's template, whose queues have fixed names
    resources = templates[stage]["Resources"]
    for queue in ("LogQueue", "LogDeadLetterQueue"):
        # THEN they outlive the stack once it was created (they may hold acknowledged entries), but a
        # create that fails removes them, so the next attempt can make them again
        assert resources[queue]["DeletionPolicy"] == "RetainExceptOnCreate"
        assert resources[queue]["UpdateReplacePolicy"] == "Retain"


def test_prod_and_stack_are_one_template_with_different_values(templates):
    prod, stack = templates["prod"], templates["stack"]
    assert {k: v["Type"] for k, v in prod["Resources"].items()} == {k: v["Type"] for k, v in stack["Resources"].items()}
    assert prod["Parameters"] == stack["Parameters"]
    assert prod["Conditions"] == stack["Conditions"]
    assert prod["Outputs"] == stack["Outputs"]
    for role in ROLES:
        assert allowed_statements(prod, role) == allowed_statements(stack, role)
    assert prod["Resources"]["LogQueuePolicy"] == stack["Resources"]["LogQueuePolicy"]
    assert prod["Resources"]["LogDeadLetterQueuePolicy"] == stack["Resources"]["LogDeadLetterQueuePolicy"]


def test_the_package_carries_the_ca_bundle_the_stage_names(packages):
    with zipfile.ZipFile(packages["stack"].code) as code:
        assert "certs/local-dev-ca.pem" in code.namelist()
        assert "chalicelib/database/migrations/0001_initial.sql" in code.namelist()
    assert packages["stack"].missing_bundles == []
    if not Path("certs/rds-global-bundle.pem").exists():
        assert packages["prod"].missing_bundles == ["MYSQL_CA_BUNDLE"]


def test_a_budget_that_does_not_fit_the_server_is_not_packaged(tmp_path):
    total = stage_settings("prod").consumer_max_concurrency + stage_settings("prod").api_read_slots
    with pytest.raises(SystemExit, match="budget check FAILED for stage prod; not packaging"):
        package("prod", tmp_path, max_connections=total)
    assert not (tmp_path / "sam.yaml").exists()


def test_a_local_stage_is_not_packaged(tmp_path):
    with pytest.raises(SystemExit, match="not a packaged stage"):
        package("local", tmp_path)
