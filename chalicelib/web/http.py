"""HTTP glue: JSON bodies, request ids, and the one place where errors become statuses.

Every error answer is `{"error": {"code", "message", "request_id", "details"?}}`; a 5xx is also
logged with its cause (driver text, hosts: never in the answer) under the same request id.
"""

import functools
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from chalice.app import Request, Response

from chalicelib.errors import (
    ConfigError,
    DatabaseError,
    DependencyUnavailableError,
    ForbiddenError,
    InvalidEncodingError,
    InvalidJSONError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    SluiceError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from chalicelib.validation import parse_json
from chalicelib.web.encoding import decoded_body

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[SluiceError], int] = {
    ValidationError: 400,
    InvalidJSONError: 400,
    InvalidEncodingError: 400,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    PayloadTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    RateLimitedError: 429,
    ConfigError: 500,
    DatabaseError: 500,
    DependencyUnavailableError: 503,
}

_JSON_MEDIA_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")


def status_for(error: SluiceError) -> int:
    """The HTTP status of a domain error (its nearest mapped class)."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def request_id(request: Request | None) -> str:
    """The request's id: API Gateway's, or one made here (chalice local has none) and kept."""
    context = getattr(request, "context", None)
    if not isinstance(context, dict):
        return str(uuid.uuid4())
    if not context.get("requestId"):
        context["requestId"] = str(uuid.uuid4())
    return str(context["requestId"])


def client_address(request: Request) -> str:
    """The caller's address as API Gateway saw it."""
    identity = (request.context or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


def error_body(code: str, message: str, request: str, details: Any = None) -> dict[str, Any]:
    """The JSON shape of every error."""
    error: dict[str, Any] = {"code": code, "message": message, "request_id": request}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(error: SluiceError, retry_after_s: int, request: str) -> Response:
    """A domain error as a JSON response with its status and headers."""
    status = status_for(error)
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json"}
    if status == 503:
        headers["Retry-After"] = str(retry_after_s)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="sluice"'
    headers.update(error.headers)
    if status >= 500:
        cause = error.__cause__ or error.__context__
        logger.error("%s answered %d: %s (cause: %r)", request, status, error.message, cause, exc_info=cause)
    return Response(
        body=error_body(error.code, error.message, request, error.details), status_code=status, headers=headers
    )


def json_errors(
    retry_after_s: int, current_request: Callable[[], Request | None]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view decorator turning domain errors into JSON error responses."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except SluiceError as error:
                return error_response(error, retry_after_s, request_id(current_request()))

        return wrapper

    return decorate


def normalize_chalice_errors(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Middleware: give Chalice's own error bodies ({"Code", "Message"}: 405, 500, ...) our shape."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", str(body["Code"]).removesuffix("Error")).lower()
        rid = request_id(event)
        if response.status_code >= 500:
            logger.error("%s answered %d by Chalice: %s", rid, response.status_code, body["Message"])
        response.body = error_body(code or "error", str(body["Message"]), rid)
    return response


def media_type(request: Request) -> str:
    """The declared Content-Type without its parameters, lower case (JSON when none is declared)."""
    return (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()


def is_json(media: str) -> bool:
    """Whether a media type is JSON (application/json, or a +json type)."""
    return bool(_JSON_MEDIA_TYPE.match(media))


def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body as the client meant it (inflated when it is compressed); 413 if too large
    before or after inflating."""
    sent = request.raw_body or b""
    return decoded_body(
        sent.encode() if isinstance(sent, str) else sent, request.headers.get("content-encoding"), max_bytes
    )


def read_json_body(request: Request, max_bytes: int) -> Any:
    """The request body parsed as JSON; 415 if it is declared as something else."""
    media = media_type(request)
    if not is_json(media):
        raise UnsupportedMediaTypeError(f"Content-Type must be application/json, not {media!r}")
    raw = read_body(request, max_bytes)
    if not raw.strip():
        raise InvalidJSONError("body is empty; a JSON object is expected")
    return parse_json(raw)


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, or None when there is no such header."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def query_params(request: Request) -> dict[str, str]:
    """The query string as a dict (each parameter once)."""
    return dict(request.query_params or {})
