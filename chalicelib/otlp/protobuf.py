"""OTLP/HTTP's protobuf encoding (opentelemetry-proto's compiled classes).

A request is read into OTLP/JSON's shape (lowerCamelCase keys, ids as hex, bytes as base64), so
that chalicelib/otlp/mapping.py serves both encodings with one set of rules; the answer is
written as an ExportLogsServiceResponse.
"""

import base64
import math
from collections.abc import Iterable
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from chalicelib.errors import ValidationError
from chalicelib.otlp.service import ExportResult


def decode_request(raw: bytes) -> dict[str, Any]:
    """An ExportLogsServiceRequest in protobuf, as OTLP/JSON would write it; 400 if it does not decode."""
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(raw)
    except (DecodeError, RecursionError):
        raise ValidationError("invalid OTLP request: the body is not an ExportLogsServiceRequest in protobuf") from None
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
    return {
        "timeUnixNano": record.time_unix_nano,
        "observedTimeUnixNano": record.observed_time_unix_nano,
        "severityNumber": record.severity_number,
        "severityText": record.severity_text,
        "body": _any_value(record.body) if record.HasField("body") else None,
        "attributes": _key_values(record.attributes),
        "traceId": record.trace_id.hex(),
        "spanId": record.span_id.hex(),
        "eventName": record.event_name,
    }


def _double(number: float) -> float | str:
    """A double as OTLP/JSON writes it: NaN and the infinities as the strings "NaN", "Infinity", "-Infinity"."""
    if math.isfinite(number):
        return number
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")


def _key_values(pairs: Iterable[KeyValue]) -> list[dict[str, Any]]:
    return [{"key": pair.key, "value": _any_value(pair.value)} for pair in pairs]


def _any_value(value: AnyValue) -> dict[str, Any]:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return {"stringValue": value.string_value}
    if kind == "bool_value":
        return {"boolValue": value.bool_value}
    if kind == "int_value":
        return {"intValue": value.int_value}
    if kind == "double_value":
        return {"doubleValue": _double(value.double_value)}
    if kind == "array_value":
        return {"arrayValue": {"values": [_any_value(v) for v in value.array_value.values]}}
    if kind == "kvlist_value":
        return {"kvlistValue": {"values": _key_values(value.kvlist_value.values)}}
    if kind == "bytes_value":
        return {"bytesValue": base64.b64encode(value.bytes_value).decode()}
    return {}  # unset, or a kind this version of sluice does not know: no value
