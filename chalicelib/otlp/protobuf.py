"""OTLP/HTTP's protobuf encoding (opentelemetry-proto's compiled classes).

A request is read into OTLP/JSON's shape (lowerCamelCase keys, ids as hex, bytes as base64), so
that chalicelib/otlp/mapping.py serves both encodings with one set of rules; the answer is
written as an ExportLogsServiceResponse.
"""

import base64
from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from chalicelib.errors import PayloadTooLargeError, ValidationError
from chalicelib.otlp.service import ExportResult


def decode_request(raw: bytes, max_records: int) -> dict[str, Any]:
    """An ExportLogsServiceRequest in protobuf, as OTLP/JSON would write it; 400 if it does not
    decode, 413 past `max_records` records (counted before any is read)."""
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(raw)
    except (DecodeError, RecursionError):
        raise ValidationError("invalid OTLP request: the body is not an ExportLogsServiceRequest in protobuf") from None
    count = sum(len(scope.log_records) for resource in request.resource_logs for scope in resource.scope_logs)
    if count > max_records:
        raise PayloadTooLargeError(f"{count} log records in one export; at most {max_records} are accepted")
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": _key_values(resource_logs.resource.attributes)},
                "scopeLogs": [
                    {
                        "scope": {
                            "name": scope_logs.scope.name,
                            "attributes": _key_values(scope_logs.scope.attributes),
                        },
                        "logRecords": [_record(record) for record in scope_logs.log_records],
                    }
                    for scope_logs in resource_logs.scope_logs
                ],
            }
            for resource_logs in request.resource_logs
        ]
    }


def encode_response(result: ExportResult) -> bytes:
    """The ExportLogsServiceResponse of an export: no bytes at all when every record was taken."""
    response = ExportLogsServiceResponse()
    if result.rejected:
        response.partial_success.rejected_log_records = result.rejected
        response.partial_success.error_message = result.error_message
    return bytes(response.SerializeToString())


def _record(record: LogRecord) -> dict[str, Any]:
    """A record's set fields (an unset one reads as absent in OTLP/JSON too)."""
    out: dict[str, Any] = {"timeUnixNano": record.time_unix_nano, "severityNumber": record.severity_number}
    if record.observed_time_unix_nano:
        out["observedTimeUnixNano"] = record.observed_time_unix_nano
    if record.severity_text:
        out["severityText"] = record.severity_text
    if record.HasField("body"):
        out["body"] = _any_value(record.body)
    if record.attributes:
        out["attributes"] = _key_values(record.attributes)
    if record.trace_id:
        out["traceId"] = record.trace_id.hex()
    if record.span_id:
        out["spanId"] = record.span_id.hex()
    if record.event_name:
        out["eventName"] = record.event_name
    return out


def _key_values(pairs: Iterable[KeyValue]) -> list[dict[str, Any]]:
    return [{"key": pair.key, "value": _any_value(pair.value)} for pair in pairs]


def _any_value(value: AnyValue) -> dict[str, Any]:
    kind = value.WhichOneof("value")
    convert = _KINDS.get(kind) if kind else None
    return convert(value) if convert else {}  # unset, or a kind this version of sluice does not know: no value


_KINDS: dict[str, Callable[[AnyValue], dict[str, Any]]] = {
    "string_value": lambda v: {"stringValue": v.string_value},
    "bool_value": lambda v: {"boolValue": v.bool_value},
    "int_value": lambda v: {"intValue": v.int_value},
    "double_value": lambda v: {"doubleValue": v.double_value},  # NaN and infinities: mapping.py
    "array_value": lambda v: {"arrayValue": {"values": [_any_value(x) for x in v.array_value.values]}},
    "kvlist_value": lambda v: {"kvlistValue": {"values": _key_values(v.kvlist_value.values)}},
    "bytes_value": lambda v: {"bytesValue": base64.b64encode(v.bytes_value).decode()},
}
