"""Least privilege, proved where IAM is enforced: the packaged stack in MiniStack (AUTH=true),
where every call a function makes is evaluated against its role's policies and the queue's policy.

These run after tests/integration/test_stack.py, on the same MiniStack deployment, so the last
test's record of calls covers every stack test.
"""

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import API
from tests.integration.stack_checks import STAGE, check_an_entry_is_stored_exactly_once, clean
from tests.support.waiting import wait_for
from tools.aws import aws_client
from tools.deploy import iam_usage
from tools.deploy.stack import (
    RECORDS,
    StackDeployment,
    admin_token,
    deploy,
    operator_client,
    packaged_template,
    targets,
)

TARGET = "ministack"


@pytest.fixture(scope="module")
def stack(stacks) -> Iterator[StackDeployment]:
    deployment = stacks.get(TARGET)
    clean(deployment)
    yield deployment
    clean(deployment)


def without_action(template: dict[str, Any], role: str, action: str) -> dict[str, Any]:
    """A copy of the template whose role no longer allows `action`."""
    changed = copy.deepcopy(template)
    for policy in changed["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if a != action]
    assert iam_usage.allowed_actions(changed, role) == sorted(set(iam_usage.allowed_actions(template, role)) - {action})
    return changed


def test_a_role_missing_one_needed_permission_fails_the_stack_tests(stack):
    # GIVEN the packaged template with one permission the API needs taken out of its role
    template = packaged_template(STAGE, TARGET)
    anonymous = API(stack.api_url)
    api = anonymous.with_key(anonymous.make_key(admin_token(STAGE, TARGET)))
    deploy(STAGE, TARGET, template=without_action(template, "ApiHandlerRole", "sqs:SendMessage*"))
    try:
        # WHEN the stack's write test runs THEN it fails: the API may not queue entries
        with pytest.raises(AssertionError):
            check_an_entry_is_stored_exactly_once(api, stack)
        # AND the client is told it is a configuration error (500), not an outage to retry (503)
        answer = api.post("/logs", {"level": "info", "source": "web", "message": "x"})
        assert (answer.status, answer.body["error"]["code"]) == (500, "config_error")
        assert "AccessDenied" in answer.body["error"]["message"]
    finally:
        deploy(STAGE, TARGET)  # the template as packaged
    # AND with the permission back, the same test passes
    check_an_entry_is_stored_exactly_once(api, stack)


def test_the_queues_are_sealed_to_all_but_the_functions_and_the_operator(stack):
    # GIVEN a user whose own policy allows every SQS action
    iam = aws_client("iam", endpoint_url=targets()[TARGET].endpoint)
    user = "sluice-stack-intruder"
    iam.create_user(UserName=user)
    try:
        iam.put_user_policy(
            UserName=user,
            PolicyName="all-of-sqs",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName=user)["AccessKey"]
        credentials = (key["AccessKeyId"], key["SecretAccessKey"])
        sqs = aws_client("sqs", endpoint_url=targets()[TARGET].endpoint, credentials=credentials)
        url = stack.outputs["LogQueueUrl"]
        # WHEN it reads the queue THEN its policy lets it (so a refusal below is the queue's doing)
        assert "QueueArn" in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        # WHEN it sends to the log queue or to the dead-letter queue (whence a redrive would move a
        # forged entry into the log queue), one message or a batch THEN the queues' policies refuse it
        dlq = stack.outputs["LogDeadLetterQueueUrl"]
        for queue in (url, dlq):
            with pytest.raises(sqs.exceptions.ClientError, match="AccessDenied"):
                sqs.send_message(QueueUrl=queue, MessageBody='{"logs": []}')
            with pytest.raises(sqs.exceptions.ClientError, match="AccessDenied"):
                sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "1", "MessageBody": '{"logs": []}'}])
        # AND it may not take from either: receive, delete, purge
        for queue in (url, dlq):
            with pytest.raises(sqs.exceptions.ClientError, match="AccessDenied"):
                sqs.receive_message(QueueUrl=queue)
            with pytest.raises(sqs.exceptions.ClientError, match="AccessDenied"):
                sqs.delete_message(QueueUrl=queue, ReceiptHandle="forged")
            with pytest.raises(sqs.exceptions.ClientError, match="AccessDenied"):
                sqs.purge_queue(QueueUrl=queue)
        # AND the operator's role may (so the refusals above are the policies' doing for that user)
        operator = operator_client(stack.target, stack.parameters["RedriveRoleArn"], "sqs")
        operator.send_message(QueueUrl=dlq, MessageBody='{"logs": []}')
        assert wait_for(lambda: operator.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages"), timeout_s=30)
        operator.purge_queue(QueueUrl=dlq)
    finally:
        for policy in iam.list_user_policies(UserName=user)["PolicyNames"]:
            iam.delete_user_policy(UserName=user, PolicyName=policy)
        for access_key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=user, AccessKeyId=access_key["AccessKeyId"])
        iam.delete_user(UserName=user)


def test_every_allowed_action_was_used_by_a_call_or_by_the_lambda_service(stack):
    # GIVEN every stack test has run (in MiniStack, which records each call with its caller)
    roles = iam_usage.usage(STAGE)
    report = iam_usage.report(roles)
    (RECORDS / f"permissions-{STAGE}.md").write_text(report + "\n")
    print(report)
    # THEN each function made recorded calls (the record is the function's), and no role allows
    # an action that neither its function's calls nor the Lambda service used
    assert all(any(role.used(action) for action in role.allowed) for role in roles), report
    assert {role.role: role.unused() for role in roles} == {role.role: [] for role in roles}, report
