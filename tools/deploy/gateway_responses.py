"""API Gateway's own answers (no route, throttled, too large, timed out, ...) in sluice's error
shape, `{"error": {"code", "message", "request_id"}}`, written once for every place they are made:

- the packaged stack: `x-amazon-apigateway-gateway-responses` in the REST API's definition
  (tools/deploy/package.py puts it into deploy/stack.yaml's {{GATEWAY_RESPONSES}});
- `chalice deploy` into LocalStack: put after each deploy, with a new deployment (tools/deploy/localstack.py);
- `chalice local`: its 403 "Missing Authentication Token" for a path without a route becomes the
  same 404 (tools/devstack/chalice_local.py).

A known path with a method it lacks never reaches these: the app answers it (405 with Allow), so
that local and deployed agree. MISSING_AUTHENTICATION_TOKEN is what API Gateway names a request
for a path it has no route for (with or without an Authorization header).
"""

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GatewayAnswer:
    status: int | None  # None: keep API Gateway's status (the DEFAULT_* families)
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


ANSWERS: dict[str, GatewayAnswer] = {
    "MISSING_AUTHENTICATION_TOKEN": GatewayAnswer(
        404, "not_found", "no such route; GET /openapi.json lists the API's paths and methods"
    ),
    "RESOURCE_NOT_FOUND": GatewayAnswer(404, "not_found", "no such route"),
    "THROTTLED": GatewayAnswer(
        429, "rate_limited", "the API's request rate limit was reached; retry later", (("Retry-After", "1"),)
    ),
    "QUOTA_EXCEEDED": GatewayAnswer(429, "rate_limited", "the API's request quota was reached"),
    "REQUEST_TOO_LARGE": GatewayAnswer(413, "payload_too_large", "the request is larger than the API accepts"),
    "UNSUPPORTED_MEDIA_TYPE": GatewayAnswer(
        415, "unsupported_media_type", "the request's Content-Type is not accepted"
    ),
    "INTEGRATION_TIMEOUT": GatewayAnswer(
        504, "gateway_timeout", "the API did not answer in time; the request may or may not have been applied"
    ),
    "INTEGRATION_FAILURE": GatewayAnswer(502, "bad_gateway", "the API could not be reached; retry later"),
    "DEFAULT_4XX": GatewayAnswer(None, "request_refused", "the API gateway refused the request"),
    "DEFAULT_5XX": GatewayAnswer(None, "gateway_error", "the API gateway failed to handle the request; retry later"),
}


def body(answer: GatewayAnswer, request_id: str) -> str:
    """The JSON body of a gateway answer (`request_id` is "$context.requestId" in the templates)."""
    error = {"code": answer.code, "message": answer.message, "request_id": request_id}
    return json.dumps({"error": error}, separators=(",", ":"))  # compact, as the app's answers


def _template(answer: GatewayAnswer) -> dict[str, Any]:
    response: dict[str, Any] = {"responseTemplates": {"application/json": body(answer, "$context.requestId")}}
    if answer.status is not None:
        response["statusCode"] = str(answer.status)
    if answer.headers:
        response["responseParameters"] = {
            f"gatewayresponse.header.{name}": f"'{value}'" for name, value in answer.headers
        }
    return response


def definition_extension() -> dict[str, dict[str, Any]]:
    """The `x-amazon-apigateway-gateway-responses` value of a REST API definition."""
    return {kind: _template(answer) for kind, answer in ANSWERS.items()}


def put_all(
    apigateway: Any, rest_api_id: str, api_stage: str, responses: dict[str, dict[str, Any]] | None = None
) -> None:
    """Set every gateway answer (`responses`: a definition's extension, by default this module's) on
    a deployed REST API and deploy its stage again (they take effect with the next deployment)."""
    for kind, template in (responses or definition_extension()).items():
        apigateway.put_gateway_response(restApiId=rest_api_id, responseType=kind, **template)
    apigateway.create_deployment(restApiId=rest_api_id, stageName=api_stage)
