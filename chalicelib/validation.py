"""Shared shapes and their validation: strict JSON, pydantic models with field-named errors,
RFC 3339 times, attribute maps and opaque cursors. Each concept's own models live with it
(items/model.py, logs/model.py, keys/model.py)."""

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import pydantic
import pydantic_core
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from chalicelib.errors import InvalidJSONError, ValidationError

ATTRIBUTES_MAX_BYTES = 8 * 1024

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
# MySQL DATETIME's documented range.
_EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (offset required) into an aware UTC datetime."""
    if not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-01-31T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        raise ValueError("is not a valid date and time") from None
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # an offset that carries it past year 1 or 9999
        raise ValueError("is outside the range of dates") from None
    if parsed < _EARLIEST:
        raise ValueError("must not be before the year 1000")
    return parsed


def format_rfc3339(value: datetime) -> str:
    """Format an aware or UTC-naive datetime as RFC 3339 in UTC with microseconds."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def _attributes_fit(value: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = compact_json(value)
    except ValueError:  # a number beyond a double's range (1e400 parses as infinity)
        raise ValueError("numbers must be finite: at most about 1.8e308 in size") from None
    if len(encoded.encode()) > ATTRIBUTES_MAX_BYTES:
        raise ValueError(f"must be at most {ATTRIBUTES_MAX_BYTES} bytes as JSON")
    return value


def compact_json(value: Any) -> str:
    """JSON without spaces; non-ASCII kept as is. Raises ValueError for an infinite or NaN number
    (which JSON cannot carry)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _timestamp_input(value: Any) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    return parse_rfc3339(value)


Timestamp = Annotated[datetime, BeforeValidator(_timestamp_input)]
Attributes = Annotated[dict[str, Any], AfterValidator(_attributes_fit)]


class Strict(BaseModel):
    """A model that refuses unknown fields and cannot be changed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_json(raw: bytes | str) -> Any:
    """Parse JSON strictly (valid UTF-8, no lone surrogates, no NaN or Infinity); raise InvalidJSONError."""
    try:
        return pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        raise InvalidJSONError(f"body is not valid JSON: {exc}") from None


def field_errors(exc: pydantic.ValidationError, **extra: Any) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        errors.append({**extra, "field": field, "message": message})
    return errors


def validate[M: BaseModel](model: type[M], data: Any, what: str = "request", max_details: int = 20) -> M:
    """Validate data against a model; raise ValidationError naming each bad field (the first
    `max_details` of them, with a count of the rest)."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        details = field_errors(exc)
        fields = sorted({d["field"] for d in details})
        named = ", ".join(fields[:max_details]) + (
            f" and {len(fields) - max_details} more" if len(fields) > max_details else ""
        )
        raise ValidationError(f"invalid {what}: {named}", details=capped(details, max_details)) from None


def capped(details: list[dict[str, Any]], max_details: int) -> list[dict[str, Any]]:
    """The first `max_details` problems, and one more line counting the rest."""
    if len(details) <= max_details:
        return details
    return [*details[:max_details], {"field": "...", "message": f"{len(details) - max_details} more problems"}]


def encode_cursor(position: dict[str, Any]) -> str:
    """An opaque, URL-safe cursor for a keyset position."""
    return base64.urlsafe_b64encode(compact_json(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """Decode a cursor made by encode_cursor; raise ValidationError if it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        position = None
    if (
        not isinstance(position, dict)
        or set(position) != set(keys)
        or not all(isinstance(position[k], str) for k in keys)
    ):
        raise invalid_cursor()
    return position


def invalid_cursor() -> ValidationError:
    """The error for a cursor this API did not hand out."""
    return ValidationError(
        "invalid request: cursor", details=[{"field": "cursor", "message": "is not a cursor this API returned"}]
    )
