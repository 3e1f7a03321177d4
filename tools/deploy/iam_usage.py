"""Which of a packaged stack's IAM permissions its functions used: from MiniStack's record of every
AWS call (its CloudTrail, CLOUDTRAIL_RECORDING=1), against what each role allows in the template.

    python -m tools.deploy.iam_usage --stage stack      (the stack deployed in MiniStack, after its tests)

An allowed action that no recorded call used either is used by the Lambda service on the
function's behalf (writing its logs, attaching it to the VPC, polling its queue), which no
function call shows, or should go: the report says which.
"""

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.aws import aws_client
from tools.deploy.package import DIST, TEMPLATE_NAME
from tools.deploy.stack import stack_name, targets

# Role -> the functions it runs, by logical id in the template.
ROLE_FUNCTIONS = {"ApiHandlerRole": "APIHandler", "ConsumeLogsRole": "ConsumeLogs", "MigrateRole": "Migrate"}
# Actions the Lambda service performs with a function's role, not the function's code.
SERVICE_USED = {
    "logs:CreateLogStream": "Lambda writes the function's logs",
    "logs:PutLogEvents": "Lambda writes the function's logs",
    "ec2:CreateNetworkInterface": "Lambda attaches the function to the VPC",
    "ec2:DescribeNetworkInterfaces": "Lambda attaches the function to the VPC",
    "ec2:DescribeSubnets": "Lambda attaches the function to the VPC",
    "ec2:DeleteNetworkInterface": "Lambda detaches the function from the VPC",
    "ec2:AssignPrivateIpAddresses": "Lambda attaches the function to the VPC",
    "ec2:UnassignPrivateIpAddresses": "Lambda detaches the function from the VPC",
}
CONSUMER_SERVICE_USED = {
    "sqs:ReceiveMessage": "the SQS event source mapping polls the queue",
    "sqs:DeleteMessage": "the SQS event source mapping deletes a batch the function stored",
    "sqs:GetQueueAttributes": "the SQS event source mapping reads the queue's attributes",
}
# API operations that IAM authorizes as another action.
OPERATION_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


@dataclass
class RoleUsage:
    role: str
    function: str
    allowed: list[str]
    resources: dict[str, list[str]]  # allowed action -> the resources it is allowed on
    calls: dict[str, dict[str, int]] = field(default_factory=dict)  # allowed action -> {operation: calls}

    def used(self, allowed: str) -> dict[str, int]:
        return {op: n for op, n in self.calls.get(allowed, {}).items() if n}

    def service_reason(self, allowed: str) -> str | None:
        extra = CONSUMER_SERVICE_USED if self.role == "ConsumeLogsRole" else {}
        return {**SERVICE_USED, **extra}.get(allowed)

    def unused(self) -> list[str]:
        """Allowed actions that neither a recorded call nor the Lambda service used."""
        return [a for a in self.allowed if not self.used(a) and not self.service_reason(a)]


