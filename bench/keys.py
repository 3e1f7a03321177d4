"""Scenario 5, keys: what checking a key and its limit costs a POST /logs, and a limit at work.

- cost: one client posting in turn to two servers of the same build, one with API_KEYS_REQUIRED off
  and one with a key (its check and limit in Redis), alternating rounds so drift hits both alike;
- limits: two keys at once, A limited to `rate` entries/s (burst `rate`), B unlimited: A is
  refused over its limit (429), B is not touched by A's traffic.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.loadgen import Sample, percentile, run_load
from bench.systems.runners import WITHOUT_KEYS, bench_key, sluice_api_only, unlimited_key

Progress = Callable[[str], None]
ROUNDS = 3


def _latencies(samples: list[Sample]) -> dict[str, Any]:
    ok = [s.latency_ms for s in samples if s.kind == "ok"]
    return {
        "requests": len(samples),
        "ok": len(ok),
        "p50_ms": round(percentile(ok, 50) or 0, 2),
        "p99_ms": round(percentile(ok, 99) or 0, 2),
    }


def cost(log_dir: Path, seconds: float, progress: Progress) -> dict[str, Any]:
    """p50/p99 of POST /logs from one client, without keys and with a key, in alternating rounds."""
    headers = unlimited_key("bench: cost of keys")
    runs: dict[str, list[Sample]] = {"without keys": [], "with a key": []}
    with (
        sluice_api_only(log_dir, 8104, env=WITHOUT_KEYS) as without,
        sluice_api_only(log_dir, 8105) as with_keys,
    ):
        for base, hdrs in ((without, {}), (with_keys, headers)):
            run_load(f"{base}/logs", 1, 0.5, headers=hdrs)  # warm: the key cached, connections open
        for round_number in range(ROUNDS):
            progress(f"keys: cost, round {round_number + 1} of {ROUNDS}")
            runs["without keys"] += run_load(f"{without}/logs", 1, seconds / ROUNDS)
            runs["with a key"] += run_load(f"{with_keys}/logs", 1, seconds / ROUNDS, headers=headers)
    result = {name: _latencies(samples) for name, samples in runs.items()}
    result["p50_added_ms"] = round(result["with a key"]["p50_ms"] - result["without keys"]["p50_ms"], 2)
    result["p99_added_ms"] = round(result["with a key"]["p99_ms"] - result["without keys"]["p99_ms"], 2)
    return result


def limits(log_dir: Path, clients: int, seconds: float, rate: int, progress: Progress) -> dict[str, Any]:
    """Keys A (limited to `rate`/s) and B (unlimited) posting at once from `clients` clients each."""
    a, b = bench_key("bench: limited", rate, rate), unlimited_key("bench: unlimited")
    progress(f"keys: A limited to {rate}/s and B unlimited, {clients} clients each for {seconds:.0f}s")
    with sluice_api_only(log_dir, 8106) as base, ThreadPoolExecutor(2) as pool:
        limited = pool.submit(run_load, f"{base}/logs", clients, seconds, headers=a)
        free = pool.submit(run_load, f"{base}/logs", clients, seconds, headers=b)
        samples = {"A (limited)": limited.result(), "B (unlimited)": free.result()}
    result: dict[str, Any] = {"rate_per_s": rate, "burst": rate, "clients_per_key": clients, "seconds": seconds}
    for name, got in samples.items():
        kinds: dict[str, int] = {}
        for s in got:
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
        accepted = kinds.get("ok", 0)
        result[name] = {
            "requests": len(got),
            "accepted": accepted,
            "accepted_per_s": round(accepted / seconds, 1),
            "refused_429": sum(n for k, n in kinds.items() if k.startswith("http_429")),
            "other_errors": sum(n for k, n in kinds.items() if k != "ok" and not k.startswith("http_429")),
            "answers": kinds,
        }
    return result
