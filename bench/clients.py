"""Scenario 8 of the benchmark (make bench), the app's side; alone, with the services up:

    python -m bench.clients [--records 20000] [--rate 2000] [--max-s 20]

The app's side: one app process logging at a steady rate through sluice's Python
client (SluiceHandler) and through what an app would use instead (the standard library's
HTTPHandler, one synchronous request per record; OpenTelemetry's LoggingHandler with its
BatchLogRecordProcessor and OTLP exporter), with sluice up, slow (every request held
`SLOW_DELAY_S` by a proxy) and down (a closed port). Each app runs in its own process
(bench/clients_app.py); stored rows are counted in MySQL once the queue has drained."""

import argparse
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.otlp import stored
from tools.stage import ROOT, stage_settings

Progress = Callable[[str], None]
HANDLERS = {
    "sluice": "SluiceHandler (sluice_client)",
    "http": "logging.handlers.HTTPHandler",
    "otel": "OpenTelemetry LoggingHandler + BatchLogRecordProcessor",
}
CONDITIONS = ("up", "slow", "down")
SLOW_DELAY_S = 0.5  # what the proxy adds to every request in the slow condition
APP_TIMEOUT_S = 240  # one app run, flush included, at most (a run is bounded by --max-s and its flush)


class SlowProxy:
    """Forwards every request to `target` after holding it `delay_s` (threads: requests overlap)."""

    def __init__(self, target: str, delay_s: float) -> None:
        parts = target.removeprefix("http://").split(":")
        host, port = parts[0], int(parts[1])

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(delay_s)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                request = urllib.request.Request(f"http://{host}:{port}{self.path}", body, headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, data, kind = answer.status, answer.read(), answer.headers.get("Content-Type")
                except urllib.error.HTTPError as error:
                    status, data, kind = error.code, error.read(), error.headers.get("Content-Type")
                self.send_response(status)
                if kind:
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "SlowProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> str:
    """A URL where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def _target(condition: str, sluice_url: str) -> Iterator[str]:
    if condition == "slow":
        with SlowProxy(sluice_url, SLOW_DELAY_S) as proxy:
            yield proxy.url
    elif condition == "down":
        yield closed_port()
    else:
        yield sluice_url


def compare(
    sluice_url: str,
    key: str,
    table: str,
    records: int,
    rate: float,
    max_s: float,
    drain_timeout_s: float,
    progress: Progress,
) -> dict[str, Any]:
    """Every handler in every condition: the app's figures, and what reached MySQL."""
    runs: dict[str, dict[str, Any]] = {}
    for condition in CONDITIONS:
        for handler in HANDLERS:
            source = f"client-{handler}-{condition}"
            progress(f"clients: {HANDLERS[handler]}, sluice {condition}")
            with _target(condition, sluice_url) as url:
                app = subprocess.run(
                    [
                        *(sys.executable, "-m", "bench.clients_app", "--handler", handler, "--condition", condition),
                        *("--url", url, "--key", key, "--source", source, "--records", str(records)),
                        *("--rate", str(rate), "--max-s", str(max_s)),
                    ],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=APP_TIMEOUT_S,
                    check=True,
                )
            result = json.loads(app.stdout.strip().splitlines()[-1])
            if condition != "down":
                result.update(_delivered(table, source, result["logged"], drain_timeout_s))
            runs.setdefault(handler, {})[condition] = result
    return {"records": records, "rate": rate, "max_s": max_s, "slow_delay_s": SLOW_DELAY_S, "runs": runs}


def _delivered(table: str, source: str, logged: int, timeout_s: float) -> dict[str, int]:
    """Rows of the source once every logged record is stored, or at the timeout."""
    deadline = time.monotonic() + timeout_s
    rows, distinct = stored(table, source)
    while distinct < logged and time.monotonic() < deadline:
        time.sleep(0.5)
        rows, distinct = stored(table, source)
    return {"stored": distinct, "stored_twice": rows - distinct}


def main(argv: list[str] | None = None) -> int:
    """This scenario alone, against sluice under chalice local (the services must be up)."""
    from bench.report_clients import clients_section
    from bench.systems import runners

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=2_000)
    parser.add_argument("--max-s", type=float, default=20)
    args = parser.parse_args(argv)
    settings = runners.prepare_databases(writer_cap=stage_settings(runners.BENCH_STAGE).consumer_max_concurrency)
    logs = ROOT / ".data" / "bench-clients"
    with runners.sluice_on_empty(logs, settings, settings.consumer_max_concurrency, 8103, "clients") as system:
        key = system.headers["Authorization"].removeprefix("Bearer ")
        result = compare("http://127.0.0.1:8103", key, system.table, args.records, args.rate, args.max_s, 240, print)
    print("\n".join(clients_section({"clients": result})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
