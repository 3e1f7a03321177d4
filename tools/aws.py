"""The one AWS client factory of the tools and tests: a stage's AWS (or its LocalStack), an emulator
on this machine, or AWS itself."""

import os
from typing import Any

import boto3
import botocore.config

from chalicelib.config import Settings

# LocalStack and MiniStack accept any credentials; "test" maps to their default account 000000000000.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def aws_client(
    service: str,
    settings: Settings | None = None,
    *,
    endpoint_url: str | None = None,
    credentials: tuple[str, str] | tuple[str, str, str] | None = None,
    config: botocore.config.Config | None = None,
) -> Any:
    """A boto3 client: for a stage (`settings`: its SQS_ENDPOINT_URL and region, else AWS in its
    region), or for the emulator at `endpoint_url`, or with neither for AWS itself.

    An emulator is called with its test credentials unless `credentials` (key id, secret, and a
    session token for a role's session) are given; AWS with the default credential chain.
    """
    if settings is not None and endpoint_url is not None:
        raise TypeError("aws_client: a stage's settings or an endpoint, not both")
    region = None
    if settings is not None:
        endpoint_url, region = settings.sqs_endpoint_url, settings.aws_region
    if not endpoint_url:
        # AWS_REGION as the AWS CLI v2 reads it (botocore alone reads only AWS_DEFAULT_REGION or the profile's)
        return boto3.client(service, region_name=region or os.environ.get("AWS_REGION") or None, config=config)
    key_id, secret, *token = credentials or (LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"], LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"])
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region or LOCAL_AWS_ENV["AWS_REGION"],
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token[0] if token else None,
        config=config,
    )
