"""Deploy a packaged stage's stack (what `make package` writes for AWS) into an emulator on this
machine, through its CloudFormation, and print the API's URL.

    python -m tools.deploy.stack deploy --stage stack [--target localstack|ministack]
    python -m tools.deploy.stack delete --stage stack [--target localstack|ministack]
    python -m tools.deploy.stack token --stage stack [--target ...]     print the stack's admin token

LocalStack is the main emulator; MiniStack enforces IAM, so a call a role does not allow fails
there as it would on AWS. What an AWS account would already have, this makes first:

- a VPC with two subnets and a security group, in the emulator (the VPC parameters);
- a MySQL administrator account on the local MariaDB and an ACL user on the local Redis, each with
  its secret in the emulator's Secrets Manager (as RDS and ElastiCache would have them);
- a bucket with the code, where the template's CodeUri then points (what `aws cloudformation
  package` does);
- the operator's role (`RedriveRoleArn`), the only principal but the functions' that the queues'
  policies let send to the log queue and take from either queue; the tests' cleanup and
  `make redrive` act as it (`operator_client`).

The servers are the local MariaDB and Redis over TLS, verified against the local CA that the
`stack` stage names (tools/devstack/devcerts.py). The stack's migration runs inside the deploy; a failure
shows the failed resources' reasons. A deploy of the packaged template ends with its smoke step
(tools/deploy/smoke.py), as a deploy to AWS does.
"""

import argparse
import contextlib
import hashlib
import json
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
import redis
import yaml

from tools.admin import admin_connection
from tools.aws import LOCAL_AWS_ENV, aws_client
from tools.deploy import gateway_responses
from tools.deploy.package import DIST, package
from tools.deploy.smoke import smoke
from tools.devstack import services
from tools.ops.budget import server_max_connections
from tools.stage import ROOT, chalice_config, is_packaged, stage_environment, stage_settings

RECORDS = ROOT / ".data" / "stacks"
STACK_TIMEOUT_S = 600
DELETE_SETTLE_S = 10.0
FUNCTION_KEYS = {"APIHandler": "api", "ConsumeLogs": "consumer", "Migrate": "migrate"}
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
NETWORK_TAG = "sluice-local"


@dataclass(frozen=True)
class Target:
    name: str
    endpoint: str
    service: str  # the devstack service that runs it
    label: str


def targets() -> dict[str, Target]:
    localstack = str(stage_environment("local")["SQS_ENDPOINT_URL"]).rstrip("/")
    return {
        "localstack": Target("localstack", localstack, "localstack", "LocalStack"),
        "ministack": Target("ministack", f"http://127.0.0.1:{services.MINISTACK_PORT}", "ministack", "MiniStack"),
    }


@dataclass(frozen=True)
class StackDeployment:
    stage: str
    target: str
    stack_name: str
    api_url: str
    outputs: dict[str, str]
    parameters: dict[str, str]


def stack_name(stage: str) -> str:
    return f"sluice-{stage}"


# --- What the account would already have --------------------------------------------------------


