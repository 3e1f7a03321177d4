"""Who may call: API keys with their scopes and rate limits, the admin token, and a limit on
failed attempts per client address.

A request with a cached key costs one Redis round trip (`AUTH_SCRIPT`: the cached key, its scope,
and its rate limit, atomically) and no MySQL. A key not in the cache is read from MySQL once for
every API instance (single flight) and kept `KEY_CACHE_TTL_S`; an unknown token's absence is kept
`KEY_ABSENT_TTL_S`. Revoking a key deletes its cached copy, so it stops at once; if that delete
fails (Redis unreachable), the copy lapses within `KEY_CACHE_TTL_S`. While MySQL is unavailable,
a key seen in the last `KEY_STALE_TTL_S` is still honoured (writes keep going to the queue). With
Redis unavailable, each API instance reads a key from MySQL once per `KEY_CACHE_TTL_S` (within the
read budget) and applies the limits on its own (`LocalLimiter`).

Every attempt that fails (no key, a malformed or unknown or revoked one, a wrong admin token),
and every key not in the cache, costs one unit of the caller's address bucket
(`AUTH_FAILURE_RATE_PER_S`, `AUTH_FAILURE_BURST`): guessing keys is slow, and a flood of random
tokens never reaches MySQL faster than that.
"""

import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from chalicelib.config import Settings
from chalicelib.errors import (
    DatabaseUnavailableError,
    DependencyUnavailableError,
    ForbiddenError,
    PayloadTooLargeError,
    RateLimitedError,
    SluiceError,
    UnauthorizedError,
)
from chalicelib.keys.model import SCOPES, ApiKey, Principal, looks_like_token, token_hash
from chalicelib.keys.sources import LUA_SOURCE_ALLOWED, source_allowed
from chalicelib.keys.store import KeyStore
from chalicelib.redis.cache import Cache, Loaded
from chalicelib.redis.circuit import RedisCircuit
from chalicelib.redis.ratelimit import GCRA_LUA, LIMIT_SCRIPT, Decision, LocalLimiter

logger = logging.getLogger(__name__)

KIND = "apikey"
ALL_ACCESS = Principal(key_id="", scopes=list(SCOPES), sources=["*"])  # API_KEYS_REQUIRED=false only
UNAUTHORIZED = "a valid API key is required: Authorization: Bearer <key>"

# KEYS: 1 the key's cached copy (Cache's `:data`), 2 its rate bucket, 3 its last-used marker.
# ARGV: 1 cost (entries), 2 the scope needed, 3 how often last_used_at is written (s),
#       4 "1" to accept a copy past its fresh period, 5... the sources the request touches
#       (each must match one of the key's patterns).
AUTH_SCRIPT = (
    GCRA_LUA
    + LUA_SOURCE_ALLOWED
    + """
local raw = redis.call('GET', KEYS[1])
if not raw then return {0} end
local entry = cjson.decode(raw)
local now = now_ms()
if ARGV[4] ~= '1' and entry['fresh_until'] * 1000 < now then return {0} end
local key = entry['v']
if key == cjson.null then return {1} end
if key['revoked'] then return {2} end
local has_scope = false
for _, scope in ipairs(key['scopes']) do if scope == ARGV[2] then has_scope = true end end
if not has_scope then return {3} end
for i = 5, #ARGV do
  if not source_allowed(ARGV[i], key['sources']) then return {6, ARGV[i]} end
end
local cost = tonumber(ARGV[1])
if cost > key['burst'] then return {4, raw} end
local d = gcra(KEYS[2], key['rate_per_s'], key['burst'], cost, now)
local touch = 0
if d[1] == 1 and redis.call('SET', KEYS[3], '1', 'NX', 'EX', tonumber(ARGV[3])) then touch = 1 end
return {5, raw, d[1], d[2], d[3], d[4], touch}
"""
)
_MISS, _UNKNOWN, _REVOKED, _NO_SCOPE, _TOO_LARGE, _CHECKED, _NO_SOURCE = range(7)
_MEMORY_ENTRIES = 10_000  # keys one process remembers while Redis is unavailable


@dataclass(frozen=True)
class Admission:
    """A request let in: who it is, and where it stands with its limit."""

    principal: Principal
    decision: Decision | None = None

    def headers(self) -> dict[str, str]:
        return rate_limit_headers("key", self.decision) if self.decision else {}


def rate_limit_headers(policy: str, decision: Decision) -> dict[str, str]:
    """The RateLimit-Policy and RateLimit fields (IETF httpapi draft), and Retry-After when refused."""
    headers = {
        "RateLimit-Policy": f'"{policy}";q={decision.limit};w={decision.window_s}',
        "RateLimit": f'"{policy}";r={decision.remaining};t={math.ceil(decision.reset_ms / 1000)}',
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after_ms / 1000)))
    return headers


