"""OTLP log records (OTLP/JSON, opentelemetry-proto's logs data model) mapped onto sluice's entries;
docs/api.md has the table.

- level: `severityNumber` 1-8 (TRACE, DEBUG) debug, 9-12 info, 13-16 warning, 17-20 error, 21-24
  critical; unset, `severityText` by the same names (`warn`, `fatal` too); otherwise info.
- source: the resource's `service.name`, else the scope's name.
- message: the body, a string as it is and any other value as its JSON; no body, `eventName`.
- timestamp: `timeUnixNano`, else `observedTimeUnixNano`, else the time received.
- attributes: the record's; the resource's as `resource.<key>` and the scope's as `scope.<key>`;
  `trace_id` and `span_id` (hex), `event_name`, `severity_text`.

Keys are read in lowerCamelCase or as the proto's snake_case, unknown fields are ignored, and a
64-bit integer may be a decimal string or a number (OTLP/JSON's rules).
"""

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from chalicelib.errors import ValidationError
from chalicelib.logs.ids import uuid7

RESOURCE_PREFIX = "resource."
SCOPE_PREFIX = "scope."
_LEVELS_BY_NUMBER = ((4, "debug"), (8, "debug"), (12, "info"), (16, "warning"), (20, "error"), (24, "critical"))
_LEVELS_BY_TEXT = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "warn": "warning",
    "warning": "warning",
    "error": "error",
    "fatal": "critical",
    "critical": "critical",
}


@dataclass(frozen=True)
class MappedRecord:
    """One record as a sluice entry (the JSON a client would post), and its own time, if it has one."""

    entry: dict[str, Any]
    timestamp_ns: int | None


def count_records(request: Any) -> int:
    """How many log records an ExportLogsServiceRequest (OTLP/JSON) holds, without mapping any;
    ValidationError when the request's own structure is wrong."""
    if not isinstance(request, dict):
        raise ValidationError("invalid OTLP request: the body must be an ExportLogsServiceRequest object")
    return sum(
        len(_items(scope_logs, "logRecords", "log_records"))
        for resource_logs in _items(request, "resourceLogs", "resource_logs")
        for scope_logs in _items(resource_logs, "scopeLogs", "scope_logs")
    )


def records(request: Any) -> list[MappedRecord]:
    """Every log record of an ExportLogsServiceRequest (OTLP/JSON), mapped; ValidationError when the
    request's own structure is wrong (a record's content is checked later, record by record)."""
    if not isinstance(request, dict):
        raise ValidationError("invalid OTLP request: the body must be an ExportLogsServiceRequest object")
    mapped: list[MappedRecord] = []
    for resource_logs in _items(request, "resourceLogs", "resource_logs"):
        resource = _attributes(_dict(_get(resource_logs, "resource")))
        for scope_logs in _items(resource_logs, "scopeLogs", "scope_logs"):
            scope_obj = _dict(_get(scope_logs, "scope"))
            scope = _attributes(scope_obj)
            source = str(resource.get("service.name") or _get(scope_obj, "name") or "")
            context = {
                **{RESOURCE_PREFIX + k: v for k, v in resource.items()},
                **{SCOPE_PREFIX + k: v for k, v in scope.items()},
            }
            for record in _items(scope_logs, "logRecords", "log_records"):
                mapped.append(_record(record, source, context))
    return mapped


def _record(record: dict[str, Any], source: str, context: dict[str, Any]) -> MappedRecord:
    """One record; `context` holds the resource's and scope's attributes, already prefixed."""
    get = record.get  # each field by its lowerCamelCase name, else its proto name
    severity_text = get("severityText", get("severity_text"))
    event_name = get("eventName", get("event_name"))
    attributes: dict[str, Any] = {**context, **_attributes(record)} if context else _attributes(record)
    trace_id, span_id = get("traceId", get("trace_id")), get("spanId", get("span_id"))
    if trace_id:
        attributes["trace_id"] = str(trace_id).lower()
    if span_id:
        attributes["span_id"] = str(span_id).lower()
    if event_name:
        attributes["event_name"] = event_name
    if severity_text:
        attributes["severity_text"] = severity_text
    body = _value(get("body"))
    message = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    if body is None or message == "":
        message = str(event_name or "")
    timestamp_ns = _nanos(get("timeUnixNano", get("time_unix_nano"))) or _nanos(
        get("observedTimeUnixNano", get("observed_time_unix_nano"))
    )
    entry: dict[str, Any] = {
        "level": _level(get("severityNumber", get("severity_number")), severity_text),
        "source": source,
        "message": message,
        "attributes": attributes,
    }
    if timestamp_ns:  # below 2**64 ns: at most the year 2554
        entry["timestamp"] = datetime.fromtimestamp(timestamp_ns // 10**9, UTC).replace(
            microsecond=timestamp_ns % 10**9 // 1000
        )
    return MappedRecord(entry, timestamp_ns or None)


