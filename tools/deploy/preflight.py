"""`make preflight STAGE=prod PARAMETERS=<file> [BUCKET=...]`: will the stack deploy into this account? Read-only.

    python -m tools.deploy.preflight --stage prod --parameters prod-parameters.json [--bucket B]

The parameters file is the one `aws cloudformation deploy --parameter-overrides file://...` takes
(deploy/parameters.example.json).

Checks, with the operator's credentials (AWS_PROFILE, AWS_REGION; AWS_ENDPOINT_URL for an
emulator), what a first deploy otherwise finds out late, after an hour of CloudFormation:

- the parameters file has every parameter the template needs, each as the template allows;
- the RDS CA bundle the stage names is on this machine (the package carries it);
- the template goes through S3 when it is over CloudFormation's inline limit, and the bucket exists;
- Lambda's concurrency quota leaves 100 unreserved after the stage's reservations;
- the subnets are in the VPC, in two or more availability zones;
- the VPC resolves private endpoint names (DNS support and host names);
- the stack's endpoints do not collide with the VPC's own, or, without them, the subnets reach
  SQS, Secrets Manager and S3 through the VPC's endpoints or a NAT gateway;
- RouteTableIds names every subnet's route table (the S3 gateway endpoint goes there);
- the functions' security groups let them out on 443, and to MySQL's and Redis's ports;
- the administrator's and Redis's secrets exist, are {"username", "password"} and are encrypted
  with Secrets Manager's own key (the functions' roles have no kms:Decrypt).

Each check prints PASS or FAIL with what it found, and what to do when it fails. Exit 1 if any fails.
"""

import argparse
import contextlib
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
import yaml

from tools.aws import aws_client
from tools.deploy.package import missing_bundle_message, missing_bundles, package, reservations
from tools.deploy.stack import stack_name

INLINE_TEMPLATE_LIMIT = 51_200  # bytes CloudFormation takes in TemplateBody; larger goes through S3
MIN_UNRESERVED = 100  # Lambda refuses a reservation that leaves fewer unreserved
RESERVING_FUNCTIONS = {"API_RESERVED_CONCURRENCY": "api", "CONSUMER_RESERVED_CONCURRENCY": "consumer"}
ENDPOINT_SERVICES = ("sqs", "secretsmanager", "s3")
AWS_MANAGED_SECRET_KEY = "alias/aws/secretsmanager"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.found}"
        return text if self.ok or not self.fix else f"{text}\n     fix: {self.fix}"


@dataclass(frozen=True)
class Preflight:
    """What the checks read: the stage, its packaged template, the parameters and the stack's name."""

    stage: str
    template: dict[str, Any]
    template_bytes: int
    parameters: dict[str, str]
    stack: str
    bucket: str | None

    def value(self, name: str) -> str:
        """A parameter's value: the file's, else the template's default."""
        default = self.template["Parameters"].get(name, {}).get("Default", "")
        return str(self.parameters.get(name, default))

    def listed(self, name: str) -> list[str]:
        return [item for item in self.value(name).split(",") if item]

    @property
    def makes_endpoints(self) -> bool:
        return self.value("CreateVpcEndpoints") == "true"


def check_parameters(p: Preflight) -> Check:
    problems = []
    declared = p.template["Parameters"]
    for name in sorted(set(p.parameters) - set(declared)):
        problems.append(f"{name} is not a parameter of the template")
    for name, spec in declared.items():
        if name not in p.parameters and "Default" not in spec:
            problems.append(f"{name} is missing ({spec.get('Description', '').strip()[:80]})")
        elif name in p.parameters:
            value = str(p.parameters[name])
            if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
                problems.append(f"{name}={value!r} is not one of {spec['AllowedValues']}")
            pattern = spec.get("AllowedPattern")
            if pattern and not _matches(pattern, value):
                problems.append(f"{name}={value!r} does not match {pattern}")
    if p.makes_endpoints and not p.value("RouteTableIds"):
        problems.append('RouteTableIds is empty, and CreateVpcEndpoints is "true" (the S3 endpoint needs them)')
    if problems:
        return Check("parameters", False, "; ".join(problems), "correct the parameters file")
    return Check("parameters", True, f"{len(p.parameters)} given, the rest default")


def _matches(pattern: str, value: str) -> bool:
    """CloudFormation's AllowedPattern matches the whole value."""
    return re.fullmatch(pattern, value) is not None


def check_ca_bundle(p: Preflight) -> Check:
    missing = missing_bundles(p.stage)
    if missing:
        return Check("ca-bundle", False, missing_bundle_message(p.stage, missing), "certs/README.md")
    return Check("ca-bundle", True, "every CA bundle the stage names is here, and goes into the package")


