"""Scenario 7 of the benchmark (make bench), OTLP ingestion; alone, with the services up:

    python -m bench.otlp [--clients 200] [--seconds 30]

OTLP ingestion: the cliff's load of concurrent clients posting log records to
sluice's native batch route (POST /logs/batch) and to POST /v1/logs in OTLP/JSON and in protobuf,
one route after the other in the same run, each record with a unique message so that what was
acknowledged is counted in MySQL once the queue has drained. Then the CPU cost of decoding one
record by each route, in this process (no HTTP)."""

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from bench.loadgen import Body, run_load, summarize
from bench.systems import runners
from chalicelib.logs.model import LogEntryIn
from chalicelib.otlp.mapping import records
from chalicelib.otlp.protobuf import decode_request
from chalicelib.otlp.service import entry_of
from chalicelib.validation import parse_json
from tools.admin import admin_connection
from tools.stage import ROOT, stage_settings

Progress = Callable[[str], None]
RECORDS_PER_REQUEST = 50  # each request of every route carries this many records
ROUTES = {  # name -> (path, source of its records)
    "POST /logs/batch (native JSON)": ("/logs/batch", "bench-native"),
    "POST /v1/logs (OTLP/JSON)": ("/v1/logs", "bench-otlp-json"),
    "POST /v1/logs (OTLP protobuf)": ("/v1/logs", "bench-otlp-protobuf"),
}
_ATTRIBUTES = {"http.status": 200, "path": "/items/item-42"}


_COUNTER = "#{:09d}#"  # the request's number in each of its records' messages, at a fixed width


def _messages(source: str, n: int) -> list[str]:
    return [f"{source} {_COUNTER.format(n)} {i}: GET /items/item-42 200" for i in range(RECORDS_PER_REQUEST)]


def native_body(source: str, n: int) -> Body:
    logs = [{"level": "info", "source": source, "message": m, "attributes": _ATTRIBUTES} for m in _messages(source, n)]
    return Body(json.dumps({"logs": logs}).encode(), {"Content-Type": "application/json"}, len(logs))


def otlp_json_body(source: str, n: int) -> Body:
    now = str(time.time_ns())
    attributes = [
        {"key": "http.status", "value": {"intValue": "200"}},
        {"key": "path", "value": {"stringValue": "/items/item-42"}},
    ]
    log_records = [
        {"timeUnixNano": now, "severityNumber": 9, "body": {"stringValue": m}, "attributes": attributes}
        for m in _messages(source, n)
    ]
    export = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": source}}]},
                "scopeLogs": [{"scope": {"name": "bench"}, "logRecords": log_records}],
            }
        ]
    }
    return Body(json.dumps(export).encode(), {"Content-Type": "application/json"}, len(log_records))


def otlp_protobuf_body(source: str, n: int) -> Body:
    now = time.time_ns()
    attributes = [
        KeyValue(key="http.status", value=AnyValue(int_value=200)),
        KeyValue(key="path", value=AnyValue(string_value="/items/item-42")),
    ]
    log_records = [
        LogRecord(time_unix_nano=now, severity_number=9, body=AnyValue(string_value=m), attributes=attributes)  # type: ignore[arg-type]
        for m in _messages(source, n)
    ]
    export = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=source))]),
                scope_logs=[ScopeLogs(log_records=log_records)],
            )
        ]
    )
    headers = {"Content-Type": "application/x-protobuf", "Accept": "application/x-protobuf"}
    return Body(export.SerializeToString(), headers, len(log_records))


class Numbered:
    """A route's body made once, then numbered per request by replacing its counter (fixed width, so
    a protobuf body stays valid): the load generator spends on every route the same, almost nothing."""

    def __init__(self, route: str, source: str) -> None:
        self.template = MAKERS[route](source, 0)
        self.zero = _COUNTER.format(0).encode()

    def __call__(self, n: int) -> Body:
        data = self.template.data.replace(self.zero, _COUNTER.format(n).encode())
        return Body(data, self.template.headers, self.template.records)


