"""HTTP glue: JSON bodies, admin auth, and the one place where errors become statuses."""

import functools
import hmac
import re
from collections.abc import Callable
from typing import Any

from chalice.app import Request, Response

from chalicelib.errors import (
    ConfigError,
    DependencyUnavailableError,
    ForbiddenError,
    InvalidJSONError,
    NotFoundError,
    PayloadTooLargeError,
    SluiceError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from chalicelib.models import parse_json

STATUS_BY_ERROR: dict[type[SluiceError], int] = {
    ValidationError: 400,
    InvalidJSONError: 400,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    PayloadTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    ConfigError: 500,
    DependencyUnavailableError: 503,
}

_JSON_MEDIA_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")


def status_for(error: SluiceError) -> int:
    """The HTTP status of a domain error (its nearest mapped class)."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON shape of every error."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(error: SluiceError, retry_after_s: int) -> Response:
    """A domain error as a JSON response with its status and headers."""
    status = status_for(error)
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json"}
    if status == 503:
        headers["Retry-After"] = str(retry_after_s)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="sluice"'
    return Response(body=error_body(error.code, error.message, error.details), status_code=status, headers=headers)


def json_errors(retry_after_s: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view decorator turning domain errors into JSON error responses."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except SluiceError as error:
                return error_response(error, retry_after_s)

        return wrapper

    return decorate


def normalize_chalice_errors(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Middleware: give Chalice's own error bodies ({"Code", "Message"}: 405, 500, ...) our shape."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", str(body["Code"]).removesuffix("Error")).lower()
        response.body = error_body(code or "error", str(body["Message"]))
    return response


def read_json_body(request: Request, max_bytes: int) -> Any:
    """The request body parsed as JSON; 415 if it is declared as something else, 413 if too large."""
    content_type = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    if not _JSON_MEDIA_TYPE.match(content_type):
        raise UnsupportedMediaTypeError(f"Content-Type must be application/json, not {content_type!r}")
    raw = request.raw_body or b""
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(f"body is {len(raw)} bytes; at most {max_bytes} are accepted")
    if not raw.strip():
        raise InvalidJSONError("body is empty; a JSON object is expected")
    return parse_json(raw)


def require_admin(request: Request, admin_token: str) -> None:
    """Allow only `Authorization: Bearer <admin token>`: 401 without credentials, 403 with wrong ones."""
    header = request.headers.get("authorization")
    if not header:
        raise UnauthorizedError("this needs an Authorization: Bearer <admin token> header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("the Authorization header must be 'Bearer <admin token>'")
    if not hmac.compare_digest(token.strip().encode(), admin_token.encode()):
        raise ForbiddenError("the token is not the admin token")


def query_params(request: Request) -> dict[str, str]:
    """The query string as a dict (each parameter once)."""
    return dict(request.query_params or {})