def check_template_size(p: Preflight) -> Check:
    size = p.template_bytes
    if size <= INLINE_TEMPLATE_LIMIT and not p.bucket:
        return Check("template-size", True, f"{size:,} bytes, within the {INLINE_TEMPLATE_LIMIT:,}-byte inline limit")
    if not p.bucket:
        fix = "give BUCKET=<an S3 bucket in the stack's region> (the template and code go through it)"
        return Check("template-size", False, f"{size:,} bytes, over the {INLINE_TEMPLATE_LIMIT:,}-byte limit", fix)
    try:
        aws_client("s3").head_bucket(Bucket=p.bucket)
    except botocore.exceptions.ClientError as exc:
        fix = f"aws s3 mb s3://{p.bucket} (in the stack's region), or name a bucket you own"
        return Check("template-size", False, f"bucket {p.bucket}: {_code(exc)}", fix)
    return Check("template-size", True, f"{size:,} bytes, through the bucket {p.bucket}")


def check_concurrency(p: Preflight) -> Check:
    lam = aws_client("lambda")
    limits = lam.get_account_settings()["AccountLimit"]
    quota, unreserved = int(limits["ConcurrentExecutions"]), int(limits["UnreservedConcurrentExecutions"])
    needed = 0 if p.value("ReserveConcurrency") == "false" else sum(int(v) for v in reservations(p.stage).values())
    held = 0  # what this stack's functions reserve already (an update gives it back first)
    for suffix in RESERVING_FUNCTIONS.values():
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            held += int(
                lam.get_function_concurrency(FunctionName=f"{p.stack}-{suffix}").get("ReservedConcurrentExecutions")
                or 0
            )
    left = unreserved + held - needed
    found = f"quota {quota}, unreserved {unreserved}; the stack reserves {needed}, which leaves {left}"
    if left < MIN_UNRESERVED:
        fix = (
            f"Lambda keeps {MIN_UNRESERVED} unreserved: ask for a higher 'Concurrent executions' quota (Service Quotas,"
            " L-B99A9384), or deploy with ReserveConcurrency=false"
        )
        return Check("lambda-concurrency", False, found, fix)
    return Check("lambda-concurrency", True, found)


def check_subnets(p: Preflight) -> Check:
    ec2 = aws_client("ec2")
    try:
        subnets = ec2.describe_subnets(SubnetIds=p.listed("SubnetIds"))["Subnets"]
    except botocore.exceptions.ClientError as exc:
        return Check(
            "subnets", False, f"{p.value('SubnetIds')}: {_code(exc)}", "name subnets of this account and region"
        )
    outside = [s["SubnetId"] for s in subnets if s["VpcId"] != p.value("VpcId")]
    zones = {s["AvailabilityZone"] for s in subnets}
    if outside:
        return Check("subnets", False, f"{', '.join(outside)} not in {p.value('VpcId')}", "name the VPC's subnets")
    if len(zones) < 2:
        return Check("subnets", False, f"all in {', '.join(zones)}", "add a subnet in another availability zone")
    return Check("subnets", True, f"{len(subnets)} in {p.value('VpcId')}, in {len(zones)} availability zones")


def check_vpc_dns(p: Preflight) -> Check:
    ec2 = aws_client("ec2")
    flags = {"enableDnsSupport": "--enable-dns-support", "enableDnsHostnames": "--enable-dns-hostnames"}
    off = []
    for attribute in flags:
        answer = ec2.describe_vpc_attribute(VpcId=p.value("VpcId"), Attribute=attribute)
        if not answer[attribute[0].upper() + attribute[1:]]["Value"]:
            off.append(attribute)
    if off:
        vpc = p.value("VpcId")
        fix = " && ".join(f"aws ec2 modify-vpc-attribute --vpc-id {vpc} {flags[a]}" for a in off)
        return Check("vpc-dns", False, f"{', '.join(off)} off: private endpoint names do not resolve", fix)
    return Check("vpc-dns", True, "DNS support and host names on")


