"""OTLP's protobuf encoding (chalicelib/otlp/protobuf.py and http.py): an export built with
opentelemetry-proto's own classes maps onto exactly the entries its OTLP/JSON form gives, and the
answer is written as the encoding and the client's Accept allow."""

import base64
from typing import Any

import pytest
from chalice.app import Request
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from chalicelib.errors import PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from chalicelib.otlp import http as otlp_http
from chalicelib.otlp.mapping import records
from chalicelib.otlp.protobuf import decode_request, encode_response
from chalicelib.otlp.service import ExportResult

NS = 1_764_000_000_123_456_789
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def protobuf_export() -> ExportLogsServiceRequest:
    record = LogRecord(
        time_unix_nano=NS,
        severity_number=SeverityNumber.SEVERITY_NUMBER_WARN,
        severity_text="WARN",
        body=AnyValue(kvlist_value=KeyValueList(values=[kv("disk", AnyValue(double_value=0.91))])),
        attributes=[
            kv("http.status", AnyValue(int_value=502)),
            kv(
                "tags", AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(bool_value=True)]))
            ),
            kv("raw", AnyValue(bytes_value=b"\x00\xff")),
            kv("ratio", AnyValue(double_value=float("nan"))),
            kv("whole", AnyValue(double_value=1.0)),
            kv("limit", AnyValue(double_value=float("-inf"))),
        ],
        trace_id=TRACE,
        span_id=SPAN,
        event_name="disk.full",
    )
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[kv("service.name", AnyValue(string_value="web-1"))]),
                scope_logs=[ScopeLogs(log_records=[record, LogRecord(observed_time_unix_nano=NS)])],
            )
        ]
    )


def json_export() -> dict[str, Any]:
    """The same export as OTLP/JSON writes it (int64 as strings, ids in hex, bytes in base64)."""

    def v(**value):
        return value

    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": v(stringValue="web-1")}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(NS),
                                "severityNumber": 13,
                                "severityText": "WARN",
                                "body": v(kvlistValue={"values": [{"key": "disk", "value": v(doubleValue=0.91)}]}),
                                "attributes": [
                                    {"key": "http.status", "value": v(intValue="502")},
                                    {
                                        "key": "tags",
                                        "value": v(arrayValue={"values": [v(stringValue="a"), v(boolValue=True)]}),
                                    },
                                    {"key": "raw", "value": v(bytesValue=base64.b64encode(b"\x00\xff").decode())},
                                    {"key": "ratio", "value": v(doubleValue="NaN")},
                                    {"key": "whole", "value": v(doubleValue=1)},  # 1.0 as JavaScript writes it
                                    {"key": "limit", "value": v(doubleValue="-Infinity")},
                                ],
                                "traceId": TRACE.hex(),
                                "spanId": SPAN.hex(),
                                "eventName": "disk.full",
                            },
                            {"observedTimeUnixNano": str(NS)},
                        ]
                    }
                ],
            }
        ]
    }


def test_a_protobuf_export_maps_onto_the_entries_of_its_json_form():
    # GIVEN one export built with opentelemetry-proto's classes, and the same written by hand in OTLP/JSON
    raw = protobuf_export().SerializeToString()
    # WHEN the protobuf bytes are decoded and both are mapped
    from_protobuf = records(decode_request(raw, 100))
    from_json = records(json_export())
    # THEN the entries are the same, with the ids in hex (not base64) and bytes in base64
    assert [m.entry for m in from_protobuf] == [m.entry for m in from_json]
    first = from_protobuf[0].entry
    assert (first["level"], first["source"], first["message"]) == ("warning", "web-1", '{"disk":0.91}')
    assert (first["attributes"]["trace_id"], first["attributes"]["raw"]) == (TRACE.hex(), "AP8=")
    assert first["attributes"]["tags"] == ["a", True]
    assert (first["attributes"]["ratio"], first["attributes"]["limit"]) == ("NaN", "-Infinity")  # JSON has no NaN
    assert "trace_id" not in from_protobuf[1].entry["attributes"]  # unset ids stay unset


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xff\xff", b"\x0a\x05\x0a", bytes(10) + b"\x0a", b"{}"],
    ids=["bad tag", "cut short", "zero tag", "json sent as protobuf"],
)
def test_bytes_that_are_not_an_export_are_a_validation_error(raw):
    with pytest.raises(ValidationError, match="not an ExportLogsServiceRequest"):
        decode_request(raw, 100)