def allowed_statements(template: dict[str, Any], role: str) -> dict[str, list[str]]:
    """Each action the role's policies in the template allow -> the resources it is allowed on."""
    allowed: dict[str, list[str]] = {}
    for policy in template["Resources"][role]["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement.get("Effect") != "Allow":
                continue
            actions, resources = statement["Action"], statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                allowed.setdefault(action, []).extend(
                    describe_resource(r) for r in (resources if isinstance(resources, list) else [resources])
                )
    return allowed


def allowed_actions(template: dict[str, Any], role: str) -> list[str]:
    """Every action the role's policies in the template allow."""
    return sorted(allowed_statements(template, role))


def describe_resource(resource: Any) -> str:
    """A template's resource reference as a reader knows it: LogQueue.Arn, RedisSecretArn, an ARN."""
    if isinstance(resource, str):
        return resource
    if "Fn::GetAtt" in resource:
        return ".".join(resource["Fn::GetAtt"])
    if "Ref" in resource:
        return str(resource["Ref"])
    if "Fn::Sub" in resource:
        return str(resource["Fn::Sub"])
    return json.dumps(resource)


def session_key(function_arn: str, role_arn: str) -> str:
    """The access key MiniStack 1.5.33 gives a function's role session (core/lambda_runtime.py)."""
    return "ASIA" + hashlib.sha256(f"{function_arn}:{role_arn}".encode()).hexdigest()[:16].upper()


def operations(action: str) -> list[str]:
    """The API operations an allowed action (maybe ending in *) authorizes, as CloudTrail names them."""
    service, name = action.split(":", 1)
    prefix = name.rstrip("*")
    ops = {prefix} if not name.endswith("*") else set()
    for operation, authorized_as in OPERATION_ACTIONS.items():
        op_service, op_name = operation.split(":", 1)
        as_name = authorized_as.split(":", 1)[1]
        if op_service == service and (as_name == name or (name.endswith("*") and op_name.startswith(prefix))):
            ops.add(op_name)
    if name.endswith("*"):
        ops.update(a.split(":", 1)[1] for a in OPERATION_ACTIONS.values() if a.startswith(f"{service}:{prefix}"))
    return sorted(ops)


def recorded_calls(access_key: str, action: str) -> dict[str, int]:
    """Operation -> calls made with the key that the action authorizes, from MiniStack's CloudTrail
    (it answers at most 50 events a query, so a count of 50 means "50 or more")."""
    trail = aws_client("cloudtrail", endpoint_url=targets()["ministack"].endpoint)
    counts = {}
    for operation in operations(action):
        attributes = [
            {"AttributeKey": "AccessKeyId", "AttributeValue": access_key},
            {"AttributeKey": "EventName", "AttributeValue": operation},
        ]
        counts[operation] = len(trail.lookup_events(LookupAttributes=attributes, MaxResults=50)["Events"])
    return counts


def usage(stage: str) -> list[RoleUsage]:
    """Each role's allowed actions and the calls its function made, in the MiniStack deployment."""
    template = yaml.safe_load((DIST / stage / TEMPLATE_NAME).read_text())
    lam = aws_client("lambda", endpoint_url=targets()["ministack"].endpoint)
    result = []
    for role, function in ROLE_FUNCTIONS.items():
        config = lam.get_function_configuration(FunctionName=f"{stack_name(stage)}-{_suffix(function)}")
        key = session_key(config["FunctionArn"], config["Role"])
        statements = allowed_statements(template, role)
        calls = {action: recorded_calls(key, action) for action in statements}
        result.append(RoleUsage(role, config["FunctionName"], sorted(statements), statements, calls))
    return result


def _suffix(function: str) -> str:
    return {"APIHandler": "api", "ConsumeLogs": "consumer", "Migrate": "migrate"}[function]


def report(roles: list[RoleUsage]) -> str:
    """A Markdown table: each role's permissions and what used them."""
    lines = ["| Role (function) | Allowed action | On | Used by |", "| --- | --- | --- | --- |"]
    for role in roles:
        for action in role.allowed:
            used = role.used(action)
            why = (
                ", ".join(f"{op} ({n}{'+' if n >= 50 else ''} calls)" for op, n in used.items())
                if used
                else role.service_reason(action) or "**nothing: remove it**"
            )
            on = ", ".join(f"`{r}`" for r in role.resources[action])
            lines.append(f"| {role.role} ({role.function}) | `{action}` | {on} | {why} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="stack")
    parser.add_argument("--json", type=Path, help="also write the usage as JSON here")
    args = parser.parse_args(argv)
    roles = usage(args.stage)
    print(report(roles))
    if args.json:
        args.json.write_text(json.dumps([vars(r) for r in roles], indent=2))
    return 1 if any(r.unused() for r in roles) else 0


if __name__ == "__main__":
    sys.exit(main())
