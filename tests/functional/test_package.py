"""`make package`: the packaged templates of the prod and stack stages, read as a reviewer would."""

import json
import zipfile
from typing import Any

import pytest
import yaml

from chalicelib.config import load_settings
from chalicelib.database import custom_resource
from chalicelib.database.revision import migration_properties
from tests.support.bundles import name_a_missing_bundle
from tools.deploy.gateway_responses import definition_extension
from tools.deploy.iam_usage import allowed_statements
from tools.deploy.package import Package, package
from tools.stage import DEPLOY_TIME_STAND_INS, chalice_config, function_settings, stage_settings

STAGES = ("stack", "prod")
ROLES = ("ApiHandlerRole", "ConsumeLogsRole", "MigrateRole", "MaintainPartitionsRole")


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Package]:
    # The template of each (prod's CA bundle is not on this machine: template_only, as `make lint`)
    return {stage: package(stage, tmp_path_factory.mktemp(stage), template_only=True) for stage in STAGES}


@pytest.fixture(scope="module")
def templates(packages) -> dict[str, dict[str, Any]]:
    return {stage: yaml.safe_load(p.template.read_text()) for stage, p in packages.items()}


def reservation(function: dict[str, Any]) -> int:
    """A function's reserved concurrency, which the template makes only when ReserveConcurrency is "true"."""
    condition, reserved, otherwise = function["Properties"]["ReservedConcurrentExecutions"]["Fn::If"]
    assert (condition, otherwise) == ("Reserve", {"Ref": "AWS::NoValue"})
    return int(reserved)


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
    assert reservation(resources["ConsumeLogs"]) >= settings.consumer_max_concurrency
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
    reserved = reservation(template["Resources"]["APIHandler"])
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


@pytest.mark.parametrize("stage", STAGES)
def test_the_migrations_answer_reaches_cloudformation_through_s3(templates, stage):
    # GIVEN the packaged stage's template, whose functions run in private subnets
    template = templates[stage]
    resources = template["Resources"]
    # THEN it makes an S3 gateway endpoint on the route tables it is given (the migration PUTs its
    # answer to a pre-signed S3 URL); only "" leaves it out (a VPC with its own, or a NAT gateway)
    s3 = resources["S3Endpoint"]
    assert s3["Condition"] == "MakeS3Endpoint"
    assert template["Conditions"]["MakeS3Endpoint"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "RouteTableIds"}, ""]}]}
    assert s3["Properties"]["VpcEndpointType"] == "Gateway"
    assert s3["Properties"]["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.s3"}
    assert s3["Properties"]["RouteTableIds"] == {"Fn::Split": [",", {"Ref": "RouteTableIds"}]}
    # AND the migration waits for every endpoint it uses, and runs again when its database changes
    migration = resources["DatabaseMigration"]["Properties"]
    assert migration["Endpoints"] == [
        {"Fn::If": [condition, {"Ref": name}, {"Ref": "AWS::NoValue"}]}
        for condition, name in (
            ("MakeVpcEndpoints", "SqsEndpoint"),
            ("MakeVpcEndpoints", "SecretsManagerEndpoint"),
            ("MakeS3Endpoint", "S3Endpoint"),
        )
    ]
    assert {migration[name]["Ref"] for name in ("MySQLHost", "MySQLPort", "MySQLAdminSecretArn")} == {
        "MySQLHost",
        "MySQLPort",
        "MySQLAdminSecretArn",
    }


@pytest.mark.parametrize("stage", STAGES)
def test_no_reservation_can_fail_a_deploy_on_an_account_without_headroom(templates, stage):
    # GIVEN the packaged stage's template
    template = templates[stage]
    # THEN every reserved concurrency is made only when ReserveConcurrency is "true" ("false" deploys
    # on a new account whose quota leaves no room for it), and no other function reserves any
    reserving = {
        name
        for name, resource in template["Resources"].items()
        if "ReservedConcurrentExecutions" in resource.get("Properties", {})
    }
    assert reserving == {"APIHandler", "ConsumeLogs"}
    for name in reserving:
        reservation(template["Resources"][name])
    assert template["Parameters"]["ReserveConcurrency"]["AllowedValues"] == ["true", "false"]
    assert template["Conditions"]["Reserve"] == {"Fn::Equals": [{"Ref": "ReserveConcurrency"}, "true"]}


