"""`make preflight`'s checks of the VPC: can the functions in its subnets reach what they must?

The functions reach SQS and Secrets Manager through interface endpoints (the stack's, or the
VPC's own) or a NAT gateway, and S3 (the migration's answer to CloudFormation) through a gateway
endpoint on the subnets' route tables (the stack's, or the VPC's own) or a NAT gateway; their
security groups must let them out to each, and to MySQL's and Redis's ports.
"""

import ipaddress
from collections.abc import Iterable
from typing import Any

import botocore.exceptions

from tools.aws import aws_client
from tools.deploy.checks import Check, Preflight, error_code

INTERFACE_SERVICES = ("sqs", "secretsmanager")
LIVE_ENDPOINT_STATES = ("available", "pending", "pendingacceptance")
ANYWHERE = "0.0.0.0/0"


def check_subnets(p: Preflight) -> Check:
    try:
        subnets = aws_client("ec2").describe_subnets(SubnetIds=p.listed("SubnetIds"))["Subnets"]
    except botocore.exceptions.ClientError as exc:
        fix = "name subnets of this account and region"
        return Check("subnets", False, f"{p.value('SubnetIds')}: {error_code(exc)}", fix)
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
    """How the subnets reach SQS, Secrets Manager and S3, and whether the stack's endpoints collide."""
    region = aws_client("ec2").meta.region_name
    theirs = _vpc_endpoints(p)
    tables = {t.get("RouteTableId", "") for t in _subnet_route_tables(p).values()}
    nat = _nat_route(p)
    ways: list[str] = []
    clashes: list[tuple[str, str]] = []  # (what is there, what to give)
    unreachable: list[tuple[str, str]] = []
    for service in INTERFACE_SERVICES:
        name = f"com.amazonaws.{region}.{service}"
        serving = [e["VpcEndpointId"] for e in theirs if e["ServiceName"] == name and _private_interface(e)]
        if p.makes_endpoints and serving:
            clashes.append((f"{serving[0]} ({service})", "CreateVpcEndpoints=false"))
        elif p.makes_endpoints or serving or nat:
            ways.append(f"{service}: {'the stack' if p.makes_endpoints else serving[0] if serving else 'NAT'}")
        else:
            unreachable.append((service, "CreateVpcEndpoints=true"))
    s3 = [e for e in theirs if e["ServiceName"] == f"com.amazonaws.{region}.s3"]
    on_ours = [e["VpcEndpointId"] for e in s3 if set(e.get("RouteTableIds") or []) & set(p.listed("RouteTableIds"))]
    serving_s3 = [
        e["VpcEndpointId"] for e in s3 if tables <= set(e.get("RouteTableIds") or []) or _private_interface(e)
    ]
    if p.makes_s3_endpoint and on_ours:
        clashes.append((f"{on_ours[0]} (s3, on those route tables)", 'RouteTableIds=""'))
    elif p.makes_s3_endpoint or serving_s3 or nat:
        ways.append(f"s3: {'the stack' if p.makes_s3_endpoint else serving_s3[0] if serving_s3 else 'NAT'}")
    else:
        unreachable.append(("s3", f"RouteTableIds={','.join(sorted(tables))}"))
    if clashes:
        found = f"the VPC already has {', '.join(what for what, _ in clashes)}"
        return Check("vpc-endpoints", False, found, " and ".join(fix for _, fix in clashes))
    if unreachable:
        found = f"no endpoint and no NAT route for {', '.join(what for what, _ in unreachable)}"
        fix = " and ".join(dict.fromkeys(fix for _, fix in unreachable)) + ", or a NAT gateway for the subnets"
        return Check("vpc-endpoints", False, found, fix)
    return Check("vpc-endpoints", True, "; ".join(ways))


def _private_interface(endpoint: dict[str, Any]) -> bool:
    """An interface endpoint whose private DNS name answers for the service's own name."""
    return endpoint.get("VpcEndpointType") == "Interface" and endpoint.get("PrivateDnsEnabled") is not False


def _vpc_endpoints(p: Preflight) -> list[dict[str, Any]]:
    """The VPC's live endpoints, but the stack's own (an update keeps or removes those itself)."""
    ours = _stack_endpoints(p.stack)
    found = aws_client("ec2").describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [p.value("VpcId")]}])
    return [
        e
        for e in found["VpcEndpoints"]
        if e["VpcEndpointId"] not in ours and str(e.get("State", "available")).lower() in LIVE_ENDPOINT_STATES
    ]


