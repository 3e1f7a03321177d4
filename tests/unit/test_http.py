"""Errors become statuses in one place; bodies and credentials are checked before any work."""

import pytest
from chalice.app import Request, Response

from chalicelib import errors, http


def request(headers: dict[str, str] | None = None, body: str | None = None) -> Request:
    return Request(
        {
            "multiValueQueryStringParameters": None,
            "headers": headers or {},
            "pathParameters": None,
            "requestContext": {"httpMethod": "POST", "resourcePath": "/logs"},
            "body": body,
            "isBase64Encoded": False,
            "stageVariables": None,
        }
    )


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.ValidationError("x"), 400),
        (errors.InvalidJSONError("x"), 400),
        (errors.UnauthorizedError("x"), 401),
        (errors.ForbiddenError("x"), 403),
        (errors.NotFoundError("x"), 404),
        (errors.PayloadTooLargeError("x"), 413),
        (errors.UnsupportedMediaTypeError("x"), 415),
        (errors.QueueUnavailableError("x"), 503),
        (errors.DatabaseUnavailableError("x"), 503),
        (errors.BudgetExhaustedError("x"), 503),
        (errors.ConfigError("x"), 500),
    ],
)
def test_every_domain_error_has_its_status(error, status):
    assert http.status_for(error) == status


def test_a_503_says_when_to_retry_and_a_401_how_to_authenticate():
    unavailable = http.error_response(errors.QueueUnavailableError("down"), retry_after_s=3)
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "3"
    assert unavailable.body == {"error": {"code": "queue_unavailable", "message": "down"}}
    assert "WWW-Authenticate" in http.error_response(errors.UnauthorizedError("who?"), 1).headers


def test_details_are_part_of_the_error_body():
    response = http.error_response(errors.ValidationError("bad", details=[{"field": "level"}]), 1)
    assert response.body["error"]["details"] == [{"field": "level"}]


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/cloudevents+json"]
)
def test_json_content_types_are_read(content_type):
    assert http.read_json_body(request({"content-type": content_type}, '{"a": 1}'), 100) == {"a": 1}


def test_a_body_without_a_content_type_is_read_as_json():
    assert http.read_json_body(request({}, "[1]"), 100) == [1]


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        ({"content-type": "text/plain"}, "{}", errors.UnsupportedMediaTypeError),
        ({"content-type": "application/x-www-form-urlencoded"}, "a=1", errors.UnsupportedMediaTypeError),
        ({"content-type": "application/json"}, "x" * 101, errors.PayloadTooLargeError),
        ({"content-type": "application/json"}, "", errors.InvalidJSONError),
        ({"content-type": "application/json"}, "{nope", errors.InvalidJSONError),
    ],
)
def test_bodies_that_cannot_be_read_are_refused(headers, body, error):
    with pytest.raises(error):
        http.read_json_body(request(headers, body), 100)


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, errors.UnauthorizedError),
        ("Basic dXNlcjpwYXNz", errors.UnauthorizedError),
        ("Bearer", errors.UnauthorizedError),
        ("Bearer wrong", errors.ForbiddenError),
    ],
)
def test_only_the_admin_bearer_token_passes(authorization, error):
    headers = {"authorization": authorization} if authorization else {}
    with pytest.raises(error):
        http.require_admin(request(headers), "s3cret")


def test_the_admin_token_passes():
    http.require_admin(request({"authorization": "bearer s3cret"}), "s3cret")


def test_chalice_error_bodies_get_our_shape():
    chalice_405 = Response(
        body={"Code": "MethodNotAllowedError", "Message": "Unsupported method: PATCH"}, status_code=405
    )
    response = http.normalize_chalice_errors({}, lambda _: chalice_405)
    assert response.body == {"error": {"code": "method_not_allowed", "message": "Unsupported method: PATCH"}}


def test_successful_bodies_are_left_alone():
    ok = Response(body={"Code": "x", "Message": "y"}, status_code=200)
    assert http.normalize_chalice_errors({}, lambda _: ok).body == {"Code": "x", "Message": "y"}


def test_domain_errors_raised_in_views_become_json_responses():
    @http.json_errors(retry_after_s=2)
    def view() -> None:
        raise errors.NotFoundError("no such item")

    response = view()
    assert response.status_code == 404
    assert response.body["error"]["code"] == "not_found"
