"""What the deployed API must do for OpenTelemetry exporters, checked the same way through the
LocalStack deployment (chalice deploy) and the packaged stack: protobuf and JSON exports through
API Gateway (protobuf is a binary media type there), each record stored once, and a partial success
that reaches a client whether or not its Accept takes a binary answer."""

import json
import time
from collections.abc import Callable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs.export import LogRecordExportResult

from tests.integration.conftest import API
from tests.support.otel import App, exporter, post_over_http, protobuf_export
from tests.support.waiting import wait_for

RECORDS = 30
YEARS_5_NS = 5 * 365 * 86400 * 10**9  # far outside any timestamp window a stage allows


def check_otel_exports_are_stored_once(
    api: API, stored: Callable[[str], int], queue_empty: Callable[[], bool], timeout_s: float = 120
) -> None:
    """`stored(source)` counts a source's rows; `queue_empty()` says nothing waits or is in flight."""
    key = api.headers["Authorization"].removeprefix("Bearer ")
    # GIVEN two apps logging through the real SDK: the protobuf exporter with gzip, the JSON one without
    apps = [
        App(f"deployed.{encoding}", f"otel-{encoding}", exporter(encoding, gzip, api.base_url, key))
        for encoding, gzip in (("protobuf", True), ("json", False))
    ]
    try:
        # WHEN each logs RECORDS records and flushes
        for app in apps:
            for i in range(RECORDS):
                app.log.warning("deployed %d", i)
        results = [app.flush() for app in apps]
    finally:
        for app in apps:
            app.close()
    # THEN every export succeeded through API Gateway
    assert all(r and set(r) == {LogRecordExportResult.SUCCESS} for r in results), results
    # AND a protobuf export with one record too old is answered with its partial success: in protobuf
    # to a client that accepts it, in OTLP/JSON to one with no Accept (the JavaScript exporters)
    now = time.time_ns()
    payload = protobuf_export("otel-raw", "kept", at_ns=now) + protobuf_export(
        "otel-raw", "too old", at_ns=now - YEARS_5_NS
    )
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {key}"}
    status, content_type, body = post_over_http(api.base_url, payload, {**headers, "Accept": "application/x-protobuf"})
    partial = ExportLogsServiceResponse.FromString(body).partial_success
    assert (status, content_type, partial.rejected_log_records) == (200, "application/x-protobuf", 1), body
    status, content_type, body = post_over_http(api.base_url, payload, headers)
    assert (status, content_type) == (200, "application/json"), body
    assert json.loads(body)["partialSuccess"]["rejectedLogRecords"] == "1"
    # AND once the queue is empty, each record is stored exactly once (the raw export's twice-sent record too)
    sources = {"otel-protobuf": RECORDS, "otel-json": RECORDS, "otel-raw": 1}
    wait_for(lambda: all(stored(s) >= n for s, n in sources.items()) and queue_empty(), timeout_s)
    assert {s: stored(s) for s in sources} == sources
