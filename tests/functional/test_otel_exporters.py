"""The real OpenTelemetry Python SDK (pinned in requirements-dev.txt) logging to sluice as make up
serves it: its OTLP/HTTP protobuf exporter and its JSON exporter, each with gzip off and on. Every
record is stored once with the mapped fields; records of a source the key may not write are
refused without failing the export."""

import json
import logging
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.exporter.otlp.common.http import Compression as JsonCompression
from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter as JsonLogExporter
from opentelemetry.exporter.otlp.proto.http import Compression as ProtoCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as ProtoLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.functional.conftest import TEST_KEY, queue_depth
from tests.functional.test_otlp import key_for

pytestmark = pytest.mark.filterwarnings("ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated")
FLUSH_MS = 60_000  # well past an export's time on a loaded machine (the exporter's own timeout is 10 s)


class Recorded(LogRecordExporter):
    """The real exporter, with the result of each export kept for the test to check."""

    def __init__(self, exporter: LogRecordExporter) -> None:
        self.exporter = exporter
        self.results: list[LogRecordExportResult] = []

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        result = self.exporter.export(batch)
        self.results.append(result)
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.exporter.shutdown()


def exporter(encoding: str, gzip: bool, url: str, key: str) -> LogRecordExporter:
    headers = {"Authorization": f"Bearer {key}"}
    if encoding == "protobuf":
        compression = ProtoCompression.Gzip if gzip else ProtoCompression.NoCompression
        return ProtoLogExporter(endpoint=url + "/v1/logs", headers=headers, compression=compression, timeout=30)
    json_compression = JsonCompression.GZIP if gzip else JsonCompression.NONE
    return JsonLogExporter(endpoint=url + "/v1/logs", headers=headers, compression=json_compression, timeout=30)


class App:
    """An app that logs through OpenTelemetry's LoggingHandler and BatchLogRecordProcessor, as its docs show."""

    def __init__(self, name: str, service: str, export: LogRecordExporter) -> None:
        self.recorded = Recorded(export)
        self.provider = LoggerProvider(resource=Resource.create({"service.name": service, "deployment": "test"}))
        self.provider.add_log_record_processor(BatchLogRecordProcessor(self.recorded, max_export_batch_size=100))
        self.handler = LoggingHandler(level=logging.INFO, logger_provider=self.provider)
        self.log = logging.getLogger(name)
        self.log.propagate = False
        self.log.setLevel(logging.INFO)
        self.log.addHandler(self.handler)

    def flush(self) -> list[LogRecordExportResult]:
        assert self.provider.force_flush(FLUSH_MS)
        return self.recorded.results

    def close(self) -> None:
        self.log.removeHandler(self.handler)
        self.provider.shutdown()


@pytest.fixture
def apps() -> Iterator[list[App]]:
    made: list[App] = []
    yield made
    for app in made:
        app.close()


def drain(consume, sqs, queue_urls) -> None:
    """The consumer runs until the queue is empty, nothing visible or in flight."""
    while consume() is not None:
        pass
    assert queue_depth(sqs, queue_urls) == 0


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_every_record_an_otel_app_logs_is_stored_once(encoding, gzip, server, apps, consume, admin_db, sqs, queue_urls):
    # GIVEN an app whose OpenTelemetry logs go to sluice through the real exporter
    app = App(f"otel.{encoding}.{gzip}", "web-1", exporter(encoding, gzip, server, TEST_KEY))
    apps.append(app)
    tracer = TracerProvider().get_tracer("checkout")
    # WHEN it logs 250 records, one of them an error inside a span, and flushes
    for i in range(249):
        app.log.info("request %d", i, extra={"path": f"/orders/{i}"})
    with tracer.start_as_current_span("pay") as span:
        app.log.error("payment failed", extra={"order": 42, "amount": 9.5})
    results = app.flush()
    # THEN every export succeeded
    assert results and set(results) == {LogRecordExportResult.SUCCESS}
    # AND once the queue is empty each record is stored once, with its level, source and attributes
    drain(consume, sqs, queue_urls)
    with admin_db.cursor() as cur:
        cur.execute("SELECT COUNT(*), COUNT(DISTINCT id), COUNT(DISTINCT message) FROM logs WHERE source = 'web-1'")
        assert cur.fetchone() == (250, 250, 250)
        cur.execute("SELECT level, attributes FROM logs WHERE message = 'payment failed'")
        level, attributes = cur.fetchone()
    attributes = json.loads(attributes)
    context = span.get_span_context()
    assert level == "error"
    assert (attributes["order"], attributes["amount"], attributes["resource.deployment"]) == (42, 9.5, "test")
    assert (attributes["trace_id"], attributes["span_id"]) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert attributes["severity_text"] == "ERROR"


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_a_source_the_key_may_not_write_is_refused_without_failing_the_export(
    encoding, server, client, admin_headers, apps, consume, admin_db, sqs, queue_urls
):
    # GIVEN a key for web-* only, used by an app whose service is billing, and another whose service is web-2
    key = key_for(client, admin_headers, ["web-*"])["Authorization"].removeprefix("Bearer ")
    billing = App(f"otel.billing.{encoding}", "billing", exporter(encoding, False, server, key))
    web = App(f"otel.web.{encoding}", "web-2", exporter(encoding, False, server, key))
    apps.extend([billing, web])
    # WHEN both log and flush
    for i in range(20):
        billing.log.warning("invoice %d", i)
        web.log.warning("page %d", i)
    billing_results, web_results = billing.flush(), web.flush()
    # THEN both exports are answered 200 (refused records are reported, not retried), and only web-2's are stored
    assert set(billing_results) == set(web_results) == {LogRecordExportResult.SUCCESS}
    drain(consume, sqs, queue_urls)
    with admin_db.cursor() as cur:
        cur.execute("SELECT source, COUNT(*) FROM logs GROUP BY source")
        assert cur.fetchall() == (("web-2", 20),)
