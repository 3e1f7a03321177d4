"""CloudFormation custom resources in LocalStack (localstack/host_executor's provider): the
function behind `ServiceToken` answers each request, and its answer decides the stack's fate."""

import json
import time
import uuid
from typing import Any

import pytest

from tests.integration.conftest import aws

TERMINAL = {"CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}


def template(function_arn: str, outcome: str, value: str) -> str:
    return json.dumps(
        {
            "Resources": {
                "Probe": {
                    "Type": "Custom::Probe",
                    "Properties": {"ServiceToken": function_arn, "Outcome": outcome, "Value": value},
                }
            },
            "Outputs": {"Echo": {"Value": {"Fn::GetAtt": ["Probe", "Echo"]}}},
        }
    )


@pytest.fixture
def cfn():
    return aws("cloudformation")


@pytest.fixture
def stack_name(cfn):
    name = f"probe-{uuid.uuid4().hex[:8]}"
    yield name
    cfn.delete_stack(StackName=name)


def settle(cfn, name: str, timeout_s: float = 60) -> dict[str, Any]:
    """The stack once its operation ended (or as it is at the deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if stack["StackStatus"] in TERMINAL or time.monotonic() > deadline:
            return dict(stack)
        time.sleep(0.5)


def failure_reasons(cfn, name: str) -> list[str]:
    return [e.get("ResourceStatusReason", "") for e in cfn.describe_stack_events(StackName=name)["StackEvents"]]


@pytest.fixture
def probe_arn(lambda_client, make_function):
    """The ARN of a new probe function running `handler`."""

    def make(handler: str) -> str:
        name = make_function(handler, timeout=10)
        return str(lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"])

    return make


def test_a_custom_resource_runs_its_function_on_create_and_update_and_exposes_its_data(cfn, stack_name, probe_arn):
    # GIVEN a function that answers custom resource requests
    arn = probe_arn("probe.custom_resource")
    # WHEN a stack with a custom resource backed by it is created, then updated
    cfn.create_stack(StackName=stack_name, TemplateBody=template(arn, "SUCCESS", "first"))
    created = settle(cfn, stack_name)
    cfn.update_stack(StackName=stack_name, TemplateBody=template(arn, "SUCCESS", "second"))
    updated = settle(cfn, stack_name)
    # THEN each operation waited for the function's answer, and its Data is the resource's attributes
    assert created["StackStatus"] == "CREATE_COMPLETE"
    assert created["Outputs"][0]["OutputValue"] == "first"
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    assert updated["Outputs"][0]["OutputValue"] == "second"


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        ("probe.custom_resource", "the probe answered FAILED on purpose"),  # it answers FAILED
        ("probe.fail", "the probe failed on purpose"),  # it raises, and never answers
    ],
)
def test_a_custom_resource_whose_function_fails_fails_the_stack_with_the_reason(
    cfn, stack_name, probe_arn, handler, reason
):
    cfn.create_stack(StackName=stack_name, TemplateBody=template(probe_arn(handler), "FAILED", "x"))
    assert settle(cfn, stack_name)["StackStatus"] in {"CREATE_FAILED", "ROLLBACK_COMPLETE"}
    assert any(reason in each for each in failure_reasons(cfn, stack_name))
