"""`make preflight STAGE=prod PARAMETERS=<file> BUCKET=<bucket>`: will the stack deploy here? Read-only.

    python -m tools.deploy.preflight --stage prod --parameters prod-parameters.json --bucket B

The parameters file is the one `aws cloudformation deploy --parameter-overrides file://...` takes
(deploy/parameters.example.json).

Checks, with the operator's credentials (AWS_PROFILE, AWS_REGION; AWS_ENDPOINT_URL for an
emulator), what a first deploy otherwise finds out late, after a rollback (the network's checks
are in network.py):

- the parameters file has every parameter the template needs, each as the template allows;
- the RDS CA bundle the stage names is on this machine (the package carries it);
- the bucket the code and template go through exists, in the stack's region;
- Lambda's concurrency quota leaves 100 unreserved after the stage's reservations, if any;
- the subnets are in the VPC, in two or more availability zones;
- the VPC resolves private endpoint names (DNS support and host names);
- the subnets reach SQS, Secrets Manager and S3 (the stack's endpoints, the VPC's own, or a NAT
  gateway), and the stack's endpoints do not collide with the VPC's own;
- RouteTableIds names every subnet's route table (the S3 gateway endpoint goes there);
- the functions' security groups let them out on 443 to the endpoints and S3, and to MySQL's and
  Redis's ports;
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
from collections.abc import Callable
from pathlib import Path

import botocore.exceptions
import yaml

from tools.aws import aws_client
from tools.deploy.checks import Check, Preflight, error_code
from tools.deploy.network import (
    check_endpoints,
    check_route_tables,
    check_security_groups,
    check_subnets,
    check_vpc_dns,
)
from tools.deploy.package import missing_bundle_message, missing_bundles, package, reservations
from tools.deploy.stack import stack_name

INLINE_TEMPLATE_LIMIT = 51_200  # bytes CloudFormation takes in TemplateBody; larger goes through S3
MIN_UNRESERVED = 100  # Lambda refuses a reservation that leaves fewer unreserved
RESERVING_FUNCTIONS = {"API_RESERVED_CONCURRENCY": "api", "CONSUMER_RESERVED_CONCURRENCY": "consumer"}
AWS_MANAGED_SECRET_KEY = "alias/aws/secretsmanager"


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
    """The code goes through a bucket in the stack's region (`aws cloudformation package`), and so
    does the template (`deploy --s3-bucket`), which is near CloudFormation's inline limit."""
    size = f"{p.template_bytes:,} bytes (the inline limit is {INLINE_TEMPLATE_LIMIT:,})"
    if not p.bucket:
        return Check("template-size", False, f"{size}; no bucket given", "BUCKET=<an S3 bucket in the stack's region>")
    s3 = aws_client("s3")
    try:
        answer = s3.head_bucket(Bucket=p.bucket)
    except botocore.exceptions.ClientError as exc:
        fix = f"aws s3 mb s3://{p.bucket} (in the stack's region), or name a bucket you own"
        return Check("template-size", False, f"bucket {p.bucket}: {error_code(exc)}", fix)
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    where = answer.get("BucketRegion") or headers.get("x-amz-bucket-region")
    if where and where != s3.meta.region_name:
        fix = f"a bucket in {s3.meta.region_name}: Lambda reads the code from the stack's region"
        return Check("template-size", False, f"bucket {p.bucket} is in {where}", fix)
    return Check("template-size", True, f"{size}, through the bucket {p.bucket}")


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
    if needed == 0:
        return Check("lambda-concurrency", True, f"quota {quota}, unreserved {unreserved}; the stack reserves none")
    if left < MIN_UNRESERVED:
        fix = (
            f"Lambda keeps {MIN_UNRESERVED} unreserved: ask for a higher 'Concurrent executions' quota (Service Quotas,"
            " L-B99A9384), or deploy with ReserveConcurrency=false"
        )
        return Check("lambda-concurrency", False, found, fix)
    return Check("lambda-concurrency", True, found)


def check_secret(parameter: str) -> Callable[[Preflight], Check]:
    def check(p: Preflight) -> Check:
        name = f"secret {parameter}"
        arn = p.value(parameter)
        sm = aws_client("secretsmanager")
        try:
            described = sm.describe_secret(SecretId=arn)
            value = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
        except botocore.exceptions.ClientError as exc:
            return Check(
                name, False, f"{arn}: {error_code(exc)}", "create it, or give the full ARN of one you can read"
            )
        except (ValueError, KeyError):
            return Check(name, False, f"{arn}: not a JSON secret string", 'store {"username": ..., "password": ...}')
        if not (
            isinstance(value, dict)
            and all(isinstance(value.get(k), str) and value[k] for k in ("username", "password"))
        ):
            keys = sorted(value) if isinstance(value, dict) else type(value).__name__
            return Check(name, False, f"{arn}: has {keys}, not username and password", 'store {"username", "password"}')
        key = described.get("KmsKeyId")
        manager = _key_manager(key) if key and not key.endswith(AWS_MANAGED_SECRET_KEY) else "AWS"
        if manager != "AWS":
            fix = "the functions' roles have no kms:Decrypt: re-encrypt it under aws/secretsmanager"
            return Check(name, False, f"{arn}: encrypted with the {manager} key {key}", fix)
        return Check(name, True, f"{described['Name']}: username and password, Secrets Manager's own key")

    return check


def _key_manager(key: str) -> str:
    """AWS or CUSTOMER: who manages a KMS key (an unreadable key cannot be told apart)."""
    try:
        return str(aws_client("kms").describe_key(KeyId=key)["KeyMetadata"].get("KeyManager", "CUSTOMER"))
    except botocore.exceptions.ClientError as exc:
        return f"unreadable ({error_code(exc)}: may kms:DescribeKey?)"


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
        text = built.template.read_text()  # what `aws cloudformation package` rewrites and deploy sends
        template = yaml.safe_load(text)
    return Preflight(stage, template, len(text.encode()), parameters, stack or stack_name(stage), bucket)


def run(p: Preflight) -> list[Check]:
    """Every check; a check that cannot ask the account fails, saying why."""
    results = []
    for name, check in CHECKS.items():
        try:
            results.append(check(p))
        except botocore.exceptions.BotoCoreError as exc:
            results.append(Check(name, False, f"could not ask: {exc}", "AWS credentials and AWS_REGION of the stack"))
        except botocore.exceptions.ClientError as exc:
            results.append(Check(name, False, f"could not ask: {error_code(exc)}", "credentials that may read this"))
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
