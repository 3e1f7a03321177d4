"""POST /v1/logs: an OpenTelemetry exporter's OTLP/JSON export, records taken or refused one by one,
through the app against the real Redis, SQS and MariaDB."""

import gzip
import json
import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from tests.functional.conftest import JSON, SETTINGS, body, queue_depth
from tests.support.otel import post_over_http, protobuf_export


def now_ns() -> int:
    return time.time_ns()


def record(message: str, *, at_ns: int | None = None, severity: int = 9, **extra) -> dict[str, Any]:
    out = {"body": {"stringValue": message}, "severityNumber": severity, **extra}
    if at_ns is not None:
        out["timeUnixNano"] = str(at_ns)
    return out


def export(service: str, *log_records) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeLogs": [{"scope": {"name": "app"}, "logRecords": list(log_records)}],
            }
        ]
    }


def merged(*exports) -> dict[str, Any]:
    return {"resourceLogs": [r for e in exports for r in e["resourceLogs"]]}


def key_for(client, admin_headers, sources: list[str]) -> dict[str, str]:
    made = client.http.post("/keys", headers=admin_headers, body=json.dumps({"name": "otlp", "sources": sources}))
    assert made.status_code == 201, body(made)
    return {**JSON, "Authorization": f"Bearer {body(made)['key']}"}


def post(client, headers, payload) -> Any:
    return client.http.post("/v1/logs", headers=headers, body=json.dumps(payload))


def test_records_are_taken_or_refused_one_by_one(client, admin_headers, consume, admin_db, sqs, queue_urls):
    # GIVEN a key for the sources web-*, and an export with a good record, one of another service, one
    # older than the window allows, and one with no message at all
    headers = key_for(client, admin_headers, ["web-*"])
    now = now_ns()
    payload = merged(
        export(
            "web-1",
            record("checkout done", at_ns=now, severity=17, attributes=[{"key": "order", "value": {"intValue": 42}}]),
            record("too old", at_ns=now - (SETTINGS.log_timestamp_max_age_s + 3600) * 10**9),
            {"severityNumber": 9},
        ),
        export("billing", record("not this key's", at_ns=now)),
    )
    # WHEN it is exported
    answer = post(client, headers, payload)
    # THEN it is a 200 whose partial success counts the three refused, and only the good one is queued
    assert answer.status_code == 200, body(answer)
    partial = body(answer)["partialSuccess"]
    assert partial["rejectedLogRecords"] == "3"
    assert "billing" in partial["errorMessage"] and "timestamp" in partial["errorMessage"]
    assert queue_depth(sqs, queue_urls) == 1
    consume()
    with admin_db.cursor() as cur:
        cur.execute("SELECT source, level, message, JSON_VALUE(attributes, '$.order') FROM logs")
        assert cur.fetchall() == (("web-1", "error", "checkout done", "42"),)


def test_an_exporters_retry_of_the_same_export_is_stored_once(client, consume, admin_db, sqs, queue_urls):
    # GIVEN an export of three records with their own times, sent, then sent again (a retry after a timeout)
    now = now_ns()
    payload = export("web-1", *(record(f"r{i}", at_ns=now + i) for i in range(3)))
    first, again = post(client, JSON, payload), post(client, JSON, payload)
    assert (first.status_code, body(first)) == (200, {})
    assert (again.status_code, body(again)) == (200, {})
    # WHEN the consumer has drained the queue
    while consume() is not None:
        pass
    assert queue_depth(sqs, queue_urls) == 0
    # THEN each record is stored once
    with admin_db.cursor() as cur:
        cur.execute("SELECT message, COUNT(*) FROM logs GROUP BY message ORDER BY message")
        assert cur.fetchall() == (("r0", 1), ("r1", 1), ("r2", 1))