def ensure_network(target: Target) -> dict[str, str]:
    """A VPC with two subnets, their route table and a security group in the emulator (found by tag, else made)."""
    ec2 = aws_client("ec2", endpoint_url=target.endpoint)
    tag = [{"Name": "tag:Name", "Values": [NETWORK_TAG]}]
    vpcs = ec2.describe_vpcs(Filters=tag)["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
    else:
        vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": NETWORK_TAG}])
    vpc_filter = [{"Name": "vpc-id", "Values": [vpc_id]}]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=vpc_filter)["Subnets"]]
    for index in range(len(subnets), 2):
        zone = f"{LOCAL_AWS_ENV['AWS_REGION']}{'ab'[index]}"
        cidr = f"10.42.{index + 1}.0/24"
        subnets.append(ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"])
    groups = ec2.describe_security_groups(Filters=[*vpc_filter, {"Name": "group-name", "Values": ["sluice-functions"]}])
    if groups["SecurityGroups"]:
        group_id = groups["SecurityGroups"][0]["GroupId"]
    else:
        group_id = ec2.create_security_group(
            GroupName="sluice-functions", Description="sluice functions", VpcId=vpc_id
        )["GroupId"]
    # As AWS's VPC wizard makes it: DNS on (private endpoints need it), one route table for the subnets.
    for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
        ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute: {"Value": True}})
    tables = ec2.describe_route_tables(Filters=[*vpc_filter, {"Name": "tag:Name", "Values": [NETWORK_TAG]}])
    if tables["RouteTables"]:
        table_id = tables["RouteTables"][0]["RouteTableId"]
    else:
        table_id = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
        ec2.create_tags(Resources=[table_id], Tags=[{"Key": "Name", "Value": NETWORK_TAG}])
    associated = {
        a.get("SubnetId") for t in tables["RouteTables"] for a in t.get("Associations", []) if a.get("SubnetId")
    }
    for subnet in subnets[:2]:
        if subnet not in associated:
            ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet)
    return {
        "VpcId": vpc_id,
        "SubnetIds": ",".join(subnets[:2]),
        "SecurityGroupIds": group_id,
        "RouteTableIds": table_id,
    }


def put_secret(target: Target, name: str, value: dict[str, str]) -> str:
    """Create or update a secret in the emulator; return its ARN."""
    sm = aws_client("secretsmanager", endpoint_url=target.endpoint)
    try:
        return str(sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])
    except sm.exceptions.ResourceExistsException:
        return str(sm.put_secret_value(SecretId=name, SecretString=json.dumps(value))["ARN"] or name)


def account_password(stage: str, account: str) -> str:
    """The local account's password, made once and kept under .data/ (mode 600), so that both
    emulators' secrets and warm functions agree across deploys."""
    path = RECORDS / f"{stage}-{account}.password"
    if not path.is_file():
        RECORDS.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def ensure_mysql_admin(stage: str, target: Target) -> str:
    """The migration's administrator on the local MariaDB (as RDS's master user), over TLS only,
    with its secret in the emulator's Secrets Manager. Returns the secret's ARN."""
    database = stage_settings(stage).mysql.database
    secret_name = f"{stack_name(stage)}/mysql-admin"
    user, password = f"{database}_admin", account_password(stage, "mysql-admin")
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.have_ssl")
        row = cur.fetchone()
        if not row or row[0] != "YES":
            raise SystemExit(
                "the local MariaDB runs without TLS (started before sluice had it): `make down`, then retry"
            )
        cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s REQUIRE SSL", (user, password))
        cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s REQUIRE SSL", (user, password))
        cur.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@'%%' WITH GRANT OPTION", (user,))
        cur.execute("GRANT CREATE USER ON *.* TO %s@'%%'", (user,))
    return put_secret(target, secret_name, {"username": user, "password": password})


def ensure_redis_user(stage: str, target: Target) -> str:
    """An ACL user on the local Redis for the stage's keys only (as an ElastiCache user), with its
    secret in the emulator's Secrets Manager. Returns the secret's ARN."""
    prefix = stage_settings(stage).redis_key_prefix
    secret_name = f"{stack_name(stage)}/redis"
    user, password = prefix.rstrip(":").replace(":", "_"), account_password(stage, "redis")
    admin = redis.Redis.from_url(stage_settings("local").redis_url)
    commands = ["+@all", "-@dangerous"]  # every data command, on the stage's keys only
    admin.acl_setuser(
        user, enabled=True, reset=True, passwords=[f"+{password}"], keys=[f"{prefix}*"], commands=commands
    )
    return put_secret(target, secret_name, {"username": user, "password": password})