def _stack_endpoints(stack: str) -> set[str]:
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
        any(r.get("DestinationCidrBlock") == ANYWHERE and r.get("NatGatewayId") for r in t.get("Routes", []))
        for t in tables
    )


def check_route_tables(p: Preflight) -> Check:
    if not p.makes_s3_endpoint:
        return Check("route-tables", True, "the stack makes no S3 endpoint (RouteTableIds is empty)")
    needed = sorted({t.get("RouteTableId", "(none)") for t in _subnet_route_tables(p).values()})
    missing = [t for t in needed if t not in p.listed("RouteTableIds")]
    if missing:
        fix = f"RouteTableIds={','.join(needed)}"
        return Check("route-tables", False, f"the subnets use {', '.join(missing)}, not in RouteTableIds", fix)
    return Check("route-tables", True, f"RouteTableIds covers every subnet ({', '.join(needed)})")


def check_security_groups(p: Preflight) -> Check:
    ec2 = aws_client("ec2")
    try:
        groups = ec2.describe_security_groups(GroupIds=p.listed("SecurityGroupIds"))["SecurityGroups"]
    except botocore.exceptions.ClientError as exc:
        fix = "name groups of the VPC"
        return Check("security-groups", False, f"{p.value('SecurityGroupIds')}: {error_code(exc)}", fix)
    vpc = p.value("VpcId")
    outside = [g["GroupId"] for g in groups if g.get("VpcId") != vpc]
    if outside:
        return Check("security-groups", False, f"{', '.join(outside)} not in {vpc}", "name the VPC's groups")
    rules = [rule for g in groups for rule in g.get("IpPermissionsEgress", [])]
    vpc_net = ipaddress.ip_network(ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlock"])
    s3_list = _s3_prefix_list(ec2)
    # Interface endpoints are addresses in the VPC; S3's gateway is its prefix list; a NAT, anywhere.
    needs = {
        "443 to the VPC (SQS, Secrets Manager endpoints)": (443, lambda d: _covers(d, vpc_net)),
        "443 to S3 (its prefix list, or anywhere)": (443, lambda d: d in (ANYWHERE, s3_list)),
        f"{p.value('MySQLPort')} (MySQL)": (int(p.value("MySQLPort")), lambda d: True),
        f"{p.value('RedisPort')} (Redis)": (int(p.value("RedisPort")), lambda d: True),
    }
    closed = [what for what, (port, reaches) in needs.items() if not any(map(reaches, _destinations(rules, port)))]
    if closed:
        group, prefix_list = p.listed("SecurityGroupIds")[0], s3_list or "<the S3 prefix list>"
        fix = (
            f"aws ec2 authorize-security-group-egress --group-id {group} --ip-permissions"
            f" 'IpProtocol=tcp,FromPort=443,ToPort=443,IpRanges=[{{CidrIp={vpc_net}}}]'"
            f" 'IpProtocol=tcp,FromPort=443,ToPort=443,PrefixListIds=[{{PrefixListId={prefix_list}}}]'"
            " (and the database ports to their security groups)"
        )
        return Check("security-groups", False, f"no outbound rule for tcp {'; '.join(closed)}", fix)
    return Check("security-groups", True, "outbound 443 to the endpoints and S3, and MySQL's and Redis's ports")


def _s3_prefix_list(ec2: Any) -> str | None:
    name = f"com.amazonaws.{ec2.meta.region_name}.s3"
    try:
        lists = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])["PrefixLists"]
    except botocore.exceptions.ClientError:
        return None
    return str(lists[0]["PrefixListId"]) if lists else None


def _destinations(rules: Iterable[dict[str, Any]], port: int) -> list[str]:
    """Where the rules let tcp `port` out: CIDRs, prefix list ids, security group ids."""
    found: list[str] = []
    for rule in rules:
        protocol = str(rule.get("IpProtocol"))
        if protocol == "-1" or (
            protocol in ("tcp", "6") and rule.get("FromPort", -1) <= port <= rule.get("ToPort", -1)
        ):
            found += [r["CidrIp"] for r in rule.get("IpRanges", [])]
            found += [r["PrefixListId"] for r in rule.get("PrefixListIds", [])]
            found += [r["GroupId"] for r in rule.get("UserIdGroupPairs", []) if r.get("GroupId")]
    return found


def _covers(destination: str, vpc: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """Whether a destination reaches every address of the VPC (a security group may hold the endpoints)."""
    if destination.startswith("sg-"):
        return True
    try:
        return vpc.subnet_of(ipaddress.ip_network(destination))  # type: ignore[arg-type]
    except ValueError:
        return False