@pytest.mark.parametrize("stage", STAGES)
def test_every_alarm_notifies_a_topic_and_the_migration_and_api_errors_have_one(templates, stage):
    # GIVEN the packaged stage's template
    template = templates[stage]
    resources = template["Resources"]
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    # THEN every alarm notifies the given topic, or the one the stack makes when none is given
    topic = {"Fn::If": ["MakeAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
    for properties in alarms.values():
        assert properties["AlarmActions"] == [topic]
    assert resources["AlarmTopic"]["Condition"] == "MakeAlarmTopic"
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == topic
    # AND the API's 5xx answers have an alarm, on the API and stage API Gateway reports them under
    api = alarms["ApiServerErrorsAlarm"]
    assert (api["Namespace"], api["MetricName"]) == ("AWS/ApiGateway", "5XXError")
    config = chalice_config(stage)
    assert {d["Name"]: d["Value"] for d in api["Dimensions"]} == {
        "ApiName": template["Resources"]["RestAPI"]["Properties"]["Name"],
        "Stage": config.api_gateway_stage,
    }
    assert template["Resources"]["RestAPI"]["Properties"]["Name"] == {"Ref": "AWS::StackName"}  # one per stack
    # AND so has a failed migration, counted from the line the migrate function logs on failure
    metric = resources["MigrationFailuresMetric"]["Properties"]
    assert metric["LogGroupName"] == {"Ref": "MigrateLogGroup"}
    assert metric["FilterPattern"] == f'"{custom_resource.FAILURE_MARKER}"'
    (transformation,) = metric["MetricTransformations"]
    assert alarms["MigrationFailedAlarm"]["MetricName"] == transformation["MetricName"]
    assert alarms["MigrationFailedAlarm"]["Namespace"] == transformation["MetricNamespace"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_deployed_migrate_function_recognises_the_stacks_requests_as_its_own(templates, stage):
    # GIVEN the packaged template: the migrate function's environment, and what the stack sends it
    resources = templates[stage]["Resources"]
    environment = resources["Migrate"]["Properties"]["Environment"]["Variables"]
    sent = resources["DatabaseMigration"]["Properties"]
    # WHEN the function loads its settings from that environment (deploy-time values stood in)
    given = {name: value for name, value in environment.items() if isinstance(value, str)}
    settings = load_settings({**DEPLOY_TIME_STAND_INS, **given})
    # THEN its own revision is the one the stack sends (else every update would be refused as
    # another's), and the database properties come from the same parameters as its environment
    assert migration_properties(settings)["Revision"] == sent["Revision"]
    assert sent["MySQLHost"] == environment["MYSQL_HOST"]
    assert sent["MySQLPort"] == environment["MYSQL_PORT"]
    assert sent["MySQLAdminSecretArn"] == environment["MYSQL_ADMIN_SECRET_ID"]


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


def test_a_stage_whose_ca_bundle_is_missing_is_not_packaged(tmp_path, monkeypatch):
    # GIVEN the stack stage naming a CA bundle that is not on this machine
    name_a_missing_bundle(monkeypatch, "certs/not-here.pem")
    # WHEN it is packaged THEN it is refused, naming the setting and the file, before anything is written
    with pytest.raises(SystemExit, match=r"MYSQL_CA_BUNDLE names certs/not-here\.pem, which is not on this machine"):
        package("stack", tmp_path)
    assert list(tmp_path.iterdir()) == []
    # AND only a template for checking can be had without it
    assert package("stack", tmp_path, template_only=True).missing_bundles == ["MYSQL_CA_BUNDLE"]


def test_a_budget_that_does_not_fit_the_server_is_not_packaged(tmp_path):
    total = stage_settings("prod").consumer_max_concurrency + stage_settings("prod").api_read_slots
    with pytest.raises(SystemExit, match="budget check FAILED for stage prod; not packaging"):
        package("prod", tmp_path, max_connections=total)
    assert not (tmp_path / "sam.yaml").exists()


def test_a_local_stage_is_not_packaged(tmp_path):
    with pytest.raises(SystemExit, match="not a packaged stage"):
        package("local", tmp_path)
