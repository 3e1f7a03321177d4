"""Rate limits by the generic cell rate algorithm (GCRA), a token bucket kept as one timestamp.

A limit of `rate` per second with a `burst`: each unit (a log entry, a request) moves the
bucket's "theoretical arrival time" (TAT) on by 1/rate; a request of `cost` units passes when
the new TAT is no more than burst/rate ahead of now. Redis runs it atomically in Lua
(`GCRA_LUA`, also part of the key check in chalicelib/keys/gate.py); `LocalLimiter` is the same
arithmetic in one process, for when Redis is unavailable. `Limiter` is the one to call: a named
bucket in Redis, shared by every API instance, or in this process while Redis is unavailable.
"""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from chalicelib.redis.circuit import RedisCircuit

# gcra(key, rate_per_s, burst, cost, now_ms) -> {allowed 0/1, retry_after_ms, remaining, reset_ms}
GCRA_LUA = """
local function gcra(key, rate, burst, cost, now)
  local interval = 1000 / rate
  local tolerance = interval * burst
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + cost * interval
  local allow_at = new_tat - tolerance
  if now < allow_at then
    return {0, math.ceil(allow_at - now), math.floor((tolerance - (tat - now)) / interval), math.ceil(tat - now)}
  end
  redis.call('SET', key, tostring(new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
  return {1, 0, math.floor((tolerance - (new_tat - now)) / interval), math.ceil(new_tat - now)}
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

LIMIT_SCRIPT = (
    GCRA_LUA
    + """
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), now_ms())
"""
)


@dataclass(frozen=True)
class Decision:
    """A limiter's answer for one request."""

    allowed: bool
    retry_after_ms: int  # when a refused request could pass (0 when allowed)
    remaining: int  # units left in the bucket after this request
    reset_ms: int  # until the bucket is full again
    limit: int  # the burst
    window_s: int  # the burst's worth of time at the rate

    @classmethod
    def from_script(cls, answer: list[int], rate_per_s: int, burst: int) -> "Decision":
        allowed, retry_after_ms, remaining, reset_ms = (int(x) for x in answer[:4])
        return cls(bool(allowed), retry_after_ms, max(0, remaining), reset_ms, burst, window_s(rate_per_s, burst))


def rate_limit_headers(policy: str, decision: Decision) -> dict[str, str]:
    """The RateLimit-Policy and RateLimit fields (IETF httpapi draft), and Retry-After when refused."""
    headers = {
        "RateLimit-Policy": f'"{policy}";q={decision.limit};w={decision.window_s}',
        "RateLimit": f'"{policy}";r={decision.remaining};t={math.ceil(decision.reset_ms / 1000)}',
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after_ms / 1000)))
    return headers


def window_s(rate_per_s: int, burst: int) -> int:
    """The time a full burst takes to come back at the rate, in whole seconds (at least 1)."""
    return max(1, math.ceil(burst / rate_per_s))


class LocalLimiter:
    """GCRA in this process only: each API instance then allows the rate on its own."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, key: str, rate_per_s: int, burst: int, cost: int) -> Decision:
        interval = 1000 / rate_per_s
        tolerance = interval * burst
        now = self._clock() * 1000
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + cost * interval
            allow_at = new_tat - tolerance
            if now < allow_at:
                remaining = math.floor((tolerance - (tat - now)) / interval)
                answer = [0, math.ceil(allow_at - now), remaining, math.ceil(tat - now)]
            else:
                self._tat[key] = new_tat
                if len(self._tat) > 100_000:  # forget the idle ones rather than grow without end
                    self._tat = {k: v for k, v in self._tat.items() if v > now}
                answer = [1, 0, math.floor((tolerance - (new_tat - now)) / interval), math.ceil(new_tat - now)]
        return Decision.from_script(answer, rate_per_s, burst)


class Limiter:
    """Named buckets: in Redis (every API instance shares them), in this process while Redis is unavailable."""

    def __init__(self, client: redis.Redis, circuit: RedisCircuit, local: LocalLimiter | None = None) -> None:
        self._circuit = circuit
        self._local = local or LocalLimiter()
        self._script = client.register_script(LIMIT_SCRIPT)

    def check(self, bucket: str, rate_per_s: int, burst: int, cost: int) -> Decision:
        """Charge `cost` units to the bucket (a Redis key) if they fit; say where it stands."""
        if self._circuit.is_closed():
            try:
                answer = self._script(keys=[bucket], args=[rate_per_s, burst, cost])
            except redis.RedisError as exc:
                self._circuit.record_failure(exc)
            else:
                self._circuit.record_success()
                return Decision.from_script([int(x) for x in answer], rate_per_s, burst)
        return self._local.check(bucket, rate_per_s, burst, cost)
