"""Scenario 4, reads: hot-key GET /items/{id} with the cache, with it switched off (CACHE_ENABLED=false),
and with Redis down; a cold key read by many clients at once; reads while every read slot is taken."""

import json
import socket
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.loadgen import Sample, run_load, summarize
from bench.sampler import mysql_status
from bench.systems.runners import BENCH_STAGE, empty_everything, prepare_databases, sluice_api_only
from chalicelib.redis.cache import Cache
from chalicelib.redis.circuit import RedisCircuit
from chalicelib.redis.slots import SlotPool
from tools.stage import stage_secrets

Progress = Callable[[str], None]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def put_item(base: str, token: str, item_id: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/items/{item_id}",
        data=json.dumps({"name": f"Item {item_id}", "attributes": {"price": 12.5}}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        item: dict[str, Any] = json.load(response)
        return item


def _cache_counts(samples: list[Sample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in samples:
        key = f"{s.status} {s.cache}".strip()
        counts[key] = counts.get(key, 0) + 1
    return counts


def run(log_dir: Path, clients: int, duration_s: float, cold_clients: int, progress: Progress) -> dict[str, Any]:
    settings = prepare_databases(writer_cap=4)
    admin_token = stage_secrets(BENCH_STAGE).token("admin_token")
    empty_everything(settings)
    results: dict[str, Any] = {}
    no_redis = {"REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    with (
        sluice_api_only(log_dir, 8101) as cached,
        sluice_api_only(log_dir, 8102, env={"CACHE_ENABLED": "false"}) as uncached,
        sluice_api_only(log_dir, 8103, env=no_redis) as redis_down,
    ):
        put_item(cached, admin_token, "hot")
        for name, base in (("with_cache", cached), ("cache_disabled", uncached), ("redis_down", redis_down)):
            progress(f"reads: hot key {name.replace('_', ' ')}, {clients} clients")
            run_load(f"{base}/items/hot", 4, 0.5, method="GET")  # warm the server and the cache
            selects = mysql_status("Com_select")
            samples = run_load(f"{base}/items/hot", clients, duration_s, method="GET")
            results[name] = {
                **summarize(samples, duration_s),
                "mysql_selects": mysql_status("Com_select") - selects,
                "responses": _cache_counts(samples),
            }

        progress(f"reads: {cold_clients} concurrent reads of one cold key")
        cold_id = f"cold-{uuid.uuid4().hex[:8]}"
        put_item(cached, admin_token, cold_id)  # the PUT leaves no cached copy
        selects = mysql_status("Com_select")
        samples = run_load(f"{cached}/items/{cold_id}", cold_clients, 30, max_requests=cold_clients, method="GET")
        results["cold_key"] = {
            **summarize(samples, 1),
            "concurrent_requests": cold_clients,
            "mysql_queries": mysql_status("Com_select") - selects,
            "responses": _cache_counts(samples),
        }

        progress("reads: every read slot taken")
        client = redis.Redis.from_url(settings.redis_url)
        circuit = RedisCircuit(settings.redis_cooldown_s)
        cache = Cache(client, settings.redis_key_prefix, circuit, single_flight_wait_ms=settings.single_flight_wait_ms)
        stale_item = put_item(cached, admin_token, "stale")
        put_item(cached, admin_token, "uncached")
        generation = cache.lookup("item", "stale").generation
        cache.fill("item", "stale", stale_item, generation, 0, settings.item_stale_ttl_s)  # past fresh, still stale
        slots = SlotPool(client, f"{settings.redis_key_prefix}read-slots", settings.api_read_slots, 60, circuit)
        tokens = [slots.try_acquire() for _ in range(settings.api_read_slots)]
        try:
            stale = run_load(f"{cached}/items/stale", clients, max(1.0, duration_s / 3), method="GET")
            none = run_load(f"{cached}/items/uncached", clients, max(1.0, duration_s / 3), method="GET")
        finally:
            for token in tokens:
                if token:
                    slots.release(token)
        results["slots_exhausted"] = {
            "read_slots": settings.api_read_slots,
            "slots_held": sum(1 for t in tokens if t),
            "stale_copy": {**summarize(stale, duration_s / 3), "responses": _cache_counts(stale)},
            "no_copy": {**summarize(none, duration_s / 3), "responses": _cache_counts(none)},
        }
    return results