class Gate:
    def __init__(
        self,
        client: redis.Redis,
        circuit: RedisCircuit,
        cache: Cache,
        store: KeyStore,
        settings: Settings,
        admin_token: Callable[[], str],
        local: LocalLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = client
        self._circuit = circuit
        self._cache = cache
        self._store = store
        self._settings = settings
        self._admin_token = admin_token
        self._local = local or LocalLimiter()
        self._clock = clock
        self._memory: dict[str, tuple[float, dict[str, Any] | None]] = {}  # hash -> (until, key)
        self._memory_lock = threading.Lock()
        self._auth = client.register_script(AUTH_SCRIPT)
        self._limit = client.register_script(LIMIT_SCRIPT)

    # --- API keys ---------------------------------------------------------------------------

    def check_token(self, token: str | None, address: str) -> str:
        """The token, if it has a key's shape; 401 (or 429) without reading anything otherwise."""
        if token is None or not looks_like_token(token):
            if self._settings.api_keys_required:
                raise self._failed(address)
            return ""
        return token

    def admit_key(
        self, token: str | None, address: str, scope: str, cost: int, sources: list[str] | None = None
    ) -> Admission:
        """Let a request in with its key, charging `cost` units to the key's limit; raise 401,
        403 (a scope or a source the key lacks), 413 or 429 otherwise. A refused request is not
        charged to the key."""
        if not self._settings.api_keys_required:
            return Admission(ALL_ACCESS)
        token = self.check_token(token, address)
        hashed = token_hash(token)
        wanted = sorted(set(sources or []))
        answer = self._check_in_redis(hashed, scope, cost, wanted)
        if answer is not None and answer[0] == _MISS:
            failure: DependencyUnavailableError | None = None
            try:
                loaded: Loaded | None = self._load(hashed, address)
            except DependencyUnavailableError as exc:
                loaded, failure = None, exc
            # MySQL could not tell (unavailable, or every read slot busy): a key seen in the last
            # KEY_STALE_TTL_S still lets writes in, so an outage of MySQL does not stop the queue.
            stale = loaded is None or loaded.source == "stale"
            answer = self._check_in_redis(hashed, scope, cost, wanted, accept_stale=stale)
            if stale and (answer is None or answer[0] == _MISS):
                raise failure or DatabaseUnavailableError("MySQL is unavailable and this key was not seen recently")
            key = loaded.value if loaded else None
            if answer is None or answer[0] == _MISS:
                return self._check_locally(key, address, scope, cost, wanted, charged=True)
            return self._outcome(answer, address, cost, charged=True)
        if answer is None:  # Redis unavailable
            return self._check_locally(self._remembered(hashed), address, scope, cost, wanted)
        return self._outcome(answer, address, cost)

    def _check_in_redis(
        self, hashed: str, scope: str, cost: int, sources: list[str], *, accept_stale: bool = False
    ) -> list[Any] | None:
        if not self._circuit.is_closed():
            return None
        tag = self._cache.tag(KIND, hashed)
        try:
            answer = list(
                self._auth(
                    keys=[f"{tag}:data", f"{tag}:rate", f"{tag}:used"],
                    args=[cost, scope, self._settings.key_last_used_interval_s, int(accept_stale), *sources],
                )
            )
        except redis.RedisError as exc:
            self._circuit.record_failure(exc)
            return None
        self._circuit.record_success()
        return answer

    def _outcome(self, answer: list[Any], address: str, cost: int, *, charged: bool = False) -> Admission:
        status = int(answer[0])
        if status in (_UNKNOWN, _REVOKED):
            raise self._failed(address, charge=not charged)
        if status == _NO_SCOPE:
            raise ForbiddenError("this key may not do this")
        if status == _NO_SOURCE:
            raise _source_forbidden(_text(answer[1]))
        key = json.loads(answer[1])["v"]
        if status == _TOO_LARGE:
            raise _too_large(cost, int(key["burst"]))
        decision = Decision.from_script([int(x) for x in answer[2:6]], int(key["rate_per_s"]), int(key["burst"]))
        if not decision.allowed:
            raise _rate_limited(decision, "key")
        if int(answer[6]):
            self._touch(str(key["id"]))
        return Admission(Principal(str(key["id"]), list(key["scopes"]), list(key["sources"])), decision)

    def _check_locally(
        self,
        key: dict[str, Any] | None,
        address: str,
        scope: str,
        cost: int,
        sources: list[str],
        *,
        charged: bool = False,
    ) -> Admission:
        if key is None or key["revoked"]:
            raise self._failed(address, charge=not charged)
        if scope not in key["scopes"]:
            raise ForbiddenError("this key may not do this")
        for source in sources:
            if not source_allowed(source, list(key["sources"])):
                raise _source_forbidden(source)
        if cost > int(key["burst"]):
            raise _too_large(cost, int(key["burst"]))
        decision = self._local.check(f"key:{key['id']}", int(key["rate_per_s"]), int(key["burst"]), cost)
        if not decision.allowed:
            raise _rate_limited(decision, "key")
        return Admission(Principal(str(key["id"]), list(key["scopes"]), list(key["sources"])), decision)

    def _load(self, hashed: str, address: str) -> Loaded:
        """The key's cached form, read from MySQL once for all API instances (single flight) and
        cached. The one read is paid by its caller's address: a flood of random tokens is slow."""

        def ttls(value: dict[str, Any] | None) -> tuple[int, int]:
            if value is None:
                return self._settings.key_absent_ttl_s, 0
            return self._settings.key_cache_ttl_s, self._settings.key_stale_ttl_s

        def load() -> dict[str, Any] | None:
            self._charge_address(address)
            return self._load_from_mysql(hashed)

        return self._cache.get_or_load(KIND, hashed, load, ttls)

    def _remembered(self, hashed: str) -> dict[str, Any] | None:
        """The key as this process last read it from MySQL, for as long as Redis would keep it:
        while Redis is unavailable each key costs one MySQL read per KEY_CACHE_TTL_S per instance."""
        now = self._clock()
        with self._memory_lock:
            found = self._memory.get(hashed)
            if found is not None and found[0] > now:
                return found[1]
        key = self._load_from_mysql(hashed)
        ttl = self._settings.key_cache_ttl_s if key else self._settings.key_absent_ttl_s
        with self._memory_lock:
            if len(self._memory) >= _MEMORY_ENTRIES:
                self._memory = {h: v for h, v in self._memory.items() if v[0] > now}
            if len(self._memory) < _MEMORY_ENTRIES:
                self._memory[hashed] = (now + ttl, key)
        return key

    def _load_from_mysql(self, hashed: str) -> dict[str, Any] | None:
        key = self._store.by_hash(hashed)
        return key.cached() if key else None

    def _touch(self, key_id: str) -> None:
        try:
            self._store.touch(key_id)
        except SluiceError as exc:  # a missed last_used_at is no reason to refuse the request
            logger.warning("could not record that key %s was used: %s", key_id, exc.message)

    def forget(self, key: ApiKey) -> None:
        """Drop a key's cached copy (after a revocation): the next request reads MySQL."""
        ttl = self._settings.key_cache_ttl_s + self._settings.key_absent_ttl_s
        self._cache.invalidate(KIND, key.token_hash, ttl)

    # --- the admin token ------------------------------------------------------------------------

    def admit_admin(self, token: str | None, address: str) -> None:
        """Let the admin token in: 401 without a bearer token, 403 with another one (429 when the
        address has failed too often)."""
        if token is None:
            self._charge_address(address)
            raise UnauthorizedError("this needs an Authorization: Bearer <admin token> header")
        if not hmac.compare_digest(token.encode(), self._admin_token().encode()):
            self._charge_address(address)
            raise ForbiddenError("the token is not the admin token")

    # --- failures per client address ----------------------------------------------------------

    def _failed(self, address: str, *, charge: bool = True) -> SluiceError:
        """The error for a failed attempt, after charging the address (429 when it is over its limit)."""
        if charge:
            try:
                self._charge_address(address)
            except RateLimitedError as limited:
                return limited
        return UnauthorizedError(UNAUTHORIZED)

    def _charge_address(self, address: str) -> None:
        rate, burst = self._settings.auth_failure_rate_per_s, self._settings.auth_failure_burst
        decision = None
        if self._circuit.is_closed():
            try:
                bucket = f"{self._settings.redis_key_prefix}address:{{{address}}}"
                answer = self._limit(keys=[bucket], args=[rate, burst, 1])
                decision = Decision.from_script([int(x) for x in answer], rate, burst)
                self._circuit.record_success()
            except redis.RedisError as exc:
                self._circuit.record_failure(exc)
        if decision is None:
            decision = self._local.check(f"address:{address}", rate, burst, 1)
        if not decision.allowed:
            raise _rate_limited(decision, "address")


def _rate_limited(decision: Decision, policy: str) -> RateLimitedError:
    return RateLimitedError(
        "over the rate limit: nothing was done; try again after Retry-After seconds",
        headers=rate_limit_headers(policy, decision),
    )


def _source_forbidden(source: str) -> ForbiddenError:
    return ForbiddenError(f"this key may not use the source {source!r}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _too_large(cost: int, burst: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"{cost} entries are more than this key's burst of {burst}: send smaller batches")
