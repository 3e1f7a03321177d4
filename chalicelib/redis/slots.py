"""The API's share of the MySQL connection budget: R slots in a Redis semaphore shared by every instance.

A slot is a member of a sorted set scored by its lease's end (Redis server time), so a holder
that dies (a Lambda timeout, a crash) frees its slot when the lease runs out. MySQL's own
per-user cap (MAX_USER_CONNECTIONS = R, set by the bootstrap) backs this up; it is the only
limit while Redis is unavailable.
"""

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from chalicelib.errors import BudgetExhaustedError
from chalicelib.redis.circuit import RedisCircuit

logger = logging.getLogger(__name__)

_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"""


class SlotPool:
    """A counting semaphore over Redis with leases."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        limit: int,
        lease_s: int,
        circuit: RedisCircuit,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._redis = client
        self._key = key
        self._limit = limit
        self._lease_ms = lease_s * 1000
        self._circuit = circuit
        self._sleep = sleep
        self._acquire = client.register_script(_ACQUIRE)

    @property
    def limit(self) -> int:
        return self._limit

    def try_acquire(self) -> str | None:
        """Take a slot now if one is free; return its token. Raises redis.RedisError."""
        token = secrets.token_hex(8)
        taken = self._acquire(keys=[self._key], args=[self._limit, self._lease_ms, token])
        return token if taken else None

    def release(self, token: str) -> None:
        """Give a slot back."""
        try:
            self._redis.zrem(self._key, token)
        except redis.RedisError as exc:
            self._circuit.record_failure(exc)
            logger.warning("could not release a read slot; its lease frees it: %s", exc)

    def in_use(self) -> int:
        """How many slots are held now (expired leases not counted)."""
        seconds, micros = self._redis.time()
        return int(self._redis.zcount(self._key, f"({seconds * 1000 + micros // 1000}", "+inf"))

    @contextmanager
    def hold(self, deadline: float) -> Iterator[None]:
        """Hold a slot for the block, waiting until `deadline` (time.monotonic) for one to free.

        Raises BudgetExhaustedError when none frees in time. While Redis is unavailable the
        block runs without a slot: MySQL's per-user connection cap still bounds it.
        """
        token = self._wait_for_slot(deadline)
        try:
            yield
        finally:
            if token is not None:
                self.release(token)

    def _wait_for_slot(self, deadline: float) -> str | None:
        delay = 0.002
        while True:
            if not self._circuit.is_closed():
                return None
            try:
                token = self.try_acquire()
            except redis.RedisError as exc:
                self._circuit.record_failure(exc)
                return None
            self._circuit.record_success()
            if token is not None:
                return token
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BudgetExhaustedError(
                    f"all {self._limit} MySQL read slots are busy; try again shortly",
                )
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, 0.025)
