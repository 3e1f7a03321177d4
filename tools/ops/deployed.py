"""A deployed stack as the operator's commands find it: its CloudFormation outputs and admin token.

With `--target aws` they use your usual AWS credentials and region (AWS_PROFILE, AWS_REGION), and
botocore's AWS_ENDPOINT_URL when it is set: pointed at an emulator, the same code reads a stack
deployed there (the integration tests do so).
"""

import json
import urllib.error
import urllib.request
from typing import Any

import botocore.exceptions


def describe_stack(cfn: Any, name: str) -> dict[str, Any]:
    """The stack as CloudFormation describes it; SystemExit with the reason when it cannot be read."""
    try:
        return dict(cfn.describe_stacks(StackName=name)["Stacks"][0])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise SystemExit(f"stack {name} cannot be read: {exc}") from None


def stack_outputs(stack: dict[str, Any]) -> dict[str, str]:
    """The stack's outputs by key."""
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in stack.get("Outputs", [])}


def stack_output(stack: dict[str, Any], key: str) -> str:
    """One of the stack's outputs; SystemExit when it has none (not sluice's stack, or not fully created)."""
    outputs = stack_outputs(stack)
    if key not in outputs:
        raise SystemExit(
            f"stack {stack.get('StackName')} ({stack.get('StackStatus')}) has no output {key}:"
            " is it a sluice stack, fully created?"
        )
    return outputs[key]


def admin_token(secretsmanager: Any, stack: dict[str, Any]) -> str:
    """The admin token the stack generated, from the secret its AdminTokenSecretArn output names."""
    secret_arn = stack_output(stack, "AdminTokenSecretArn")
    try:
        secret = secretsmanager.get_secret_value(SecretId=secret_arn)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise SystemExit(f"the admin token's secret {secret_arn} cannot be read: {exc}") from None
    return str(json.loads(secret["SecretString"])["token"])


def aws_stack_api(cfn: Any, secretsmanager: Any, name: str, url: str | None = None) -> tuple[str, str]:
    """(API URL, admin token) of a stack on AWS: its EndpointURL output unless `url`, its token's secret."""
    stack = describe_stack(cfn, name)
    return url or stack_output(stack, "EndpointURL"), admin_token(secretsmanager, stack)


API_CALL_TIMEOUT_S = 30  # above API Gateway's own 29 s


def api_request(url: str, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One call to a stack's API with a bearer token (the admin token or a key): status and JSON body."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=API_CALL_TIMEOUT_S) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")
