"""AWS clients for the functions, and what an AWS SDK failure means: the service is unavailable
(503, try again), or something else.

Only a connection failure, a timeout, throttling or a 5xx answer is unavailability. Everything
else (access denied, a queue or secret that does not exist, a bad parameter) is a mistake in the
deployment or the code, and retrying cannot help. The codes are botocore's own retryable ones.
"""

from typing import Any

import boto3
import botocore.config
import botocore.exceptions

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServiceError",
        "InternalServerError",
        "AWS.SimpleQueueService.ServiceUnavailable",
        "AWS.SimpleQueueService.InternalError",
    }
)
# Errors that name no AWS service problem at all: the network or the service did not answer.
_UNAVAILABLE_EXCEPTIONS = (
    botocore.exceptions.ConnectionError,  # refused, DNS, connect timeout, connection closed
    botocore.exceptions.HTTPClientError,  # read timeout and other transport failures
)


def error_code(exc: Exception) -> str:
    """The AWS error code of a ClientError, or the botocore exception's class name."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__


def is_unavailable(exc: Exception) -> bool:
    """Whether the failure means the service could not serve the call now (so a retry may work)."""
    if isinstance(exc, _UNAVAILABLE_EXCEPTIONS):
        return True
    if isinstance(exc, botocore.exceptions.ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error_code(exc) in THROTTLING_CODES | TRANSIENT_CODES or status >= 500
    return False


# AWS calls fail fast, well inside the API's 29 s: the client sees a 503 rather than a timeout.
CLIENT_CONFIG = botocore.config.Config(
    connect_timeout=1, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}
)


def client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client for the functions, held to CLIENT_CONFIG's timeouts and retries."""
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url, config=CLIENT_CONFIG)