def record_id(mapped: MappedRecord) -> UUID | None:
    """A time-ordered id made from the record's own content, so the same record sent again (an
    exporter's retry) is stored once; None for a record without a time of its own."""
    if mapped.timestamp_ns is None:
        return None
    entry = mapped.entry
    # The same record gives the same text: its attributes are listed in the order the record has them.
    content = f"{mapped.timestamp_ns}|{entry['source']}|{entry['level']}|{entry['message']}|{entry['attributes']!r}"
    digest = hashlib.blake2b(content.encode(), digest_size=10).digest()
    try:
        return uuid7(mapped.timestamp_ns // 1_000_000, digest)
    except ValueError:  # a time beyond UUIDv7's 48 bits of milliseconds
        return None


def _level(number: Any, text: Any) -> str:
    try:
        severity = int(number or 0)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e400 in JSON parses as infinity
        severity = 0
    for upper, level in _LEVELS_BY_NUMBER:
        if 1 <= severity <= upper:
            return level
    return _LEVELS_BY_TEXT.get(str(text or "").strip().lower(), "info")


def _nanos(value: Any) -> int:
    """A uint64 of nanoseconds, as OTLP/JSON writes it (a decimal string or a number); 0 if unset or not one."""
    try:
        nanos = int(value) if isinstance(value, int | str) and not isinstance(value, bool) else 0
    except ValueError:
        return 0
    return nanos if 0 < nanos < 1 << 64 else 0


def _value(any_value: Any) -> Any:
    """An AnyValue as a plain JSON value (its one field, by either spelling)."""
    if not isinstance(any_value, dict):
        return None
    for key, raw in any_value.items():
        convert = _VALUE_KINDS.get(key)
        if convert is not None:
            return convert(raw)
    return None


def _int(raw: Any) -> Any:
    try:
        return int(raw)
    except (TypeError, ValueError, OverflowError):
        return _double(raw) if isinstance(raw, float) else str(raw)


def _double(raw: Any) -> Any:
    """A double as a number (1 and 1.0 alike), and NaN and the infinities as OTLP/JSON's strings."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return str(raw)
    try:
        number = float(raw)
    except OverflowError:  # an integer beyond a double's range
        number = math.inf if raw > 0 else -math.inf
    if math.isfinite(number):
        return number
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")


def _array(raw: Any) -> list[Any]:
    return [_value(v) for v in _list(raw, "values")]


def _kvlist(raw: Any) -> dict[str, Any]:
    return _key_values(_list(raw, "values"))


_VALUE_KINDS: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(("stringValue", "string_value"), str),
    **dict.fromkeys(("boolValue", "bool_value"), bool),
    **dict.fromkeys(("intValue", "int_value"), _int),
    **dict.fromkeys(("doubleValue", "double_value"), _double),
    **dict.fromkeys(("arrayValue", "array_value"), _array),
    **dict.fromkeys(("kvlistValue", "kvlist_value"), _kvlist),
    **dict.fromkeys(("bytesValue", "bytes_value"), str),  # base64, as OTLP/JSON writes bytes
}


def _attributes(holder: Any) -> dict[str, Any]:
    return _key_values(_list(holder, "attributes")) if holder else {}


def _key_values(pairs: list[Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        if not isinstance(pair, dict):
            raise ValidationError("invalid OTLP request: an attribute must be an object")
        values[str(pair.get("key", ""))] = _value(pair.get("value"))
    return values


def _get(holder: Any, *names: str) -> Any:
    if not isinstance(holder, dict):
        return None
    for name in names:
        if name in holder:
            return holder[name]
    return None


def _list(holder: Any, *names: str) -> list[Any]:
    value = _get(holder, *names)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"invalid OTLP request: {names[0]} must be a list")
    return value


def _items(holder: Any, *names: str) -> list[dict[str, Any]]:
    """A list of objects (resource logs, scope logs, log records)."""
    values = _list(holder, *names)
    if not all(isinstance(value, dict) for value in values):
        raise ValidationError(f"invalid OTLP request: every item of {names[0]} must be an object")
    return values


def _dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("invalid OTLP request: an object was expected")
    return value