MAKERS: dict[str, Callable[[str, int], Body]] = {
    "POST /logs/batch (native JSON)": native_body,
    "POST /v1/logs (OTLP/JSON)": otlp_json_body,
    "POST /v1/logs (OTLP protobuf)": otlp_protobuf_body,
}


def stored(table: str, source: str) -> tuple[int, int]:
    """(rows, distinct messages) of a source."""
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*), COUNT(DISTINCT message) FROM {table} WHERE source = %s", (source,))
        row = cur.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def ingest(
    system: runners.System, base_url: str, clients: int, duration_s: float, drain_timeout_s: float, progress: Progress
) -> dict[str, Any]:
    """Each route under the same load, one after the other; records/s, latency, stored once."""
    routes: dict[str, Any] = {}
    for name, (path, source) in ROUTES.items():
        progress(f"OTLP: {name}, {clients} clients for {duration_s:.0f} s")
        samples = run_load(
            base_url + path,
            clients,
            duration_s,
            headers=system.headers,
            make_body=Numbered(name, source),
        )
        summary = summarize(samples, duration_s)
        acked = sum(s.records for s in samples if s.kind == "ok")
        progress(f"OTLP: {name}: draining {acked:,} records")
        deadline = time.monotonic() + drain_timeout_s
        rows, distinct = stored(system.table, source)
        while distinct < acked and time.monotonic() < deadline:
            time.sleep(0.5)
            rows, distinct = stored(system.table, source)
        routes[name] = {
            **summary,
            "records_per_request": RECORDS_PER_REQUEST,
            "records_acknowledged": acked,
            "records_per_s": round(acked / duration_s, 1),
            "stored": distinct,
            "lost": max(0, acked - distinct),
            "duplicated": rows - distinct,
        }
    return {"clients": clients, "duration_s": duration_s, "routes": routes}


def decode_cost(records_per_export: int = 500, repeats: int = 5) -> dict[str, float]:
    """CPU microseconds per record to turn each route's body into validated entries (best of `repeats`)."""
    bodies = {name: maker("bench-decode", 1) for name, maker in MAKERS.items()}
    per_body = RECORDS_PER_REQUEST
    assert all(b.records == per_body for b in bodies.values())
    steps: dict[str, Callable[[bytes], Any]] = {
        "POST /logs/batch (native JSON)": lambda raw: [LogEntryIn.model_validate(e) for e in parse_json(raw)["logs"]],
        "POST /v1/logs (OTLP/JSON)": lambda raw: _otlp_entries(parse_json(raw)),
        "POST /v1/logs (OTLP protobuf)": lambda raw: _otlp_entries(decode_request(raw, RECORDS_PER_REQUEST)),
    }
    rounds = max(1, records_per_export // per_body)
    cost = {}
    for name, step in steps.items():
        raw = bodies[name].data
        best = float("inf")
        for _ in range(repeats):
            started = time.process_time()
            for _ in range(rounds):
                step(raw)
            best = min(best, time.process_time() - started)
        cost[name] = round(best / (rounds * per_body) * 1e6, 1)
    return cost


def _otlp_entries(body: Any) -> list[LogEntryIn]:
    """What OtlpService does with each record before queueing: map, then make its entry."""
    return [entry_of(mapped) for mapped in records(body)]


def main(argv: list[str] | None = None) -> int:
    """This scenario alone, against sluice under chalice local (the services must be up)."""
    from bench.report_clients import otlp_section

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args(argv)
    settings = runners.prepare_databases(writer_cap=stage_settings(runners.BENCH_STAGE).consumer_max_concurrency)
    logs = ROOT / ".data" / "bench-otlp"
    with runners.sluice_on_empty(logs, settings, settings.consumer_max_concurrency, 8102, "otlp") as system:
        result = ingest(system, "http://127.0.0.1:8102", args.clients, args.seconds, 240, print)
    print("\n".join(otlp_section({"otlp": {**result, "decode_us_per_record": decode_cost()}})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
