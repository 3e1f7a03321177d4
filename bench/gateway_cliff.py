"""The cliff through LocalStack's API Gateway beside chalice local, in one run, and what bounds it.

    python -m bench.gateway_cliff [--clients 200] [--duration 60] [--out DIR]

Needs the services up (`make up` or `tools.devstack up`). Three measurements, 127.0.0.1 only:
1. the cliff (bench/cliff.py) with `clients` for `duration` s: chalice local with a key, then the
   bench stage deployed into LocalStack with the same kind of key;
2. during the LocalStack burst: LocalStack's CPU use, the execution environments, their memory;
3. then LocalStack's own CPU time per request, one client at a time (GET /health, POST /logs through
   API Gateway and the host executor), against the environments' CPU time for the same requests.
Writes results.json and report.md to DIR (default bench/results/<time>-gateway).
"""

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cliff
from bench.run import localstack_system
from bench.systems import runners
from tools import procs
from tools.devstack.services import find_service
from tools.stage import ROOT, stage_settings

PER_REQUEST_RUNS = 200
WARMUP = 10
SAMPLE_EVERY_S = 1.0


def pids_named(name: str) -> list[int]:
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def localstack_pid() -> int:
    pid = find_service("localstack").pid()
    if pid is None:
        raise SystemExit("LocalStack is not running: start the services first (make up, or tools.devstack up)")
    return pid


def cpu_s(pid: int) -> float:
    """User + system CPU time of a process so far; 0 if it is gone."""
    try:
        return procs.cpu_s(pid)
    except OSError:
        return 0.0


def proc_mb(path: str, field: str) -> float:
    """A "Field:  N kB" line of a /proc file, in MB; 0 if the file or the field is not there."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:  # the process is gone
        pass
    return 0.0


def pss_mb(pid: int) -> float:
    return proc_mb(f"/proc/{pid}/smaps_rollup", "Pss")


def per_request_cpu(url: str, method: str, headers: dict[str, str]) -> dict[str, float]:
    """Wall time and CPU time (LocalStack's, the environments') per request, one at a time."""
    body = json.dumps({"level": "info", "source": "web-1", "message": "cpu per request"}).encode()

    def call() -> None:
        request = urllib.request.Request(
            url,
            data=body if method == "POST" else None,
            method=method,
            headers={"Content-Type": "application/json", **headers},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    for _ in range(WARMUP):
        call()
    ls = localstack_pid()
    envs_before = sum(cpu_s(p) for p in pids_named("lambda-env"))
    ls_before, started = cpu_s(ls), time.perf_counter()
    for _ in range(PER_REQUEST_RUNS):
        call()
    wall = time.perf_counter() - started
    return {
        "wall_ms": round(wall / PER_REQUEST_RUNS * 1000, 1),
        "localstack_cpu_ms": round((cpu_s(ls) - ls_before) / PER_REQUEST_RUNS * 1000, 1),
        "environments_cpu_ms": round(
            (sum(cpu_s(p) for p in pids_named("lambda-env")) - envs_before) / PER_REQUEST_RUNS * 1000, 1
        ),
    }


class Watch:
    """LocalStack's CPU use each second, and the environments at the burst's peak."""

    def __init__(self) -> None:
        self.localstack_cores: list[float] = []
        self.environments: list[int] = []
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Watch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        ls = localstack_pid()
        last, last_t = cpu_s(ls), time.monotonic()
        while not self._stop.wait(SAMPLE_EVERY_S):
            now, now_t = cpu_s(ls), time.monotonic()
            self.localstack_cores.append(round((now - last) / (now_t - last_t), 2))
            last, last_t = now, now_t
            envs = pids_named("lambda-env")
            self.environments.append(len(envs))
            if len(envs) >= self.peak.get("environments", 0):
                pss = [pss_mb(p) for p in envs]
                self.peak = {
                    "environments": len(envs),
                    "pss_mb_total": round(sum(pss)),
                    "pss_mb_per_environment": round(statistics.fmean(pss), 1) if pss else 0,
                    "templates_pss_mb": round(sum(pss_mb(p) for p in pids_named("lambda-template"))),
                    "localstack_rss_mb": round(proc_mb(f"/proc/{ls}/status", "VmRSS")),
                    "memory_available_mb": round(proc_mb("/proc/meminfo", "MemAvailable")),
                }


def run(clients: int, duration_s: float, out: Path) -> dict[str, Any]:
    settings = runners.prepare_databases(writer_cap=stage_settings(runners.BENCH_STAGE).consumer_max_concurrency)
    logs = out / "logs"
    results: dict[str, Any] = {"clients": clients, "duration_s": duration_s, "cliff": {}}
    runners.empty_everything(settings)
    key = runners.unlimited_key("gateway cliff: chalice local")
    with runners.sluice_local(logs, settings, settings.consumer_max_concurrency, port=8101, headers=key) as system:
        system.name = "sluice (chalice local, keys)"
        results["cliff"][system.name] = cliff.measure(system, clients, duration_s, 240, print)["summary"]
    runners.empty_everything(settings)
    with localstack_system(settings) as system:
        with Watch() as watch:
            results["cliff"][system.name] = cliff.measure(system, clients, duration_s, 240, print)["summary"]
        base = system.url.rsplit("/", 1)[0]  # after the cliff, whose accounting is done by then
        results["per_request"] = {
            "GET /health": per_request_cpu(f"{base}/health", "GET", {}),
            "POST /logs": per_request_cpu(system.url, "POST", system.headers),
        }
        results["localstack_during_burst"] = {
            "cores_median": statistics.median(watch.localstack_cores) if watch.localstack_cores else None,
            "cores_max": max(watch.localstack_cores, default=None),
            "cores_each_second": watch.localstack_cores,
            "environments_each_second": watch.environments,
            "peak": watch.peak,
        }
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        f"# The cliff through API Gateway: {results['clients']} clients for {results['duration_s']:.0f} s",
        "",
        "| system | acked/s | p50 ms | p99 ms | 5xx | other errors | acknowledged | lost | duplicated | drain s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in results["cliff"].items():
        other = {k: v for k, v in s["errors"].items() if not k.startswith("http_5")}
        lines.append(
            f"| {name} | {s['acknowledged_per_s']:,} | {s['p50_ms']:,} | {s['p99_ms']:,} | {s['errors_5xx']} | "
            f"{other or 'none'} | {s['acknowledged']:,} | {s['lost']} | {s['duplicated']} | {s['drain_s']} |"
        )
    lines += ["", "## LocalStack's CPU time per request, one client", ""]
    lines += ["| request | wall ms | LocalStack CPU ms | environment CPU ms |", "| --- | --- | --- | --- |"]
    for name, r in results["per_request"].items():
        lines.append(f"| {name} | {r['wall_ms']} | {r['localstack_cpu_ms']} | {r['environments_cpu_ms']} |")
    during = results["localstack_during_burst"]
    lines += [
        "",
        "## During the LocalStack burst",
        "",
        f"LocalStack's CPU use, in cores (one process; its Python threads share one GIL): median "
        f"{during['cores_median']}, max {during['cores_max']}.",
        f"At the peak: {json.dumps(during['peak'])}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    out = args.out or ROOT / "bench" / "results" / (datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-gateway")
    out.mkdir(parents=True, exist_ok=True)
    results = run(args.clients, args.duration, out)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    text = report(results)
    (out / "report.md").write_text(text)
    print(text)
    print(f"report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
