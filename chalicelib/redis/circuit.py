"""A circuit breaker for Redis, shared by the cache, the read slots and the key check: after a
few failures in a row, Redis is skipped for a cool-down so requests do not each pay a timeout."""

import logging
import time
from collections.abc import Callable

import redis

logger = logging.getLogger(__name__)


class RedisCircuit:
    """After a few Redis failures in a row, skip Redis for a cool-down so requests do not each pay a
    timeout. A refused connection opens it at once: Redis is not there."""

    def __init__(
        self, cooldown_s: float, failures_to_open: int = 3, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cooldown_s = cooldown_s
        self._failures_to_open = failures_to_open
        self._clock = clock
        self._open_until = 0.0
        self._failures = 0

    def is_closed(self) -> bool:
        """True when Redis may be tried."""
        return self._clock() >= self._open_until

    def record_failure(self, exc: Exception) -> None:
        """Note a failure; enough of them in a row (or a refused connection) open the circuit."""
        self._failures += 1
        refused = isinstance(exc, redis.ConnectionError) and isinstance(
            exc.__cause__ or exc.__context__, ConnectionRefusedError
        )
        if self._failures < self._failures_to_open and not refused:
            return
        if self.is_closed():
            logger.warning("redis unavailable, skipping it for %.1fs: %s", self._cooldown_s, exc)
        self._open_until = self._clock() + self._cooldown_s

    def record_success(self) -> None:
        """Note a success: the count of failures in a row starts again."""
        self._failures = 0
