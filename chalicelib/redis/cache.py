"""Redis as a cache: cache-aside entries with a fresh and a stale period, and single flight (one
load per key at a time, across instances). Redis failures go through the circuit (redis/circuit.py).

Keys use a hash tag (`{id}`) so an entry, its generation counter and its lock live in one
cluster slot: scripts that touch two of them also work on a clustered ElastiCache.
"""

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import redis

from chalicelib.errors import BudgetExhaustedError
from chalicelib.redis.circuit import RedisCircuit

logger = logging.getLogger(__name__)

# Write the entry only if nobody invalidated the key since the loader read its generation:
# a load that raced with a PUT or DELETE must not put the old row back.
_FILL_IF_GENERATION = """
local current = redis.call('GET', KEYS[2]) or ''
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# How much longer than the single-flight wait a thread waits for another thread's load.
_LEADER_GRACE_S = 30.0

_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class CacheEntry:
    """A cached value; `value` None means the thing is known to be absent."""

    value: dict[str, Any] | None
    fresh: bool
    age_s: float


@dataclass(frozen=True)
class Lookup:
    entry: CacheEntry | None
    generation: str


@dataclass(frozen=True)
class Loaded:
    """The result of get_or_load: the value, and whether it came from the cache."""

    value: dict[str, Any] | None
    source: str  # "hit", "miss" or "stale"
    age_s: float = 0.0


Loader = Callable[[], dict[str, Any] | None]
TTLs = Callable[[dict[str, Any] | None], tuple[int, int]]  # a loaded value -> (fresh s, stale s)


class Cache:
    """Cache-aside over Redis. Every Redis failure degrades to a miss, never to an error.

    Disabled (`enabled=False`), every read goes to MySQL; invalidations still run, so turning the
    cache back on serves nothing older than the writes made meanwhile.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        circuit: RedisCircuit,
        *,
        single_flight_wait_ms: int,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._circuit = circuit
        self._wait_s = single_flight_wait_ms / 1000
        self._enabled = enabled
        self._clock = clock
        self._sleep = sleep
        self._fill = client.register_script(_FILL_IF_GENERATION)
        self._release = client.register_script(_RELEASE_LOCK)
        self._flights: dict[str, Future[Loaded]] = {}
        self._flights_lock = threading.Lock()

    def tag(self, kind: str, key: str) -> str:
        """The prefix of every Redis key of one entry: its data (`:data`), generation and lock,
        and any key a caller keeps beside them (one hash tag: one cluster slot)."""
        return f"{self._prefix}{kind}:{{{key}}}"

    def _keys(self, kind: str, key: str) -> tuple[str, str, str]:
        tag = self.tag(kind, key)
        return f"{tag}:data", f"{tag}:gen", f"{tag}:lock"

    @property
    def enabled(self) -> bool:
        return self._enabled

    def _call[T](self, fn: Callable[[], T], default: T) -> T:
        if not self._circuit.is_closed():
            return default
        try:
            result = fn()
        except redis.RedisError as exc:
            self._circuit.record_failure(exc)
            return default
        self._circuit.record_success()
        return result

    def lookup(self, kind: str, key: str) -> Lookup:
        """Read an entry and its generation in one round trip; a Redis failure reads as a miss."""
        if not self._enabled:
            return Lookup(None, "")
        data_key, gen_key, _ = self._keys(kind, key)
        missing: list[Any] = [None, None]
        raw, generation = self._call(lambda: list(self._redis.mget(data_key, gen_key)), missing)
        return Lookup(self._decode(raw), (generation or b"").decode())

    def _decode(self, raw: bytes | None) -> CacheEntry | None:
        if raw is None:
            return None
        stored = json.loads(raw)
        now = self._clock()
        return CacheEntry(value=stored["v"], fresh=now < stored["fresh_until"], age_s=max(0.0, now - stored["at"]))

    def fill(
        self, kind: str, key: str, value: dict[str, Any] | None, generation: str, fresh_s: int, stale_s: int
    ) -> bool:
        """Store a loaded value unless the key was invalidated since `generation` was read."""
        if not self._enabled:
            return False
        data_key, gen_key, _ = self._keys(kind, key)
        now = self._clock()
        payload = json.dumps({"v": value, "at": now, "fresh_until": now + fresh_s}, separators=(",", ":"))
        ttl_ms = (fresh_s + stale_s) * 1000
        return bool(self._call(lambda: self._fill(keys=[data_key, gen_key], args=[generation, payload, ttl_ms]), 0))

    def invalidate(self, kind: str, key: str, ttl_s: int) -> None:
        """Drop the entry and bump its generation so in-flight loads of the old value are discarded.

        Tried even while the circuit is open: a missed invalidation leaves a stale copy for up to its TTL.
        """
        data_key, gen_key, _ = self._keys(kind, key)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(gen_key)
            pipe.expire(gen_key, max(ttl_s, 1))
            pipe.delete(data_key)
            pipe.execute()
        except redis.RedisError as exc:
            self._circuit.record_failure(exc)
            logger.error("could not invalidate %s %s; a cached copy may live until its TTL: %s", kind, key, exc)

    def get_or_load(
        self,
        kind: str,
        key: str,
        load: Loader,
        ttl_for: TTLs,
    ) -> Loaded:
        """Serve a fresh entry, or load it once for all concurrent callers (single flight).

        `ttl_for(value)` gives (fresh seconds, stale seconds) for what was loaded.
        When `load` finds the MySQL connection budget exhausted, a stale entry is served if there is one.
        """
        if not self._enabled:
            return Loaded(load(), "miss")
        found = self.lookup(kind, key)
        if found.entry is not None and found.entry.fresh:
            return Loaded(found.entry.value, "hit", found.entry.age_s)
        try:
            return self._load_in_this_process_once(kind, key, found.generation, load, ttl_for)
        except BudgetExhaustedError:
            if found.entry is None:
                raise
            return Loaded(found.entry.value, "stale", found.entry.age_s)

    def _load_in_this_process_once(
        self,
        kind: str,
        key: str,
        generation: str,
        load: Loader,
        ttl_for: TTLs,
    ) -> Loaded:
        """Threads of one process that miss the same key share one load (and one go at the Redis lock).

        Without this, a multi-threaded server (chalice local, a container) would have every waiting
        thread polling Redis; a Lambda environment serves one request at a time and is unaffected.
        """
        flight_key = f"{kind}:{key}"
        with self._flights_lock:
            flight = self._flights.get(flight_key)
            leader = flight is None
            if flight is None:
                flight = self._flights[flight_key] = Future()
        if not leader:
            try:
                return flight.result(timeout=self._wait_s + _LEADER_GRACE_S)
            except FutureTimeout:
                pass  # the leader is stuck: go to Redis and MySQL like a leader would
            return self._load_once(kind, key, generation, load, ttl_for)
        try:
            loaded = self._load_once(kind, key, generation, load, ttl_for)
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(loaded)
            return loaded
        finally:
            with self._flights_lock:
                del self._flights[flight_key]

    def _load_once(
        self,
        kind: str,
        key: str,
        generation: str,
        load: Loader,
        ttl_for: TTLs,
    ) -> Loaded:
        _, _, lock_key = self._keys(kind, key)
        token = secrets.token_hex(8)
        lock_ms = max(int(self._wait_s * 1000) * 4, 1000)
        deadline = time.monotonic() + self._wait_s
        delay = 0.002
        while True:
            acquired = self._call(lambda: self._redis.set(lock_key, token, nx=True, px=lock_ms), None)
            if acquired or not self._circuit.is_closed():
                # We hold the lock, or Redis is unavailable and we cannot coordinate: load ourselves.
                try:
                    value = load()
                    fresh_s, stale_s = ttl_for(value)
                    self.fill(kind, key, value, generation, fresh_s, stale_s)
                    return Loaded(value, "miss")
                finally:
                    if acquired:
                        self._call(lambda: self._release(keys=[lock_key], args=[token]), 0)
            # Someone else is loading: wait for their fresh entry, or for their lock to go.
            if time.monotonic() >= deadline:
                value = load()
                self.fill(kind, key, value, generation, *ttl_for(value))
                return Loaded(value, "miss")
            self._sleep(delay)
            delay = min(delay * 2, 0.02)
            found = self.lookup(kind, key)
            if found.entry is not None and found.entry.fresh:
                return Loaded(found.entry.value, "miss", found.entry.age_s)
            generation = found.generation
