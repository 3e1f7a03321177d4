"""An app that logs through the real OpenTelemetry Python SDK (pinned in requirements-dev.txt) to a
sluice URL: its LoggingHandler and BatchLogRecordProcessor, with the OTLP/HTTP protobuf or JSON
exporter, each export's result kept. Shared by the functional and integration tests."""

import logging
import urllib.request
from collections.abc import Sequence

from opentelemetry.exporter.otlp.common.http import Compression as JsonCompression
from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter as JsonLogExporter
from opentelemetry.exporter.otlp.proto.http import Compression as ProtoCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as ProtoLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

FLUSH_MS = 60_000  # well past an export's time on a loaded machine (the exporter's own timeout is 30 s here)
# The SDK's LoggingHandler warns that it moves to opentelemetry-instrumentation-logging; it is what apps use today.
DEPRECATED_HANDLER = "ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated"


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


def protobuf_export(service: str, *messages: str, at_ns: int) -> bytes:
    """An ExportLogsServiceRequest built with opentelemetry-proto's classes."""
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=resource_pb2.Resource(
                    attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]
                ),
                scope_logs=[
                    ScopeLogs(
                        log_records=[
                            LogRecord(time_unix_nano=at_ns + i, body=AnyValue(string_value=m))
                            for i, m in enumerate(messages)
                        ]
                    )
                ],
            )
        ]
    ).SerializeToString()


def post_over_http(url: str, payload: bytes, headers: dict[str, str]) -> tuple[int, str | None, bytes]:
    request = urllib.request.Request(url + "/v1/logs", data=payload, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, answer.headers.get("Content-Type"), answer.read()
