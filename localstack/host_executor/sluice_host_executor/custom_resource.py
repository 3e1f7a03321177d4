"""CloudFormation custom resources (`Custom::*`, `AWS::CloudFormation::CustomResource`) backed
by a Lambda function, which LocalStack's community edition does not provision.

As on AWS, each Create, Update and Delete invokes the function named by `ServiceToken` with the
custom resource request, whose `ResponseURL` is a pre-signed S3 URL (in LocalStack's S3); the
function PUTs its outcome there. SUCCESS makes the `Data` attributes available to Fn::GetAtt;
FAILED fails the resource with the function's `Reason`, and so the stack. A function that fails
or gives no answer fails the resource too.

One difference: AWS invokes the function asynchronously; this waits for the invocation
(`RequestResponse`, never retried). In LocalStack 2026.3.0 an asynchronous invocation made while
the same deploy replaces the function's code was lost.
"""

import contextlib
import json
import logging
import uuid
from typing import Any, ClassVar

from botocore.config import Config
from localstack.aws.connect import connect_to
from localstack.services.cloudformation.resource_provider import (
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)

LOG = logging.getLogger(__name__)
RESPONSES_BUCKET = "sluice-cloudformation-custom-resource-responses"
INVOKE_MARGIN_S = 30.0  # beyond the function's own timeout
_OWN_KEYS = ("PhysicalResourceId", "Data")


class CustomResourceProvider(ResourceProvider[dict[str, Any]]):
    TYPE = "AWS::CloudFormation::CustomResource"
    SCHEMA: ClassVar[dict[str, Any]] = {
        "typeName": TYPE,
        "properties": {"ServiceToken": {"type": "string"}, "PhysicalResourceId": {"type": "string"}},
        "required": ["ServiceToken"],
        "primaryIdentifier": ["/properties/PhysicalResourceId"],
        "additionalProperties": True,
    }

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        return self._run(request, "Create", _user_properties(request.desired_state), None)

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        previous = request.previous_state or {}
        return self._run(request, "Update", _user_properties(request.desired_state), previous)

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        previous = request.previous_state or request.desired_state or {}
        if not previous.get("ServiceToken"):
            return ProgressEvent(status=OperationStatus.SUCCESS, resource_model={})
        return self._run(request, "Delete", _user_properties(previous), previous)

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        raise NotImplementedError

    def _run(
        self,
        request: ResourceRequest[dict[str, Any]],
        request_type: str,
        properties: dict[str, Any],
        previous: dict[str, Any] | None,
    ) -> ProgressEvent[dict[str, Any]]:
        s3 = request.aws_client_factory.s3
        request_id = str(uuid.uuid4())
        key = f"{request.stack_name}/{request.logical_resource_id}/{request_id}"
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=RESPONSES_BUCKET)
        response_url = s3.generate_presigned_url(
            "put_object", Params={"Bucket": RESPONSES_BUCKET, "Key": key}, ExpiresIn=7200
        )
        physical_id = (previous or {}).get("PhysicalResourceId")
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": properties["ServiceToken"],
            "ResponseURL": response_url,
            "StackId": request.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": request.logical_resource_id,
            "ResourceType": request.resource_type,
            "ResourceProperties": _as_strings(properties),
        }
        if physical_id:
            event["PhysicalResourceId"] = physical_id
        if request_type == "Update" and previous is not None:
            event["OldResourceProperties"] = _as_strings(_user_properties(previous))
        function = properties["ServiceToken"]
        lambda_ = request.aws_client_factory.lambda_
        lambda_.get_waiter("function_updated_v2").wait(
            FunctionName=function, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        timeout_s = float(lambda_.get_function_configuration(FunctionName=function).get("Timeout", 3))
        LOG.info("custom resource %s: %s request to %s", request.logical_resource_id, request_type, function)
        waiting = connect_to(
            region_name=request.region_name,
            aws_access_key_id=request.account_id,  # LocalStack's convention: the key names the account
            aws_secret_access_key="test",
            config=Config(read_timeout=timeout_s + INVOKE_MARGIN_S, retries={"max_attempts": 0}),
        ).lambda_
        result = waiting.invoke(FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event))
        if result.get("FunctionError"):
            return _failed(f"{function} failed: {result['Payload'].read().decode(errors='replace')[:2000]}")
        answer = _read_answer(s3, key)
        if answer is None:
            return _failed(f"{function} returned without answering the custom resource request")
        if answer.get("Status") != "SUCCESS":
            return _failed(str(answer.get("Reason") or "the function reported FAILED"))
        if request_type == "Delete":
            return ProgressEvent(status=OperationStatus.SUCCESS, resource_model={})
        data = answer.get("Data") or {}
        model = {
            **properties,
            **{k: v for k, v in data.items() if isinstance(k, str)},
            "PhysicalResourceId": str(answer.get("PhysicalResourceId") or physical_id or request_id),
            "Data": data,
        }
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)


def _user_properties(state: dict[str, Any]) -> dict[str, Any]:
    data_keys = set((state.get("Data") or {}).keys())
    return {k: v for k, v in state.items() if k not in _OWN_KEYS and k not in data_keys}


def _as_strings(value: Any) -> Any:
    """Custom resource properties as CloudFormation sends them: scalars as strings."""
    if isinstance(value, dict):
        return {k: _as_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_strings(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _read_answer(s3: Any, key: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=RESPONSES_BUCKET, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    s3.delete_object(Bucket=RESPONSES_BUCKET, Key=key)
    answer = json.loads(body)
    return answer if isinstance(answer, dict) else {"Status": "FAILED", "Reason": "the answer is not a JSON object"}


def _failed(reason: str) -> ProgressEvent[dict[str, Any]]:
    return ProgressEvent(status=OperationStatus.FAILED, resource_model={}, message=reason)