def check_endpoints(p: Preflight) -> Check:
    ec2 = aws_client("ec2")
    region = ec2.meta.region_name
    ours = _stack_endpoints(p.stack)
    existing = [
        e
        for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [p.value("VpcId")]}])["VpcEndpoints"]
        if e["VpcEndpointId"] not in ours and e.get("State", "available").lower() not in ("deleted", "deleting")
    ]
    by_service = {
        s: [e for e in existing if e["ServiceName"] == f"com.amazonaws.{region}.{s}"] for s in ENDPOINT_SERVICES
    }
    if p.makes_endpoints:
        clashes = [
            f"{e['VpcEndpointId']} ({service})"
            for service in ("sqs", "secretsmanager")
            for e in by_service[service]
            if e.get("PrivateDnsEnabled", True)
        ]
        tables = set(p.listed("RouteTableIds"))
        clashes += [
            f"{e['VpcEndpointId']} (s3 on {', '.join(set(e.get('RouteTableIds', [])) & tables)})"
            for e in by_service["s3"]
            if set(e.get("RouteTableIds", [])) & tables
        ]
        if clashes:
            fix = "deploy with CreateVpcEndpoints=false: the VPC's own endpoints serve the functions"
            return Check("vpc-endpoints", False, f"the VPC already has {', '.join(clashes)}", fix)
        return Check("vpc-endpoints", True, "the stack makes SQS, Secrets Manager and S3 endpoints; none collides")
    nat = _nat_route(p)
    unreachable = [s for s in ENDPOINT_SERVICES if not by_service[s] and not nat]
    if unreachable:
        fix = "CreateVpcEndpoints=true (with RouteTableIds), or a NAT gateway route (0.0.0.0/0) for the subnets"
        return Check("vpc-endpoints", False, f"no endpoint and no NAT route for {', '.join(unreachable)}", fix)
    how = "a NAT gateway" if nat else "the VPC's endpoints"
    return Check("vpc-endpoints", True, f"the subnets reach SQS, Secrets Manager and S3 through {how}")


def _stack_endpoints(stack: str) -> set[str]:
    """The endpoints this stack made already (an update keeps them: they collide with nothing)."""
    try:
        resources = aws_client("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
    except botocore.exceptions.ClientError:
        return set()
    return {r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::EC2::VPCEndpoint"}


def _subnet_route_tables(p: Preflight) -> dict[str, dict[str, Any]]:
    """Each subnet's route table: its own association, else the VPC's main table."""
    tables = aws_client("ec2").describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [p.value("VpcId")]}])
    main, found = None, {}
    for table in tables["RouteTables"]:
        for association in table.get("Associations", []):
            if association.get("Main"):
                main = table
            elif association.get("SubnetId"):
                found[association["SubnetId"]] = table
    return {subnet: found.get(subnet) or main or {} for subnet in p.listed("SubnetIds")}


def _nat_route(p: Preflight) -> bool:
    """Whether every subnet's route table sends 0.0.0.0/0 to a NAT gateway."""
    tables = _subnet_route_tables(p).values()
    return bool(tables) and all(
        any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("NatGatewayId") for r in t.get("Routes", []))
        for t in tables
    )


def check_route_tables(p: Preflight) -> Check:
    if not p.makes_endpoints:
        return Check("route-tables", True, "not needed (CreateVpcEndpoints=false)")
    tables = _subnet_route_tables(p)
    needed = {subnet: t.get("RouteTableId", "?") for subnet, t in tables.items()}
    missing = sorted({t for t in needed.values() if t not in p.listed("RouteTableIds")})
    if missing:
        fix = f"RouteTableIds={','.join(sorted(set(needed.values())))}"
        return Check("route-tables", False, f"the subnets use {', '.join(missing)}, not in RouteTableIds", fix)
    return Check("route-tables", True, f"RouteTableIds covers every subnet ({', '.join(sorted(set(needed.values())))})")


def check_security_groups(p: Preflight) -> Check:
    ec2 = aws_client("ec2")
    try:
        groups = ec2.describe_security_groups(GroupIds=p.listed("SecurityGroupIds"))["SecurityGroups"]
    except botocore.exceptions.ClientError as exc:
        return Check("security-groups", False, f"{p.value('SecurityGroupIds')}: {_code(exc)}", "name groups of the VPC")
    outside = [g["GroupId"] for g in groups if g.get("VpcId") != p.value("VpcId")]
    if outside:
        return Check(
            "security-groups", False, f"{', '.join(outside)} not in {p.value('VpcId')}", "name the VPC's groups"
        )
    rules = [rule for g in groups for rule in g.get("IpPermissionsEgress", [])]
    ports = {"HTTPS": 443, "MySQL": int(p.value("MySQLPort")), "Redis": int(p.value("RedisPort"))}
    closed = [f"{port} ({what})" for what, port in ports.items() if not _egress(rules, port)]
    if closed:
        group = p.listed("SecurityGroupIds")[0]
        fix = (
            f"aws ec2 authorize-security-group-egress --group-id {group} --protocol tcp --port <port> --cidr <VPC CIDR>"
        )
        return Check("security-groups", False, f"no outbound rule for tcp {', '.join(closed)}", fix)
    return Check("security-groups", True, "outbound tcp 443, MySQL's and Redis's ports allowed")


