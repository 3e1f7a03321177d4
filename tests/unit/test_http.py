"""Errors become statuses in one place; bodies and credentials are checked before any work."""

import pytest
from chalice.app import Request, Response

from chalicelib import errors
from chalicelib.web import http


def request(headers: dict[str, str] | None = None, body: str | None = None, request_id: str = "r-1") -> Request:
    return Request(
        {
            "multiValueQueryStringParameters": None,
            "headers": headers or {},
            "pathParameters": None,
            "requestContext": {
                "httpMethod": "POST",
                "resourcePath": "/logs",
                "requestId": request_id,
                "identity": {"sourceIp": "203.0.113.7"},
            },
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
        (errors.RateLimitedError("x"), 429),
        (errors.DatabaseError("x"), 500),
        (errors.QueryTimeoutError("x"), 503),
        (errors.SecretsUnavailableError("x"), 503),
        (errors.QueueUnavailableError("x"), 503),
        (errors.DatabaseUnavailableError("x"), 503),
        (errors.BudgetExhaustedError("x"), 503),
        (errors.ConfigError("x"), 500),
    ],
)
def test_every_domain_error_has_its_status(error, status):
    assert http.status_for(error) == status


def test_a_503_says_when_to_retry_and_a_401_how_to_authenticate():
    unavailable = http.error_response(errors.QueueUnavailableError("down"), retry_after_s=3, request="r-1")
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "3"
    assert unavailable.body == {"error": {"code": "queue_unavailable", "message": "down", "request_id": "r-1"}}
    assert "WWW-Authenticate" in http.error_response(errors.UnauthorizedError("who?"), 1, "r-2").headers


def test_an_errors_own_headers_are_sent():
    limited = errors.RateLimitedError("slow down", headers={"Retry-After": "7", "RateLimit": '"key";r=0;t=7'})
    response = http.error_response(limited, 1, "r-1")
    assert (response.status_code, response.headers["Retry-After"], response.headers["RateLimit"]) == (
        429,
        "7",
        '"key";r=0;t=7',
    )


def test_details_are_part_of_the_error_body():
    response = http.error_response(errors.ValidationError("bad", details=[{"field": "level"}]), 1, "r-1")
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
    ("authorization", "token"),
    [
        (None, None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Bearer s3cret", "s3cret"),
        ("bearer  s3cret ", "s3cret"),
    ],
)
def test_only_a_bearer_token_is_read(authorization, token):
    headers = {"authorization": authorization} if authorization else {}
    assert http.bearer_token(request(headers)) == token


def test_the_request_id_and_client_address_come_from_api_gateway():
    assert http.request_id(request(request_id="abc")) == "abc"
    assert http.client_address(request()) == "203.0.113.7"
    made = http.request_id(None)
    assert made != http.request_id(None)


def test_chalice_error_bodies_get_our_shape():
    chalice_405 = Response(
        body={"Code": "MethodNotAllowedError", "Message": "Unsupported method: PATCH"}, status_code=405
    )
    response = http.normalize_chalice_errors(request(request_id="r-9"), lambda _: chalice_405)
    assert response.body == {
        "error": {"code": "method_not_allowed", "message": "Unsupported method: PATCH", "request_id": "r-9"}
    }


def test_successful_bodies_are_left_alone():
    ok = Response(body={"Code": "x", "Message": "y"}, status_code=200)
    assert http.normalize_chalice_errors({}, lambda _: ok).body == {"Code": "x", "Message": "y"}


def test_domain_errors_raised_in_views_become_json_responses():
    @http.json_errors(retry_after_s=2, current_request=lambda: request(request_id="r-3"))
    def view() -> None:
        raise errors.NotFoundError("no such item")

    response = view()
    assert response.status_code == 404
    assert (response.body["error"]["code"], response.body["error"]["request_id"]) == ("not_found", "r-3")
