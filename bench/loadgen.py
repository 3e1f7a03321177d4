"""A closed-loop HTTP load generator: N concurrent clients, each sending its next request when the
last one answered, until a deadline or a request budget. Every request carries a fresh log id,
so what was acknowledged can be compared, by id, with what was stored. 127.0.0.1 only."""

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import aiohttp


@dataclass(frozen=True)
class Sample:
    started_s: float  # since the load began
    latency_ms: float
    status: int  # 0: no HTTP answer
    kind: str  # "ok", or what went wrong (an error code from the body, "http_500", "timeout", ...)
    log_id: str  # for POSTs of one entry; "" for GETs and made bodies
    cache: str = ""  # X-Cache, with "+stale" when X-Cache-Stale is set
    records: int = 1  # log records the request carried (a made body's)


@dataclass(frozen=True)
class Body:
    """A request body made by the caller: its bytes, its headers, and how many log records it carries."""

    data: bytes
    headers: dict[str, str]
    records: int


BodyMaker = Callable[[int], Body]  # the n-th request's body


def entry(log_id: str, n: int) -> dict[str, Any]:
    """The log entry every system receives (sluice's POST /logs shape)."""
    return {
        "id": log_id,
        "level": "info",
        "source": f"web-{n % 4}",
        "message": f"GET /items/item-{n % 977} 200 in {n % 50} ms; user agent bench/1.0",
        "attributes": {"status": 200, "ms": n % 50},
    }


def classify(status: int, text: str) -> str:
    if 200 <= status < 300:
        return "ok"
    try:
        code = json.loads(text)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"http_{status}"
    return f"http_{status}:{code}"


async def _run(
    url: str,
    clients: int,
    duration_s: float,
    max_requests: int,
    timeout_s: float,
    method: str,
    headers: dict[str, str],
    make_body: BodyMaker | None = None,
) -> list[Sample]:
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"load is only sent to 127.0.0.1, not {host}")
    samples: list[Sample] = []
    counter = 0
    started = time.perf_counter()
    deadline = started + duration_s
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            nonlocal counter
            while time.perf_counter() < deadline and counter < max_requests:
                counter += 1
                made = make_body(counter) if make_body else None
                log_id = str(uuid.uuid4()) if method == "POST" and made is None else ""
                body = entry(log_id, counter) if log_id else None
                sent = time.perf_counter()
                cache = ""
                try:
                    async with session.request(
                        method,
                        url,
                        json=body,
                        data=made.data if made else None,
                        headers={**headers, **(made.headers if made else {})},
                    ) as response:
                        text = (await response.read()).decode(errors="replace")  # a protobuf answer is binary
                        status, kind = response.status, classify(response.status, text)
                        if kind == "ok" and log_id and json.loads(text).get("id") != log_id:
                            kind = "wrong_id"  # an answer meant for another request
                        cache = response.headers.get("X-Cache", "")
                        if response.headers.get("X-Cache-Stale"):
                            cache += "+stale"
                except TimeoutError:
                    status, kind = 0, "timeout"
                except aiohttp.ClientError as exc:
                    status, kind = 0, f"connection_error:{type(exc).__name__}"
                done = time.perf_counter()
                records = made.records if made else 1
                samples.append(Sample(sent - started, (done - sent) * 1000, status, kind, log_id, cache, records))

        await asyncio.gather(*(client() for _ in range(clients)))
    return samples


def run_load(
    url: str,
    clients: int,
    duration_s: float,
    max_requests: int = 10**9,
    timeout_s: float = 30.0,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    make_body: BodyMaker | None = None,
) -> list[Sample]:
    """Send requests to `url` from `clients` concurrent clients for `duration_s` (or max_requests).

    POSTs carry a new log entry each, or what `make_body` makes; GETs have no body. `headers` go
    with every request (a key).
    """
    return asyncio.run(_run(url, clients, duration_s, max_requests, timeout_s, method, headers or {}, make_body))


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summarize(samples: list[Sample], duration_s: float) -> dict[str, Any]:
    ok = [s for s in samples if s.kind == "ok"]
    kinds: dict[str, int] = {}
    for s in samples:
        if s.kind != "ok":
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
    latencies = [s.latency_ms for s in samples]
    return {
        "requests": len(samples),
        "acknowledged": len(ok),
        "acknowledged_per_s": round(len(ok) / duration_s, 1),
        "p50_ms": _round(percentile(latencies, 50)),
        "p95_ms": _round(percentile(latencies, 95)),
        "p99_ms": _round(percentile(latencies, 99)),
        "errors": dict(sorted(kinds.items())),
        "errors_5xx": sum(n for k, n in kinds.items() if k.startswith("http_5")),
        "errors_1040": sum(n for k, n in kinds.items() if "1040" in k),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
