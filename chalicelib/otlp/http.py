"""OTLP/HTTP on the wire: which encoding a request uses, and the answer in the same one.

`Content-Type: application/json` is OTLP/JSON and `application/x-protobuf` is protobuf; any other
type is a 415. The answer is in the request's encoding, with one exception that API Gateway forces:
a protobuf answer is binary, and API Gateway delivers a binary answer as bytes only to a request
whose first Accept media type is a binary one (to any other it passes the base64 text on, and Chalice
answers 400 to a binary answer without a binary Accept). A client that does not ask for protobuf
first (OpenTelemetry's JavaScript exporters send no Accept, the Python one `*/*`) gets the same
response in OTLP/JSON, with `Content-Type: application/json`: `{}` when every record was taken,
the partial success when some were refused.
"""

from collections.abc import Mapping
from typing import Any

from chalice.app import Request, Response

from chalicelib.errors import UnsupportedMediaTypeError
from chalicelib.otlp import protobuf
from chalicelib.otlp.service import ExportResult
from chalicelib.web import http

MEDIA_JSON = "application/json"
MEDIA_PROTOBUF = "application/x-protobuf"
BINARY_MEDIA_TYPES = (MEDIA_PROTOBUF,)  # the deployed API's binary media types (app.api.binary_types)


def read_export(request: Request, max_bytes: int, max_records: int) -> tuple[Any, bool]:
    """The ExportLogsServiceRequest in OTLP/JSON's shape, and whether it came as protobuf."""
    media = http.media_type(request)
    if media == MEDIA_PROTOBUF:
        return protobuf.decode_request(http.read_body(request, max_bytes), max_records), True
    if not http.is_json(media):
        raise UnsupportedMediaTypeError(f"Content-Type must be {MEDIA_JSON} or {MEDIA_PROTOBUF}, not {media!r}")
    return http.read_json_body(request, max_bytes), False


def answer(result: ExportResult, as_protobuf: bool, request: Request, headers: Mapping[str, str]) -> Response:
    """The ExportLogsServiceResponse: 200, in the request's encoding where the client can receive it."""
    if not as_protobuf:
        return Response(body=result.as_json(), status_code=200, headers={**headers, "Content-Type": MEDIA_JSON})
    if accepts_binary(request.headers.get("accept")):
        body = protobuf.encode_response(result)
        return Response(body=body, status_code=200, headers={**headers, "Content-Type": MEDIA_PROTOBUF})
    return Response(body=result.as_json(), status_code=200, headers={**headers, "Content-Type": MEDIA_JSON})


def accepts_binary(accept: str | None) -> bool:
    """Whether a binary answer reaches this client through API Gateway: the first media type of its
    Accept is the protobuf type. API Gateway looks at that one only, and `*/*` does not match it."""
    first = (accept or "").split(",")[0].split(";")[0].strip().lower()
    return first in BINARY_MEDIA_TYPES
