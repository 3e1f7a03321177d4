"""OTLP/JSON log records mapped onto sluice entries (chalicelib/otlp/mapping.py), by the rules of
opentelemetry-proto's JSON encoding and the logs data model."""

from datetime import UTC, datetime

import pytest

from chalicelib.errors import ValidationError
from chalicelib.otlp.mapping import record_id, records
from chalicelib.validation import parse_json

NS = 1_764_000_000_123_456_789  # 2025-11-24T16:00:00.123456789Z


def export(*log_records, resource=None, scope=None):
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": resource or []},
                "scopeLogs": [{"scope": scope or {}, "logRecords": list(log_records)}],
            }
        ]
    }


def kv(key, value):
    return {"key": key, "value": value}


def test_a_record_becomes_an_entry_with_every_field_mapped():
    # GIVEN a record as the OpenTelemetry SDKs write it (int64 as a string, ids in hex)
    body = export(
        {
            "timeUnixNano": str(NS),
            "severityNumber": 17,
            "severityText": "ERROR",
            "body": {"stringValue": "payment failed"},
            "attributes": [kv("http.status", {"intValue": "502"}), kv("retry", {"boolValue": True})],
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "eventName": "payment.failure",
        },
        resource=[kv("service.name", {"stringValue": "checkout"}), kv("host.name", {"stringValue": "h1"})],
        scope={"name": "checkout.payments", "version": "1.2", "attributes": [kv("lib", {"stringValue": "x"})]},
    )
    # WHEN it is mapped
    [mapped] = records(body)
    # THEN the entry carries the level, source, message, timestamp and attributes the mapping names
    assert mapped.entry == {
        "level": "error",
        "source": "checkout",
        "message": "payment failed",
        "timestamp": datetime(2025, 11, 24, 16, 0, 0, 123456, tzinfo=UTC),
        "attributes": {
            "resource.service.name": "checkout",
            "resource.host.name": "h1",
            "scope.lib": "x",
            "http.status": 502,
            "retry": True,
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "eee19b7ec3c1b174",
            "event_name": "payment.failure",
            "severity_text": "ERROR",
        },
    }


@pytest.mark.parametrize(
    ("number", "text", "level"),
    [
        (1, None, "debug"),
        (8, None, "debug"),
        (9, None, "info"),
        (13, None, "warning"),
        (17, None, "error"),
        (24, None, "critical"),
        (None, "WARN", "warning"),
        (0, "fatal", "critical"),
        (None, "notice", "info"),
        (None, None, "info"),
    ],
)
def test_the_level_comes_from_the_severity_number_then_its_text(number, text, level):
    record = {"body": {"stringValue": "m"}, "severityNumber": number, "severityText": text}
    assert records(export(record))[0].entry["level"] == level


def test_a_body_that_is_not_a_string_is_its_json_and_an_empty_one_the_event_name():
    kvlist = {"kvlistValue": {"values": [kv("a", {"doubleValue": 1.5}), kv("b", {"arrayValue": {"values": []}})]}}
    mapped = records(export({"body": kvlist}, {"eventName": "login"}, {"body": {"intValue": 7}}))
    assert [m.entry["message"] for m in mapped] == ['{"a":1.5,"b":[]}', "login", "7"]


def test_the_source_is_the_services_name_else_the_scopes_and_snake_case_keys_are_read_too():
    by_scope = export({"body": {"stringValue": "m"}}, scope={"name": "worker"})
    snake = {"resource_logs": [{"scope_logs": [{"scope": {"name": "s"}, "log_records": [{"time_unix_nano": NS}]}]}]}
    assert records(by_scope)[0].entry["source"] == "worker"
    assert records(snake)[0].timestamp_ns == NS


def test_the_time_falls_back_to_the_observed_time_then_to_none():
    observed = records(export({"observedTimeUnixNano": NS, "body": {"stringValue": "m"}}))[0]
    untimed = records(export({"body": {"stringValue": "m"}}))[0]
    assert observed.timestamp_ns == NS and "timestamp" not in untimed.entry and untimed.timestamp_ns is None


def test_the_same_record_gets_the_same_time_ordered_id_and_another_record_another():
    # GIVEN a record, the same again (an exporter's retry), and one that differs in its message
    first, again, other = (records(export({"timeUnixNano": NS, "body": {"stringValue": m}}))[0] for m in "aab")
    # THEN the first two share an id, UUIDv7 with the record's own millisecond, and the third differs
    assert record_id(first) == record_id(again) != record_id(other)
    made = record_id(first)
    assert made is not None and made.version == 7 and made.int >> 80 == NS // 1_000_000
    assert record_id(records(export({"body": {"stringValue": "a"}}))[0]) is None  # no time of its own


@pytest.mark.parametrize(
    "body",
    [
        [None],
        None,
        {"resourceLogs": {}},
        {"resourceLogs": [1]},
        {"resourceLogs": [{"scopeLogs": [{"logRecords": "x"}]}]},
        {"resourceLogs": [{"scopeLogs": [{"logRecords": [None]}]}]},
    ],
)
def test_a_request_whose_structure_is_wrong_is_a_400(body):
    with pytest.raises(ValidationError):
        records(body)


def test_unknown_fields_are_ignored():
    body = export({"body": {"stringValue": "m"}, "flags": 1, "somethingNew": {"x": 1}})
    body["resourceLogs"][0]["schemaUrl"] = "https://example.invalid"
    assert records(body)[0].entry["message"] == "m"


def test_numbers_past_a_doubles_range_map_without_failing():
    # GIVEN a record whose severity and int and double values are 1e400 (which JSON parsing makes infinity)
    raw = (
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": 1e400, "body": {"intValue": 1e400},'
        b' "attributes": [{"key": "d", "value": {"doubleValue": -1e400}},'
        b' {"key": "i", "value": {"intValue": "9e99"}}]}]}]}]}'
    )
    # WHEN it is mapped THEN the level falls back, and the values are OTLP/JSON's strings for infinity (or the text)
    [mapped] = records(parse_json(raw))
    assert mapped.entry["level"] == "info"
    assert mapped.entry["message"] == "Infinity"
    assert (mapped.entry["attributes"]["d"], mapped.entry["attributes"]["i"]) == ("-Infinity", "9e99")