def ensure_operator_role(stage: str, target: Target) -> str:
    """The operator's role (the stack's RedriveRoleArn: redrive, purge, read the dead letters), which
    the account's root may assume and whose own policy allows every SQS action on the stage's
    queues (the queues' policies then decide). Returns its ARN."""
    iam = aws_client("iam", endpoint_url=target.endpoint)
    name = f"{stack_name(stage)}-operator"
    account = aws_client("sts", endpoint_url=target.endpoint).get_caller_identity()["Account"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
    except iam.exceptions.EntityAlreadyExistsException:
        arn = str(iam.get_role(RoleName=name)["Role"]["Arn"])
    settings = stage_settings(stage)
    queues = [f"arn:aws:sqs:*:{account}:{q}" for q in (settings.log_queue_name, settings.log_dlq_name)]
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": queues}]}
    iam.put_role_policy(RoleName=name, PolicyName="stage-queues", PolicyDocument=json.dumps(allow))
    return arn


def operator_client(target: str, role_arn: str, service: str) -> Any:
    """A client of an emulator as a stack's operator role (`RedriveRoleArn`, assumed by the account's root)."""
    endpoint = targets()[target].endpoint
    sts = aws_client("sts", endpoint_url=endpoint)
    found = sts.assume_role(RoleArn=role_arn, RoleSessionName="operator")["Credentials"]
    credentials = (found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"])
    return aws_client(service, endpoint_url=endpoint, credentials=credentials)


def upload_code(stage: str, target: Target, code: Path) -> dict[str, str]:
    """Put the function package in the emulator's S3; return the CodeUri that points at it."""
    s3 = aws_client("s3", endpoint_url=target.endpoint)
    bucket = "sluice-artifacts"
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=bucket)
    key = f"{stage}/{hashlib.sha256(code.read_bytes()).hexdigest()[:16]}.zip"
    s3.upload_file(str(code), bucket, key)
    return {"Bucket": bucket, "Key": key}


def with_code(template_path: Path, code_uri: dict[str, str]) -> dict[str, Any]:
    """The packaged template with each function's CodeUri pointing at the uploaded package."""
    template = yaml.safe_load(template_path.read_text())
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = dict(code_uri)
    return dict(template)


def for_target(template: dict[str, Any], target: Target, parameters: dict[str, str]) -> dict[str, Any]:
    """The template with what one emulator needs and AWS does not. MiniStack takes a REST API's
    binary media types only from the RestApi's BinaryMediaTypes property, and literally (AWS wants
    `~1` for `/` there); AWS and LocalStack import them from the definition, where Chalice puts them.
    MiniStack's aws:PrincipalArn is a role's session, not the role: the queues' policies also name
    the operator role's sessions there (the template does so for the functions' roles itself)."""
    if target.name == "ministack":
        api = template["Resources"]["RestAPI"]["Properties"]
        api["BinaryMediaTypes"] = list(api["DefinitionBody"]["x-amazon-apigateway-binary-media-types"])
        operator = parameters.get("RedriveRoleArn", "")
        if operator:
            session = operator.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + "/*"
            _name_beside(template, operator, session)
    return template


def _name_beside(node: Any, present: str, added: str) -> None:
    """Add `added` to every list in the template that holds `present` (or a Ref to the parameter)."""
    if isinstance(node, dict):
        for value in node.values():
            _name_beside(value, present, added)
    elif isinstance(node, list):
        if present in node or {"Ref": "RedriveRoleArn"} in node:
            node.append(added)
        for value in node:
            _name_beside(value, present, added)


# --- The stack --------------------------------------------------------------------------------------


def stack_parameters(stage: str, target: Target) -> dict[str, str]:
    """The template's parameters for this machine: the local servers, the emulator's network and secrets."""
    mysql_port = int(stage_environment("local")["MYSQL_PORT"])
    return {
        **ensure_network(target),
        "CreateVpcEndpoints": "true",
        "MySQLHost": "127.0.0.1",
        "MySQLPort": str(mysql_port),
        "MySQLAdminSecretArn": ensure_mysql_admin(stage, target),
        "RedisHost": "127.0.0.1",
        "RedisPort": str(services.REDIS_TLS_PORT),
        "RedisSecretArn": ensure_redis_user(stage, target),
        "LogRetentionDays": "7",
        "RedriveRoleArn": ensure_operator_role(stage, target),
    }


def deploy(stage: str, target_name: str = "localstack", template: dict[str, Any] | None = None) -> StackDeployment:
    """Package the stage, then create or update its stack in the emulator; `template` replaces the
    packaged one (a test's altered copy)."""
    if not is_packaged(stage):
        raise SystemExit(f"stage {stage} is not a packaged stage; `make deploy STAGE={stage}` deploys it")
    target = targets()[target_name]
    services.up((target.service,) if services.find_service(target.service).on_demand else ())
    built = package(stage, DIST / stage, max_connections=server_max_connections(stage_settings("local")))
    parameters = stack_parameters(stage, target)
    body = for_target(template or with_code(built.template, upload_code(stage, target, built.code)), target, parameters)
    name = stack_name(stage)
    cfn = aws_client("cloudformation", endpoint_url=target.endpoint)
    apply_stack(cfn, name, body, parameters)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in _describe(cfn, name).get("Outputs", [])}
    api_stage = chalice_config(stage).api_gateway_stage
    if target.name == "localstack":
        # LocalStack's CloudFormation does not import the API definition's gateway responses (AWS
        # does, and MiniStack keeps none): put the template's own, then deploy the stage again.
        definition = body["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
        gateway_responses.put_all(
            aws_client("apigateway", endpoint_url=target.endpoint),
            outputs["RestAPIId"],
            api_stage,
            definition["x-amazon-apigateway-gateway-responses"],
        )
    api_url = f"{target.endpoint}/_aws/execute-api/{outputs['RestAPIId']}/{api_stage}/"
    deployment = StackDeployment(stage, target.name, name, api_url, outputs, parameters)
    RECORDS.mkdir(parents=True, exist_ok=True)
    (RECORDS / f"{target.name}-{stage}.json").write_text(json.dumps(asdict(deployment), indent=2))
    if template is None:  # the packaged stack proves itself, as after a deploy to AWS (an altered one may not)
        for line in smoke(api_url, admin_token(stage, target.name)):
            print(f"{name}: smoke: {line}", flush=True)
    return deployment


def packaged_template(stage: str, target_name: str) -> dict[str, Any]:
    """The template deploy() would deploy (after packaging), for a test to alter."""
    target = targets()[target_name]
    built = package(stage, DIST / stage)
    return with_code(built.template, upload_code(stage, target, built.code))


def _describe(cfn: Any, name: str) -> dict[str, Any]:
    stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    return dict(stacks[0])


def _status(cfn: Any, name: str) -> str | None:
    try:
        return str(_describe(cfn, name)["StackStatus"])
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def apply_stack(cfn: Any, name: str, template: dict[str, Any], parameters: dict[str, str]) -> None:
    """Create the stack, or update it; SystemExit naming the failed resources' reasons if it fails."""
    body = json.dumps(template)
    params = [{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()]
    status = _status(cfn, name)
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "CREATE_FAILED"):
        print(f"{name}: removing the stack left by a failed create ({status})", flush=True)
        cfn.delete_stack(StackName=name)
        _wait(cfn, name, "DELETE_COMPLETE")
        status = None
    started = time.monotonic()
    if status is None:
        print(f"{name}: creating the stack", flush=True)
        cfn.create_stack(StackName=name, TemplateBody=body, Parameters=params, Capabilities=CAPABILITIES)
        _wait(cfn, name, "CREATE_COMPLETE")
    else:
        print(f"{name}: updating the stack", flush=True)
        try:
            cfn.update_stack(StackName=name, TemplateBody=body, Parameters=params, Capabilities=CAPABILITIES)
        except botocore.exceptions.ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
            print(f"{name}: no changes", flush=True)
            return
        _wait(cfn, name, "UPDATE_COMPLETE")
    print(f"{name}: done in {time.monotonic() - started:.1f}s", flush=True)


def _wait(cfn: Any, name: str, goal: str) -> None:
    """Wait for the stack to reach `goal`; fail, with the failed resources' reasons, when it ends
    anywhere else or when a resource failed on the way (LocalStack 2026.3.0 can report a rolled
    back update as UPDATE_COMPLETE)."""
    since = _last_event_id(cfn, name)
    deadline = time.monotonic() + STACK_TIMEOUT_S
    settle_until: float | None = None
    while True:
        status = _status(cfn, name)
        if status is None and goal == "DELETE_COMPLETE":
            return
        if status == "DELETE_FAILED" and goal == "DELETE_COMPLETE":
            # LocalStack shows a failed create's stack as DELETE_FAILED for a moment, then removes it.
            settle_until = settle_until or time.monotonic() + DELETE_SETTLE_S
            if time.monotonic() < settle_until:
                time.sleep(0.5)
                continue
        if status is not None and not status.endswith("_IN_PROGRESS"):
            failures = _failures(cfn, name, since)
            if status == goal and not failures:
                return
            raise SystemExit(f"stack {name} ended in {status}, not {goal}:\n{failures or '  (no reason given)'}")
        if time.monotonic() > deadline:
            raise SystemExit(f"stack {name} was still {status} after {STACK_TIMEOUT_S}s")
        time.sleep(1)


def _events(cfn: Any, name: str) -> list[dict[str, Any]]:
    try:
        return list(cfn.describe_stack_events(StackName=name)["StackEvents"])  # newest first
    except botocore.exceptions.ClientError:
        return []


def _last_event_id(cfn: Any, name: str) -> str | None:
    events = _events(cfn, name)
    return str(events[0]["EventId"]) if events else None


def _failures(cfn: Any, name: str, since: str | None) -> str:
    """The failed resources' reasons, in the events after the event `since`."""
    recent = []
    for event in _events(cfn, name):
        if event["EventId"] == since:
            break
        recent.append(event)
    failed = [
        e for e in recent if str(e.get("ResourceStatus", "")).endswith("FAILED") and e.get("ResourceStatusReason")
    ]
    return "\n".join(f"  {e['LogicalResourceId']}: {e['ResourceStatusReason']}" for e in reversed(failed))


def delete(stage: str, target_name: str = "localstack") -> None:
    """Remove the stack, then what it keeps on deletion (its queues) and what deploy() made for it."""
    target = targets()[target_name]
    name = stack_name(stage)
    cfn = aws_client("cloudformation", endpoint_url=target.endpoint)
    if _status(cfn, name) is not None:
        print(f"{name}: deleting the stack", flush=True)
        cfn.delete_stack(StackName=name)
        _wait(cfn, name, "DELETE_COMPLETE")
    settings = stage_settings(stage)
    sqs = aws_client("sqs", endpoint_url=target.endpoint)
    for queue in (settings.log_queue_name, settings.log_dlq_name):  # retained by the stack, ours to remove here
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])
    sm = aws_client("secretsmanager", endpoint_url=target.endpoint)
    for secret in (f"{name}/mysql-admin", f"{name}/redis"):
        with contextlib.suppress(sm.exceptions.ResourceNotFoundException):
            sm.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
    (RECORDS / f"{target.name}-{stage}.json").unlink(missing_ok=True)


def admin_token(stage: str, target_name: str) -> str:
    """The admin token the deployed stack generated, from the emulator's Secrets Manager."""
    record = json.loads((RECORDS / f"{target_name}-{stage}.json").read_text())
    secret = aws_client("secretsmanager", endpoint_url=targets()[target_name].endpoint).get_secret_value(
        SecretId=record["outputs"]["AdminTokenSecretArn"]
    )
    return str(json.loads(secret["SecretString"])["token"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["deploy", "delete", "token"])
    parser.add_argument("--stage", default="stack")
    parser.add_argument("--target", choices=sorted(targets()), default="localstack")
    args = parser.parse_args(argv)
    if args.action == "delete":
        delete(args.stage, args.target)
        return 0
    if args.action == "token":
        print(admin_token(args.stage, args.target))
        return 0
    deployment = deploy(args.stage, args.target)
    label = targets()[args.target].label
    print(
        f"\nAPI (the packaged stack in {label}): {deployment.api_url}\n  curl {deployment.api_url}health\n"
        f"  admin token (generated by the stack, in its secret): .venv/bin/python -m tools.deploy.stack token"
        f" --stage {args.stage} --target {args.target}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
