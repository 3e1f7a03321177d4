"""`make preflight` against the account of each emulator where the packaged stack is deployed: every
check passes for the stack's own parameters, and each precondition broken in turn fails its check,
with a line saying what to do. The emulator stands for the operator's account through
AWS_ENDPOINT_URL, so the code path is the one that runs against AWS."""

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tools.deploy.package as packaging
from tests.support.bundles import name_a_missing_bundle
from tools.aws import LOCAL_AWS_ENV
from tools.deploy import preflight
from tools.deploy.stack import StackDeployment, targets

STAGE = "stack"


@pytest.fixture(scope="module", params=["localstack", "ministack"])
def stack(request, stacks) -> StackDeployment:
    deployment: StackDeployment = stacks.get(request.param)
    return deployment


@pytest.fixture(scope="module")
def checked(stack) -> preflight.Preflight:
    """The stage's template (packaged once per emulator) with the deployed stack's parameters."""
    return preflight.prepare(STAGE, dict(stack.parameters), None)


@pytest.fixture(autouse=True)
def account(stack, monkeypatch) -> StackDeployment:
    """The emulator as the account in the operator's credentials."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", targets()[stack.target].endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", LOCAL_AWS_ENV["AWS_REGION"])
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, LOCAL_AWS_ENV[name])
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    deployment: StackDeployment = stack
    return deployment


def client(service: str) -> Any:
    from tools.aws import aws_client

    return aws_client(service)  # through AWS_ENDPOINT_URL, as preflight's own


def results(checked: preflight.Preflight, **changed: Any) -> dict[str, preflight.Check]:
    return {c.name: c for c in preflight.run(dataclasses.replace(checked, **changed))}


def failed(checked: preflight.Preflight, **changed: Any) -> dict[str, preflight.Check]:
    return {name: c for name, c in results(checked, **changed).items() if not c.ok}


def test_every_check_passes_for_the_deployed_stacks_parameters(checked):
    # GIVEN the emulator's account with the stack deployed WHEN preflight runs with its parameters
    found = results(checked)
    # THEN every check passes, each saying what it found
    assert set(found) == set(preflight.CHECKS)
    assert {name: c.found for name, c in found.items() if not c.ok} == {}


def test_a_missing_or_malformed_parameter_fails(checked):
    # GIVEN parameters without MySQLHost and with a subnet that is not a subnet id
    parameters = {k: v for k, v in checked.parameters.items() if k != "MySQLHost"}
    parameters["SubnetIds"] = "subnet-0a,nope"
    # WHEN checked THEN the parameters check fails naming both
    check = failed(checked, parameters=parameters)["parameters"]
    assert "MySQLHost is missing" in check.found and "SubnetIds='subnet-0a,nope' does not match" in check.found


def test_a_missing_ca_bundle_fails(checked, monkeypatch):
    # GIVEN the stage naming a CA bundle that is not on this machine
    name_a_missing_bundle(monkeypatch, "certs/gone.pem")
    # WHEN checked THEN the CA bundle check fails, naming the setting and where to get it
    check = failed(checked)["ca-bundle"]
    assert "MYSQL_CA_BUNDLE names certs/gone.pem" in check.found and check.fix == "certs/README.md"


def test_a_template_over_the_inline_limit_needs_a_bucket_that_exists(checked, monkeypatch):
    # GIVEN a template over the inline limit (the limit lowered below it)
    monkeypatch.setattr(preflight, "INLINE_TEMPLATE_LIMIT", 1000)
    # THEN without a bucket, or with one that does not exist, the check fails; with one, it passes
    assert "BUCKET=" in failed(checked)["template-size"].fix
    missing = f"sluice-preflight-{uuid.uuid4().hex[:8]}"
    assert missing in failed(checked, bucket=missing)["template-size"].found
    client("s3").create_bucket(Bucket=missing)
    try:
        assert results(checked, bucket=missing)["template-size"].ok
    finally:
        client("s3").delete_bucket(Bucket=missing)


def test_too_little_unreserved_concurrency_fails(checked, account):
    # GIVEN an account where another function holds so much reserved concurrency that the stage's
    # reservations would leave fewer than 100 unreserved
    lam = client("lambda")
    unreserved = int(lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"])
    needed = sum(int(v) for v in packaging.reservations(STAGE).values())
    other = f"{account.stack_name}-maintain"
    lam.put_function_concurrency(FunctionName=other, ReservedConcurrentExecutions=unreserved - 100 - needed + 1)
    try:
        # WHEN checked THEN the concurrency check fails, and says how to deploy anyway
        check = failed(checked)["lambda-concurrency"]
        assert "which leaves 99" in check.found and "ReserveConcurrency=false" in check.fix
        # AND without reservations the same account passes
        parameters = {**checked.parameters, "ReserveConcurrency": "false"}
        assert results(checked, parameters=parameters)["lambda-concurrency"].ok
    finally:
        lam.delete_function_concurrency(FunctionName=other)


def test_subnets_in_one_zone_fail(checked):
    # GIVEN one subnet only WHEN checked THEN the subnets check fails: a second zone is needed
    parameters = {**checked.parameters, "SubnetIds": checked.listed("SubnetIds")[0]}
    assert "another availability zone" in failed(checked, parameters=parameters)["subnets"].fix


def test_a_vpc_without_dns_host_names_fails(checked):
    # GIVEN the VPC with DNS host names off (private endpoint names would not resolve)
    ec2, vpc = client("ec2"), checked.value("VpcId")
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": False})
    try:
        # WHEN checked THEN the DNS check fails with the command that turns it on
        check = failed(checked)["vpc-dns"]
        assert "enableDnsHostnames off" in check.found and "--enable-dns-hostnames" in check.fix
    finally:
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})


def test_an_endpoint_the_vpc_already_has_collides_with_the_stacks(checked):
    # GIVEN the VPC with an SQS endpoint of its own, with private DNS (not the stack's)
    ec2 = client("ec2")
    own = ec2.create_vpc_endpoint(
        VpcId=checked.value("VpcId"),
        ServiceName=f"com.amazonaws.{LOCAL_AWS_ENV['AWS_REGION']}.sqs",
        VpcEndpointType="Interface",
        SubnetIds=checked.listed("SubnetIds"),
        PrivateDnsEnabled=True,
    )["VpcEndpoint"]["VpcEndpointId"]
    try:
        # WHEN checked with CreateVpcEndpoints "true" THEN the endpoints check fails, naming it
        check = failed(checked)["vpc-endpoints"]
        assert own in check.found and "CreateVpcEndpoints=false" in check.fix
    finally:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[own])


def test_no_endpoints_and_no_nat_fails(checked):
    # GIVEN CreateVpcEndpoints "false" in a VPC with neither endpoints of its own nor a NAT route
    parameters = {**checked.parameters, "CreateVpcEndpoints": "false"}
    # WHEN checked THEN the functions could reach neither SQS, Secrets Manager nor S3
    check = failed(checked, parameters=parameters)["vpc-endpoints"]
    assert "no endpoint and no NAT route for sqs, secretsmanager, s3" in check.found


def test_route_tables_that_are_not_the_subnets_fail(checked):
    # GIVEN RouteTableIds naming the VPC's main table, which the subnets do not use
    tables = client("ec2").describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [checked.value("VpcId")]}])
    (main,) = [t["RouteTableId"] for t in tables["RouteTables"] if any(a.get("Main") for a in t["Associations"])]
    parameters = {**checked.parameters, "RouteTableIds": main}
    # WHEN checked THEN the route tables check fails with the value to give
    check = failed(checked, parameters=parameters)["route-tables"]
    assert check.fix == f"RouteTableIds={checked.value('RouteTableIds')}"


def test_a_security_group_without_outbound_rules_fails(checked):
    # GIVEN the functions' security group with its outbound rules removed
    ec2 = client("ec2")
    group = checked.listed("SecurityGroupIds")[0]
    rules = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissionsEgress"]
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=rules)
    try:
        # WHEN checked THEN the security group check fails on 443, MySQL's and Redis's ports
        check = failed(checked)["security-groups"]
        mysql, redis = checked.value("MySQLPort"), checked.value("RedisPort")
        assert f"tcp 443 (HTTPS), {mysql} (MySQL), {redis} (Redis)" in check.found
    finally:
        ec2.authorize_security_group_egress(GroupId=group, IpPermissions=rules)


@pytest.fixture
def secret() -> Iterator[Callable[..., str]]:
    """Make secrets for one test; removed after it."""
    sm, made = client("secretsmanager"), []

    def make(value: Any, **kwargs: Any) -> str:
        name = f"sluice-preflight/{uuid.uuid4().hex[:8]}"
        made.append(name)
        return str(sm.create_secret(Name=name, SecretString=json.dumps(value), **kwargs)["ARN"])

    yield make
    for name in made:
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def test_a_secret_that_is_missing_or_of_another_shape_fails(checked, secret):
    # GIVEN an administrator secret that does not exist, and a Redis secret without a password
    absent = checked.value("MySQLAdminSecretArn") + "-gone"
    parameters = {**checked.parameters, "MySQLAdminSecretArn": absent, "RedisSecretArn": secret({"user": "x"})}
    # WHEN checked THEN both secret checks fail, each saying what it found
    found = failed(checked, parameters=parameters)
    assert "ResourceNotFoundException" in found["secret MySQLAdminSecretArn"].found
    assert "has ['user'], not username and password" in found["secret RedisSecretArn"].found


def test_a_secret_under_a_customer_managed_key_fails(checked, secret):
    # GIVEN a Redis secret encrypted with a customer-managed KMS key (the roles cannot decrypt it)
    kms = client("kms")
    key = kms.create_key(Description="sluice preflight test")["KeyMetadata"]["Arn"]
    try:
        arn = secret({"username": "u", "password": "p"}, KmsKeyId=key)
        # WHEN checked THEN the secret's check fails, naming the key
        check = failed(checked, parameters={**checked.parameters, "RedisSecretArn": arn})["secret RedisSecretArn"]
        assert key in check.found and "aws/secretsmanager" in check.fix
    finally:
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
