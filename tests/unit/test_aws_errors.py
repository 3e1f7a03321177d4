"""Which AWS SDK failures are unavailability (503, retry) and which are mistakes (500)."""

import botocore.exceptions
import pytest

from chalicelib.aws import error_code, is_unavailable


def client_error(code: str, status: int = 400) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendMessageBatch"
    )


@pytest.mark.parametrize(
    "exc",
    [
        client_error("ThrottlingException"),
        client_error("RequestThrottled"),
        client_error("AWS.SimpleQueueService.ServiceUnavailable", 503),
        client_error("SomethingNew", 502),
        botocore.exceptions.EndpointConnectionError(endpoint_url="https://sqs.example"),
        botocore.exceptions.ConnectTimeoutError(endpoint_url="https://sqs.example"),
        botocore.exceptions.ReadTimeoutError(endpoint_url="https://sqs.example"),
    ],
)
def test_no_answer_throttling_and_5xx_are_unavailability(exc):
    assert is_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        client_error("AccessDenied", 403),
        client_error("AccessDeniedException", 400),
        client_error("AWS.SimpleQueueService.NonExistentQueue"),
        client_error("ResourceNotFoundException"),
        client_error("KMSAccessDeniedException"),
        botocore.exceptions.NoCredentialsError(),
        botocore.exceptions.ParamValidationError(report="bad"),
    ],
)
def test_a_refusal_or_a_missing_resource_is_not_unavailability(exc):
    assert not is_unavailable(exc)


def test_the_error_code_is_named_without_the_message():
    assert error_code(client_error("AccessDenied", 403)) == "AccessDenied"
    assert error_code(botocore.exceptions.NoCredentialsError()) == "NoCredentialsError"
