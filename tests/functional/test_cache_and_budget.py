"""The cache and the API's connection budget against the real Redis and MariaDB."""

import json
import threading
import time

import pymysql
import pytest

from chalicelib import wiring
from chalicelib.errors import BudgetExhaustedError
from chalicelib.items.service import ItemService
from chalicelib.mysql.connector import connect_within
from chalicelib.redis.cache import Cache
from chalicelib.redis.circuit import RedisCircuit
from tests.functional.conftest import SETTINGS, body, closed_port
from tests.support.mysql import PeakConnections
from tests.support.waiting import wait_for
from tools.admin import admin_connection


def put(client, headers, item_id, data):
    response = client.http.put(f"/items/{item_id}", headers=headers, body=json.dumps(data))
    assert response.status_code in (200, 201)
    return body(response)


class CountingLoads:
    """Counts the MySQL reads of one item the app runs, and makes each take a while."""

    def __init__(self, delay_s: float) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        self._delay_s = delay_s
        self._real = wiring.get_item_store().get

    def __call__(self, item_id: str):
        with self._lock:
            self.calls += 1
        time.sleep(self._delay_s)
        return self._real(item_id)


def test_concurrent_misses_of_one_key_run_one_mysql_query(client, admin_headers, monkeypatch):
    # GIVEN a stored item that is not cached, MySQL reads that take 200 ms, and six API instances
    # (separate caches, as separate Lambda environments or servers) sharing Redis, five threads each.
    # Their waiters never give up within the test (30 s), so the count depends on no timing: a slow
    # machine only makes the threads arrive later, to a lock held or an entry filled.
    put(client, admin_headers, "hot", {"name": "Hot"})
    loads = CountingLoads(delay_s=0.2)
    monkeypatch.setattr(wiring.get_item_store(), "get", loads)
    instances = [
        ItemService(
            wiring.get_item_store(),
            Cache(
                wiring.get_redis(),
                SETTINGS.redis_key_prefix,
                RedisCircuit(SETTINGS.redis_cooldown_s),
                single_flight_wait_ms=30_000,
            ),
            SETTINGS,
        )
        for _ in range(6)
    ]
    results: list[str] = []
    barrier = threading.Barrier(30)

    def read(items: ItemService) -> None:
        barrier.wait()
        loaded = items.get("hot")
        assert loaded.value is not None
        results.append(loaded.value["name"])

    # WHEN 30 requests miss it at once
    threads = [threading.Thread(target=read, args=(instances[i % 6],)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN MySQL was asked once and everyone got the item
    assert loads.calls == 1
    assert results == ["Hot"] * 30


def test_a_load_that_raced_with_a_write_does_not_put_old_data_back(client, admin_headers):
    # GIVEN a reader that looked up the key (generation g) before a write
    put(client, admin_headers, "race", {"name": "old"})
    cache = wiring.get_cache()
    before = cache.lookup("item", "race")
    old_row = wiring.get_item_store().get("race")
    # WHEN the write commits and invalidates, and only then the slow reader fills the cache
    put(client, admin_headers, "race", {"name": "new"})
    filled = cache.fill("item", "race", old_row, before.generation, 60, 60)
    # THEN the old row was refused and readers see the new one
    assert filled is False
    assert body(client.http.get("/items/race"))["name"] == "new"


def test_with_redis_down_reads_and_writes_still_work_from_mysql(client, admin_headers, override_settings):
    put(client, admin_headers, "sofa", {"name": "Sofa"})
    # GIVEN Redis refuses connections
    override_settings(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    # WHEN items are read and written
    started = time.monotonic()
    first = client.http.get("/items/sofa")
    second = client.http.get("/items/sofa")
    elapsed = time.monotonic() - started
    replaced = client.http.put("/items/sofa", headers=admin_headers, body=json.dumps({"name": "Couch"}))
    after = client.http.get("/items/sofa")
    # THEN every answer comes from MySQL, none is a 500
    assert [r.status_code for r in (first, second, replaced, after)] == [200, 200, 200, 200]
    assert [first.headers["X-Cache"], second.headers["X-Cache"]] == ["miss", "miss"]
    assert body(after)["name"] == "Couch"
    assert client.http.get("/items/none").status_code == 404
    print(f"two reads with Redis down took {elapsed * 1000:.0f} ms")


def hold_all_slots() -> list[str]:
    """Take every read slot anonymous reads (the items) may use."""
    pool = wiring.get_public_database().slots
    assert pool is not None
    tokens = [pool.try_acquire() for _ in range(pool.limit)]
    assert all(tokens)
    assert pool.try_acquire() is None
    return [t for t in tokens if t]


def release(tokens: list[str]) -> None:
    pool = wiring.get_public_database().slots
    assert pool is not None
    for token in tokens:
        pool.release(token)


def test_with_every_read_slot_busy_a_stale_copy_is_served(client, admin_headers):
    # GIVEN an item whose cached copy is past its fresh period but within its stale period
    item = put(client, admin_headers, "clock", {"name": "Clock"})
    cache = wiring.get_cache()
    assert cache.fill("item", "clock", item, cache.lookup("item", "clock").generation, 0, 600)
    # AND every API read slot is taken
    tokens = hold_all_slots()
    try:
        # WHEN it is read
        response = client.http.get("/items/clock")
    finally:
        release(tokens)
    # THEN the stale copy is served, marked as such
    assert response.status_code == 200
    assert body(response) == item
    assert response.headers["X-Cache"] == "hit"
    assert response.headers["X-Cache-Stale"] == "true"


def test_with_every_read_slot_busy_and_no_copy_the_answer_is_503_with_retry_after(client, admin_headers):
    put(client, admin_headers, "uncached", {"name": "U"})
    tokens = hold_all_slots()
    try:
        response = client.http.get("/items/uncached")
        listing = client.http.get("/items")
    finally:
        release(tokens)
    for r in (response, listing):
        assert r.status_code == 503
        assert r.headers["Retry-After"] == str(SETTINGS.retry_after_s)
        assert body(r)["error"]["code"] == "connection_budget_exhausted"
    # AND once a slot frees, it answers again
    assert client.http.get("/items/uncached").status_code == 200


def test_a_slot_whose_holder_died_frees_when_its_lease_ends(override_settings):
    # GIVEN slots with a 3 s lease, all taken by holders that never give them back
    override_settings(slot_lease_s=3)
    tokens = hold_all_slots()
    assert tokens
    pool = wiring.get_public_database().slots
    assert pool is not None
    # WHEN the lease runs out THEN a slot can be taken again (hold_all_slots proved none could before)
    taken = wait_for(pool.try_acquire, timeout_s=15, interval_s=0.05)
    release([taken])


def test_slots_bound_concurrent_mysql_work_to_r(client, admin_headers, monkeypatch, override_settings):
    # GIVEN item reads that hold their connection for 100 ms, and 2 anonymous read slots while MySQL's
    # own cap on the API account stays at the stage's R (so only the slots can hold the peak to 2)
    put(client, admin_headers, "busy", {"name": "B"})
    override_settings(api_public_read_slots=2)
    db = wiring.get_public_database()
    pool = db.slots
    assert pool is not None and pool.limit == 2 < SETTINGS.api_read_slots
    real_connect = db.connector.connect

    def slow_connect():
        conn = real_connect()
        time.sleep(0.1)
        return conn

    monkeypatch.setattr(db.connector, "connect", slow_connect)
    outcomes: list[str] = []

    def read() -> None:
        try:
            wiring.get_item_store().get("busy")
            outcomes.append("ok")
        except BudgetExhaustedError:
            outcomes.append("busy")

    # WHEN three times R requests read at once, while the server's process list is sampled for the
    # API's account (counted by MySQL, not by the pool under test)
    threads = [threading.Thread(target=read) for _ in range(3 * pool.limit)]
    user = wiring.get_secrets().credentials("mysql_api").username
    with (
        admin_connection(SETTINGS.mysql.database, settings=SETTINGS) as watcher,
        PeakConnections(watcher, user) as seen,
    ):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # THEN MySQL never held more than R connections of the account (the sampler did see them), and
    # those that waited too long got "busy" (503), not an error
    assert 1 <= seen.peak <= pool.limit, (seen.peak, seen.samples)
    assert set(outcomes) <= {"ok", "busy"}
    assert outcomes.count("ok") >= pool.limit


def test_mysql_caps_the_api_user_at_r_connections_even_without_redis():
    # GIVEN the API user already holds R connections (as R instances would, with Redis down)
    connector = wiring.get_database().connector
    held = [connector.connect() for _ in range(SETTINGS.api_read_slots)]
    try:
        # WHEN one more connects THEN MySQL itself refuses it (1226, the user's MAX_USER_CONNECTIONS)
        # and waiting for a free connection ends in BudgetExhaustedError (a 503), not in an error
        with pytest.raises(pymysql.err.OperationalError) as refused:
            connector.connect()
        assert refused.value.args[0] == 1226
        with pytest.raises(BudgetExhaustedError):
            connect_within(connector.connect, time.monotonic() + 0.2)
    finally:
        for conn in held:
            conn.close()


def test_with_the_cache_disabled_every_read_goes_to_mysql(
    client, admin_headers, override_settings, redis_client, monkeypatch
):
    # GIVEN the cache switched off
    override_settings(cache_enabled=False)
    put(client, admin_headers, "plain", {"name": "Plain"})
    loads = CountingLoads(delay_s=0)
    monkeypatch.setattr(wiring.get_item_store(), "get", loads)
    # WHEN the item is read three times THEN each read is a miss served from MySQL, and nothing is cached
    responses = [client.http.get("/items/plain") for _ in range(3)]
    assert [r.headers["X-Cache"] for r in responses] == ["miss"] * 3
    assert loads.calls == 3
    assert redis_client.get(f"{SETTINGS.redis_key_prefix}item:{{plain}}:data") is None