def test_the_answer_is_empty_when_all_were_taken_and_carries_the_partial_success_otherwise():
    assert encode_response(ExportResult()) == b""
    answer = ExportLogsServiceResponse.FromString(encode_response(ExportResult(3, "3 refused: x")))
    assert (answer.partial_success.rejected_log_records, answer.partial_success.error_message) == (3, "3 refused: x")


def request(content_type: str, body: bytes = b"", accept: str | None = None) -> Request:
    headers = {"content-type": content_type, **({"accept": accept} if accept else {})}
    event = {
        "multiValueQueryStringParameters": None,
        "headers": headers,
        "pathParameters": None,
        "requestContext": {"httpMethod": "POST", "resourcePath": "/v1/logs"},
        "stageVariables": None,
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    return Request(event)


@pytest.mark.parametrize(
    ("accept", "refused", "expected"),
    [
        ("application/x-protobuf", 0, ("application/x-protobuf", b"")),
        ("application/x-protobuf; q=1, */*", 2, ("application/x-protobuf", "protobuf")),
        ("*/*", 0, ("application/json", {})),
        ("application/json, application/x-protobuf", 2, ("application/json", "json")),
        (None, 0, ("application/json", {})),
        (None, 2, ("application/json", {"partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "why"}})),
        (
            "application/json",
            2,
            ("application/json", {"partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "why"}}),
        ),
    ],
)
def test_a_protobuf_answer_is_binary_only_for_a_client_whose_accept_takes_it(accept, refused, expected):
    # GIVEN a protobuf export's result, and the client's Accept header
    result = ExportResult(refused, "why" if refused else "")
    # WHEN the answer is made
    answer = otlp_http.answer(result, True, request("application/x-protobuf", accept=accept), {"RateLimit": "r"})
    # THEN it is binary only where the client can receive binary; the meaning is the same either way
    content_type, body = expected
    assert (answer.status_code, answer.headers.get("Content-Type"), answer.headers["RateLimit"]) == (
        200,
        content_type,
        "r",
    )
    if body == "protobuf":
        assert ExportLogsServiceResponse.FromString(answer.body).partial_success.rejected_log_records == refused
    elif body == "json":
        assert answer.body["partialSuccess"]["rejectedLogRecords"] == str(refused)
    else:
        assert answer.body == body


def test_an_export_is_read_by_its_content_type():
    raw = protobuf_export().SerializeToString()
    body, as_protobuf = otlp_http.read_export(request("application/x-protobuf", raw), 10_000, 100)
    assert as_protobuf and body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["spanId"] == SPAN.hex()
    body, as_protobuf = otlp_http.read_export(
        request("application/json; charset=utf-8", b'{"resourceLogs": []}'), 100, 100
    )
    assert (body, as_protobuf) == ({"resourceLogs": []}, False)
    with pytest.raises(UnsupportedMediaTypeError, match="application/x-protobuf"):
        otlp_http.read_export(request("text/plain", b"x"), 100, 100)


def test_an_export_past_the_most_records_is_refused_before_any_record_is_read():
    # GIVEN 5,000 empty records: a small body (two bytes each) that would make many objects
    raw = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[LogRecord() for _ in range(5000)])])]
    ).SerializeToString()
    # WHEN it is decoded with a cap of 2,048 THEN it is a 413 naming the count
    with pytest.raises(PayloadTooLargeError, match="5000 log records"):
        decode_request(raw, 2048)
