"""Scenario 1, the cliff: a bounded burst of concurrent clients posting log entries at a system
while MariaDB allows only `max_connections`; then the drain, and stored vs acknowledged, by id."""

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from bench.loadgen import Sample, run_load, summarize
from bench.sampler import Sampler, flush_status, mysql_status
from bench.systems.runners import System, lag_ms, row_count, stored_ids

Progress = Callable[[str], None]


def measure(
    system: System, clients: int, duration_s: float, drain_timeout_s: float, progress: Progress
) -> dict[str, Any]:
    """Run the burst against a started system and account for every acknowledged entry."""
    flush_status()
    sampler = Sampler(depth=system.queue_depth).start()
    progress(f"{system.name}: {clients} clients for {duration_s:.0f}s")
    burst_started = sampler.now()
    samples = run_load(system.url, clients, duration_s, headers=system.headers)
    burst_ended = sampler.now()
    acked = {s.log_id for s in samples if s.kind == "ok"}
    progress(f"{system.name}: draining {len(acked)} acknowledged entries")
    drained_at = _wait_for_drain(system.table, acked, sampler, drain_timeout_s)
    time.sleep(0.3)  # a few more samples after the drain, for the plots
    series = sampler.stop()
    stored = stored_ids(system.table)
    summary = summarize(samples, duration_s)
    summary.update(
        {
            "system": system.name,
            "clients": clients,
            "duration_s": duration_s,
            "max_used_connections": mysql_status("Max_used_connections"),
            "peak_threads_connected": max(series.threads_connected, default=0),
            "samples_per_s": round(len(series.t) / max(series.t[-1], 1e-9), 1) if series.t else 0,
            "stored": len(stored),
            "lost": len(acked - stored.keys()),
            "duplicated": sum(1 for n in stored.values() if n > 1),
            "stored_not_acknowledged": len(stored.keys() - acked),
            "drain_s": None if drained_at is None else round(max(0.0, drained_at - burst_ended), 2),
            "lag_ms": lag_ms(system.table),
        }
    )
    return {
        "summary": summary,
        "series": asdict(series),
        "burst": [burst_started, burst_ended],
        "requests": _per_second(samples, burst_started),
    }


def _wait_for_drain(table: str, acked: set[str], sampler: Sampler, timeout_s: float) -> float | None:
    """When every acknowledged id was stored (sampler time), or None at the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if row_count(table) >= len(acked) and acked <= stored_ids(table).keys():
            return sampler.now()
        time.sleep(0.25)
    return None


def _per_second(samples: list[Sample], offset_s: float) -> dict[str, Any]:
    """Acknowledged and failed requests per second of the burst (by when they were sent)."""
    seconds = int(max((s.started_s for s in samples), default=0)) + 1
    ok, failed = [0] * seconds, [0] * seconds
    for s in samples:
        (ok if s.kind == "ok" else failed)[int(s.started_s)] += 1
    return {"offset_s": [round(offset_s, 2)], "acknowledged": ok, "failed": failed}
