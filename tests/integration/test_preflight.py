"""`make preflight` against the account of each emulator where the packaged stack is deployed: every
check passes for the stack's own parameters, and each precondition broken in turn fails its check,
with a line saying what to do. The emulator stands for the operator's account through
AWS_ENDPOINT_URL, so the code path is the one that runs against AWS."""

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import tools.deploy.package as packaging
from tests.support.bundles import name_a_missing_bundle
from tools.aws import LOCAL_AWS_ENV
from tools.deploy import preflight
from tools.deploy.checks import Check, Preflight
from tools.deploy.stack import StackDeployment, targets

STAGE = "stack"
BUCKET = "sluice-artifacts"  # where make deploy-stack puts the code, in the emulator's region


@pytest.fixture(scope="module", params=["localstack", "ministack"])
def stack(request, stacks) -> StackDeployment:
    deployment: StackDeployment = stacks.get(request.param)
    return deployment


@pytest.fixture(scope="module")
def checked(stack) -> Preflight:
    """The stage's template (packaged once per emulator) with the deployed stack's parameters."""
    return preflight.prepare(STAGE, dict(stack.parameters), BUCKET)


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


def results(checked: Preflight, **changed: Any) -> dict[str, Check]:
    return {c.name: c for c in preflight.run(dataclasses.replace(checked, **changed))}


def failed(checked: Preflight, **changed: Any) -> dict[str, Check]:
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


def test_the_code_and_template_need_a_bucket_that_exists(checked):
    # GIVEN no bucket, or one that does not exist THEN the check fails, saying what to give
    assert "BUCKET=" in failed(checked, bucket=None)["template-size"].fix
    missing = f"sluice-preflight-{uuid.uuid4().hex[:8]}"
    assert missing in failed(checked, bucket=missing)["template-size"].found
    # AND once the bucket exists, it passes
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
        assert "reserves none" in results(checked, parameters=parameters)["lambda-concurrency"].found
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


@contextmanager
def vpc_endpoint(checked: Preflight, service: str, **properties: Any) -> Iterator[str]:
    """An endpoint of the VPC's own (not the stack's) for the `with` block; its id."""
    ec2 = client("ec2")
    made = ec2.create_vpc_endpoint(
        VpcId=checked.value("VpcId"), ServiceName=f"com.amazonaws.{LOCAL_AWS_ENV['AWS_REGION']}.{service}", **properties
    )["VpcEndpoint"]["VpcEndpointId"]
    try:
        yield str(made)
    finally:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[made])


def test_an_endpoint_the_vpc_already_has_collides_with_the_stacks(checked):
    # GIVEN the VPC with an SQS endpoint of its own, with private DNS (not the stack's)
    subnets = checked.listed("SubnetIds")
    with vpc_endpoint(checked, "sqs", VpcEndpointType="Interface", SubnetIds=subnets, PrivateDnsEnabled=True) as own:
        # WHEN checked with CreateVpcEndpoints "true" THEN the endpoints check fails, naming it
        check = failed(checked)["vpc-endpoints"]
        assert f"the VPC already has {own} (sqs)" == check.found and check.fix == "CreateVpcEndpoints=false"


def test_no_endpoints_and_no_nat_fails(checked):
    # GIVEN CreateVpcEndpoints "false" in a VPC with neither endpoints of its own nor a NAT route
    parameters = {**checked.parameters, "CreateVpcEndpoints": "false"}
    # WHEN checked THEN the functions could reach neither SQS nor Secrets Manager (S3: the stack's endpoint)
    check = failed(checked, parameters=parameters)["vpc-endpoints"]
    assert check.found == "no endpoint and no NAT route for sqs, secretsmanager"
    assert check.fix.startswith("CreateVpcEndpoints=true")


def test_no_way_to_s3_fails(checked):
    # GIVEN no route tables for the stack's S3 endpoint, in a VPC without one of its own or a NAT
    parameters = {**checked.parameters, "RouteTableIds": ""}
    # WHEN checked THEN the migration could not answer CloudFormation: the fix names the subnets' tables
    check = failed(checked, parameters=parameters)["vpc-endpoints"]
    assert check.found == "no endpoint and no NAT route for s3"
    assert check.fix.startswith(f"RouteTableIds={checked.value('RouteTableIds')}")


def test_an_s3_endpoint_the_vpc_already_has_collides_and_then_serves(checked):
    # GIVEN the VPC with an S3 gateway endpoint of its own on the subnets' route table
    with vpc_endpoint(checked, "s3", VpcEndpointType="Gateway", RouteTableIds=checked.listed("RouteTableIds")) as own:
        # WHEN checked with RouteTableIds THEN the stack's would collide (AWS refuses a second one)
        check = failed(checked)["vpc-endpoints"]
        assert own in check.found and check.fix == 'RouteTableIds=""'
        # AND without RouteTableIds the VPC's own serves the functions
        parameters = {**checked.parameters, "RouteTableIds": ""}
        assert f"s3: {own}" in results(checked, parameters=parameters)["vpc-endpoints"].found


def test_route_tables_that_are_not_the_subnets_fail(checked):
    # GIVEN RouteTableIds naming the VPC's main table, which the subnets do not use
    tables = client("ec2").describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [checked.value("VpcId")]}])
    (main,) = [t["RouteTableId"] for t in tables["RouteTables"] if any(a.get("Main") for a in t["Associations"])]
    parameters = {**checked.parameters, "RouteTableIds": main}
    # WHEN checked THEN the route tables check fails with the value to give
    check = failed(checked, parameters=parameters)["route-tables"]
    assert check.fix == f"RouteTableIds={checked.value('RouteTableIds')}"


@pytest.fixture
def egress(checked) -> Iterator[Callable[[list[dict[str, Any]]], None]]:
    """Replace the functions' security group's outbound rules for one test; restored after it."""
    ec2 = client("ec2")
    group = checked.listed("SecurityGroupIds")[0]
    before = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissionsEgress"]

    def replace(rules: list[dict[str, Any]]) -> None:
        now = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissionsEgress"]
        if now:
            ec2.revoke_security_group_egress(GroupId=group, IpPermissions=now)
        if rules:
            ec2.authorize_security_group_egress(GroupId=group, IpPermissions=rules)

    yield replace
    replace(before)


def test_a_security_group_without_outbound_rules_fails(checked, egress):
    # GIVEN the functions' security group with no outbound rule
    egress([])
    # WHEN checked THEN the check fails on 443 to the endpoints and to S3, and on MySQL's and Redis's ports
    check = failed(checked)["security-groups"]
    for needed in ("443 to the VPC", "443 to S3", f"{checked.value('MySQLPort')} (MySQL)", "(Redis)"):
        assert needed in check.found


def test_https_only_inside_the_vpc_does_not_reach_s3(checked, egress):
    # GIVEN every port open, but only to the VPC's own addresses (S3's gateway is outside them)
    vpc = client("ec2").describe_vpcs(VpcIds=[checked.value("VpcId")])["Vpcs"][0]["CidrBlock"]
    egress([{"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "IpRanges": [{"CidrIp": vpc}]}])
    # WHEN checked THEN only S3 is out of reach, and the fix names its prefix list rule
    check = failed(checked)["security-groups"]
    assert check.found == "no outbound rule for tcp 443 to S3 (its prefix list, or anywhere)"
    assert "PrefixListIds" in check.fix


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