def _egress(rules: Iterable[dict[str, Any]], port: int) -> bool:
    for rule in rules:
        if rule.get("IpProtocol") == "-1":
            return True
        if rule.get("IpProtocol") in ("tcp", "6") and int(rule.get("FromPort", -1)) <= port <= int(
            rule.get("ToPort", -1)
        ):
            return True
    return False


def check_secret(parameter: str) -> Callable[[Preflight], Check]:
    def check(p: Preflight) -> Check:
        name = f"secret {parameter}"
        arn = p.value(parameter)
        sm = aws_client("secretsmanager")
        try:
            described = sm.describe_secret(SecretId=arn)
            value = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
        except botocore.exceptions.ClientError as exc:
            return Check(name, False, f"{arn}: {_code(exc)}", "create it, or give the full ARN of one you can read")
        except (ValueError, KeyError):
            return Check(name, False, f"{arn}: not a JSON secret string", 'store {"username": ..., "password": ...}')
        if not (
            isinstance(value, dict)
            and all(isinstance(value.get(k), str) and value[k] for k in ("username", "password"))
        ):
            keys = sorted(value) if isinstance(value, dict) else type(value).__name__
            return Check(name, False, f"{arn}: has {keys}, not username and password", 'store {"username", "password"}')
        key = described.get("KmsKeyId")
        if key and key != AWS_MANAGED_SECRET_KEY and _key_manager(key) != "AWS":
            fix = "the functions' roles have no kms:Decrypt: re-encrypt it under aws/secretsmanager"
            return Check(name, False, f"{arn}: encrypted with the customer-managed key {key}", fix)
        return Check(name, True, f"{described['Name']}: username and password, Secrets Manager's own key")

    return check


def _key_manager(key: str) -> str:
    try:
        return str(aws_client("kms").describe_key(KeyId=key)["KeyMetadata"].get("KeyManager", "CUSTOMER"))
    except botocore.exceptions.ClientError:
        return "CUSTOMER"


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))


CHECKS: dict[str, Callable[[Preflight], Check]] = {
    "parameters": check_parameters,
    "ca-bundle": check_ca_bundle,
    "template-size": check_template_size,
    "lambda-concurrency": check_concurrency,
    "subnets": check_subnets,
    "vpc-dns": check_vpc_dns,
    "vpc-endpoints": check_endpoints,
    "route-tables": check_route_tables,
    "security-groups": check_security_groups,
    "secret MySQLAdminSecretArn": check_secret("MySQLAdminSecretArn"),
    "secret RedisSecretArn": check_secret("RedisSecretArn"),
}


def prepare(stage: str, parameters: dict[str, str], bucket: str | None, stack: str | None = None) -> Preflight:
    """The stage's template (packaged here, for reading only) with the parameters."""
    with tempfile.TemporaryDirectory(prefix="sluice-preflight-") as out:
        built = package(stage, Path(out), template_only=True)
        template = yaml.safe_load(built.template.read_text())
    size = len(json.dumps(template, separators=(",", ":")).encode())
    return Preflight(stage, template, size, parameters, stack or stack_name(stage), bucket)


def run(p: Preflight) -> list[Check]:
    """Every check; a check that cannot ask the account fails, saying why."""
    results = []
    for name, check in CHECKS.items():
        try:
            results.append(check(p))
        except botocore.exceptions.BotoCoreError as exc:
            results.append(Check(name, False, f"could not ask: {exc}", "AWS credentials and AWS_REGION of the stack"))
        except botocore.exceptions.ClientError as exc:
            results.append(Check(name, False, f"could not ask: {_code(exc)}", "credentials that may read this"))
    return results


def load_parameters(path: Path) -> dict[str, str]:
    """A parameters file, as `aws cloudformation deploy --parameter-overrides file://...` reads it:
    {"Parameters": {name: value, ...}}."""
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (copy deploy/parameters.example.json and fill it in)")
    data = json.loads(path.read_text())
    if not (isinstance(data, dict) and isinstance(data.get("Parameters"), dict)):
        raise SystemExit(f'{path}: {{"Parameters": {{"VpcId": ..., ...}}}}, please (deploy/parameters.example.json)')
    return {str(k): str(v) for k, v in data["Parameters"].items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--parameters", type=Path, required=True)
    parser.add_argument("--bucket", help="the S3 bucket the template and code go through")
    parser.add_argument("--stack-name", help="default: sluice-<stage>")
    args = parser.parse_args(argv)
    checks = run(prepare(args.stage, load_parameters(args.parameters), args.bucket or None, args.stack_name))
    for check in checks:
        print(check.line())
    failed = [c.name for c in checks if not c.ok]
    print(f"preflight ({args.stage}): {len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
