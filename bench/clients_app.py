"""One app process of the client comparison (bench/clients.py): it logs records through one handler
at a steady rate, times every log call, and prints what it saw as JSON.

    python -m bench.clients_app --handler sluice --url http://127.0.0.1:8101 --key slk_... \\
        --source client-sluice-up --records 20000 --rate 2000 --max-s 30

Handlers: `sluice` (clients/python's SluiceHandler), `http` (the standard library's
logging.handlers.HTTPHandler: one synchronous request per record; subclassed only to post sluice's
JSON with the key, as the stock one posts a form without headers), `otel` (OpenTelemetry's
LoggingHandler with its BatchLogRecordProcessor and the OTLP/HTTP protobuf exporter).
"""

import argparse
import http.client
import json
import logging
import logging.handlers
import sys
import time
import urllib.parse
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FLUSH_S = {"up": 60.0, "slow": 60.0, "down": 5.0}  # how long the app waits for its handler at exit


class JSONHTTPHandler(logging.handlers.HTTPHandler):
    """HTTPHandler's emit (a new connection and one synchronous POST per record), with sluice's JSON and key."""

    def __init__(self, url: str, key: str, source: str) -> None:
        parts = urllib.parse.urlsplit(url)
        super().__init__(parts.netloc, "/logs", method="POST")
        self.key = key
        self.source = source

    def emit(self, record: logging.LogRecord) -> None:
        try:
            body = json.dumps(
                {
                    "level": record.levelname.lower(),
                    "source": self.source,
                    "message": record.getMessage(),
                    "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
                }
            )
            connection = http.client.HTTPConnection(self.host, timeout=10)
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
            connection.request("POST", self.url, body=body, headers=headers)
            connection.getresponse().read()
            connection.close()
        except Exception:
            self.handleError(record)


def make_handler(kind: str, url: str, key: str, source: str) -> tuple[logging.Handler, Any]:
    """The handler, and what to flush and close it with."""
    if kind == "sluice":
        from sluice_client import SluiceHandler

        sluice = SluiceHandler(url, key, source)
        return sluice, sluice
    if kind == "http":
        stock = JSONHTTPHandler(url, key, source)
        return stock, stock
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    provider = LoggerProvider(resource=Resource.create({"service.name": source}))
    exporter = OTLPLogExporter(endpoint=url + "/v1/logs", headers={"Authorization": f"Bearer {key}"})
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    return LoggingHandler(logger_provider=provider), provider


def rss_kib() -> int:
    """This process's resident memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run(
    kind: str, url: str, key: str, source: str, records: int, rate: float, max_s: float, flush_s: float
) -> dict[str, Any]:
    handler, owner = make_handler(kind, url, key, source)
    log = logging.getLogger("bench.app")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    logging.raiseExceptions = False  # the stock handlers print a traceback per failed record otherwise
    emit_ns: list[int] = []
    rss_before = rss_kib()
    started = time.monotonic()
    for i in range(records):
        due = started + i / rate
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        if time.monotonic() - started > max_s:
            break
        before = time.perf_counter_ns()
        log.info("request %d: GET /items/item-42 200", i, extra={"status": 200})
        emit_ns.append(time.perf_counter_ns() - before)
    logging_s = time.monotonic() - started
    rss_after = rss_kib()
    flushed = time.monotonic()
    if kind == "sluice":
        owner.flush(flush_s)
    elif kind == "otel":
        owner.force_flush(int(flush_s * 1000))
    flush_took = time.monotonic() - flushed
    ordered = sorted(emit_ns)

    def at(p: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] / 1000, 1) if ordered else None

    result = {
        "logged": len(emit_ns),
        "logging_s": round(logging_s, 2),
        "logged_per_s": round(len(emit_ns) / logging_s, 1) if logging_s else None,
        "emit_us": {"p50": at(50), "p99": at(99), "max": at(100)},
        "rss_growth_kib": rss_after - rss_before,
        "flush_s": round(flush_took, 2),
        "dropped": getattr(owner, "dropped", None),
        "pending": getattr(owner, "pending", None),
    }
    if kind == "otel":
        owner.shutdown()
    elif kind == "sluice":
        owner.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--handler", choices=("sluice", "http", "otel"), required=True)
    parser.add_argument("--condition", choices=tuple(FLUSH_S), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--max-s", type=float, required=True)
    args = parser.parse_args(argv)
    result = run(
        args.handler, args.url, args.key, args.source, args.records, args.rate, args.max_s, FLUSH_S[args.condition]
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