def test_a_gzip_export_is_taken_and_what_cannot_be_taken_is_refused_whole(client, sqs, queue_urls):
    payload = export("web-1", record("zipped", at_ns=now_ns()))
    zipped = client.http.post(
        "/v1/logs", headers={**JSON, "Content-Encoding": "gzip"}, body=gzip.compress(json.dumps(payload).encode())
    )
    assert (zipped.status_code, body(zipped)) == (200, {})
    refused = [
        client.http.post("/v1/logs", headers={**JSON, "Authorization": "Bearer slk_" + "x" * 43}, body="{}"),
        client.http.post("/v1/logs", headers={**JSON, "Content-Type": "text/plain"}, body="m"),
        post(client, JSON, {"resourceLogs": "not a list"}),
        client.http.post("/v1/logs", headers={**JSON, "Content-Type": "application/x-protobuf"}, body=b"\x0a\x05"),
        post(client, JSON, export("web-1", *(record("m") for _ in range(2049)))),
    ]
    assert [r.status_code for r in refused] == [401, 415, 400, 400, 413]
    assert queue_depth(sqs, queue_urls) == 1


def test_a_protobuf_partial_success_reaches_clients_with_and_without_accept(
    server, client, admin_headers, consume, admin_db, sqs, queue_urls
):
    # GIVEN a key for web-*, and a protobuf export of two web-1 records and one billing record
    key = key_for(client, admin_headers, ["web-*"])["Authorization"]
    now = now_ns()
    payload = merged_protobuf(protobuf_export("web-1", "a", "b", at_ns=now), protobuf_export("billing", "c", at_ns=now))
    protobuf = {"Content-Type": "application/x-protobuf", "Authorization": key}
    # WHEN it is posted over HTTP, as make up serves it, by a client that asks for protobuf and by one
    # that sends no Accept (the JavaScript exporters)
    with_accept = post_over_http(server, payload, {**protobuf, "Accept": "application/x-protobuf"})
    without_accept = post_over_http(server, gzip.compress(payload), {**protobuf, "Content-Encoding": "gzip"})
    # THEN the first gets the partial success in protobuf, the second the same in OTLP/JSON (a binary
    # answer cannot reach it through API Gateway)
    status, content_type, answer = with_accept
    partial = ExportLogsServiceResponse.FromString(answer).partial_success
    assert (status, content_type, partial.rejected_log_records) == (200, "application/x-protobuf", 1)
    assert "billing" in partial.error_message
    status, content_type, answer = without_accept
    assert (status, content_type) == (200, "application/json")
    assert json.loads(answer)["partialSuccess"]["rejectedLogRecords"] == "1"
    # AND once the queue is empty the web-1 records are stored, each once (both posts made the same ids)
    while consume() is not None:
        pass
    assert queue_depth(sqs, queue_urls) == 0
    with admin_db.cursor() as cur:
        cur.execute("SELECT source, message, COUNT(*) FROM logs GROUP BY source, message ORDER BY message")
        assert cur.fetchall() == (("web-1", "a", 1), ("web-1", "b", 1))


def test_a_protobuf_export_taken_whole_is_answered_with_an_empty_response(server):
    # GIVEN an export whose every record this key may write
    payload = protobuf_export("web-1", "a", at_ns=now_ns())
    headers = {"Content-Type": "application/x-protobuf", "Authorization": JSON["Authorization"]}
    accepts = {**headers, "Accept": "application/x-protobuf"}
    # WHEN a client that asks for protobuf posts it THEN the answer is an empty ExportLogsServiceResponse
    assert post_over_http(server, payload, accepts) == (200, "application/x-protobuf", b"")
    # AND a client with no Accept, or */*, gets the same empty response in OTLP/JSON
    for accept in ({}, {"Accept": "*/*"}):
        assert post_over_http(server, payload, {**headers, **accept}) == (200, "application/json", b"{}")


def merged_protobuf(*payloads: bytes) -> bytes:
    """Serialized messages concatenated merge, as protobuf's wire format says: their resource logs add up."""
    return b"".join(payloads)
