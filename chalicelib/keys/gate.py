"""Who may call: API keys with their scopes and rate limits, and the admin token.

A request is let in before its body is read (`admit_key`): the key, its scope and one unit of its
limit, in one Redis round trip (`AUTH_SCRIPT`) with no MySQL. Once the body is parsed, `charge`
checks the sources it names (against the key already read) and charges the rest of its cost (one
unit per entry), one more round trip only when that is more than one unit.

A key not in the cache is read from MySQL once for every API instance (single flight) and kept
`KEY_CACHE_TTL_S`; an unknown token's absence is kept `KEY_ABSENT_TTL_S`. Each such read costs its
caller's address one unit (chalicelib/web/callers.py) and one of `KEY_LOOKUP_RATE_PER_S` across
every instance, before MySQL is asked. While MySQL cannot answer, a key seen in the last
`KEY_STALE_TTL_S` is still honoured (writes keep going to the queue). With Redis unavailable, each
API instance reads a key from MySQL once per `KEY_CACHE_TTL_S` (within the key read slots) and
applies the limits on its own.

Revoking a key writes a revocation mark beside its cached copy that outlives every copy, and the
check reads it first: no cache honours a revoked key, stale or not. When Redis cannot take the mark
the revocation answers 503 (the key is revoked in MySQL; repeating it completes it). The one gap:
an API instance that cannot reach Redis while others can uses what it read from MySQL during that
outage, for up to `KEY_CACHE_TTL_S`.

Every attempt that fails (no key, a malformed or unknown or revoked one, a wrong admin token) costs
the caller's address one unit (`AUTH_FAILURE_RATE_PER_S`, `AUTH_FAILURE_BURST`), before the body.
"""

import dataclasses
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
    BudgetExhaustedError,
    DatabaseUnavailableError,
    DependencyUnavailableError,
    ForbiddenError,
    PayloadTooLargeError,
    RateLimitedError,
    SluiceError,
    UnauthorizedError,
)
from chalicelib.keys.model import SCOPES, ApiKey, Principal, looks_like_token, token_hash
from chalicelib.keys.store import KeyStore
from chalicelib.redis.cache import Cache, Loaded
from chalicelib.redis.circuit import RedisCircuit
from chalicelib.redis.ratelimit import GCRA_LUA, Decision, Limiter, rate_limit_headers
from chalicelib.web.callers import CallerLimits, rate_limited

logger = logging.getLogger(__name__)

KIND = "apikey"
ALL_ACCESS = Principal(key_id="", scopes=list(SCOPES), sources=["*"])  # API_KEYS_REQUIRED=false only
UNAUTHORIZED = "a valid API key is required: Authorization: Bearer <key>"

# KEYS: 1 the key's cached copy (Cache's `:data`), 2 its rate bucket, 3 its last-used marker,
#       4 its revocation mark.
# ARGV: 1 the scope needed, 2 how often last_used_at is written (s), 3 "1" to accept a copy past
#       its fresh period. One unit is charged, before the scope is checked (a request the key may not
#       make still costs it): the request; `Gate.charge` charges the rest.
# A miss says whether a copy of a real key is there, past its fresh period (the token was valid).
AUTH_SCRIPT = (
    GCRA_LUA
    + """
if redis.call('EXISTS', KEYS[4]) == 1 then return {2} end
local raw = redis.call('GET', KEYS[1])
if not raw then return {0} end
local entry = cjson.decode(raw)
local now = now_ms()
local key = entry['v']
if ARGV[3] ~= '1' and entry['fresh_until'] * 1000 < now then return {0, key ~= cjson.null and 1 or 0} end
if key == cjson.null then return {1} end
if key['revoked'] then return {2} end
local d = gcra(KEYS[2], key['rate_per_s'], key['burst'], 1, now)
if d[1] == 0 then return {4, raw, d[1], d[2], d[3], d[4], 0} end
local has_scope = false
for _, scope in ipairs(key['scopes']) do if scope == ARGV[1] then has_scope = true end end
if not has_scope then return {3} end
local touch = 0
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', tonumber(ARGV[2])) then touch = 1 end
return {4, raw, d[1], d[2], d[3], d[4], touch}
"""
)
_MISS, _UNKNOWN, _REVOKED, _NO_SCOPE, _CHECKED = range(5)
# What a service calls once a request's body is parsed: charge the request, already let in by its
# key, for this many entries of these sources (`Gate.charge`: 403, 413 or 429).
Charge = Callable[[int, list[str]], "Admission"]
_MEMORY_ENTRIES = 10_000  # keys one process remembers while Redis is unavailable


@dataclass(frozen=True)
class Admission:
    """A request let in: who it is, and where it stands with its key's limit."""

    principal: Principal
    decision: Decision | None = None  # None: API_KEYS_REQUIRED=false, no limit
    bucket: str = ""  # the key's rate bucket
    rate_per_s: int = 0
    burst: int = 0

    def headers(self) -> dict[str, str]:
        return rate_limit_headers("key", self.decision) if self.decision else {}


class Gate:
    def __init__(
        self,
        client: redis.Redis,
        circuit: RedisCircuit,
        cache: Cache,
        store: KeyStore,
        settings: Settings,
        admin_token: Callable[[], str],
        limiter: Limiter,
        callers: CallerLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = client
        self._circuit = circuit
        self._cache = cache
        self._store = store
        self._settings = settings
        self._admin_token = admin_token
        self._limiter = limiter
        self._callers = callers
        self._clock = clock
        self._memory: dict[str, tuple[float, dict[str, Any] | None]] = {}  # hash -> (until, key)
        self._memory_lock = threading.Lock()
        self._auth = client.register_script(AUTH_SCRIPT)

    # --- API keys ---------------------------------------------------------------------------

    def admit_key(self, token: str | None, address: str, scope: str) -> Admission:
        """Let a request in before its body is read: its key, the scope, one unit of the key's limit.
        401 (429 once the address has failed too often), 403 without the scope, 429 over the limit."""
        if not self._settings.api_keys_required:
            return Admission(ALL_ACCESS)
        if token is None or not looks_like_token(token):
            raise self._failed(address)
        hashed = token_hash(token)
        answer = self._check_in_redis(hashed, scope)
        if answer is None:  # Redis unavailable
            key, looked_up = self._remembered(hashed, address)
            return self._check_locally(key, hashed, address, scope, charged=looked_up)
        if self._memory:  # Redis answers again: what this process read during the outage is done with
            with self._memory_lock:
                self._memory.clear()
        if answer[0] != _MISS:
            return self._outcome(answer, hashed, address)
        # A key whose copy is only past its fresh period is refreshed without charging its caller's
        # address: the token was valid, and a flood of made-up ones from the same address (a NAT)
        # must not hold it back.
        known = len(answer) > 1 and int(answer[1]) == 1
        failure: DependencyUnavailableError | None = None
        try:
            loaded: Loaded | None = self._load(hashed, address, charge_address=not known)
        except DependencyUnavailableError as exc:
            loaded, failure = None, exc
        # MySQL could not tell (unavailable, every key read slot busy, lookups at their limit): a key
        # seen in the last KEY_STALE_TTL_S still lets writes in, so an outage does not stop the queue.
        stale = loaded is None or loaded.source == "stale"
        answer = self._check_in_redis(hashed, scope, accept_stale=stale)
        if stale and (answer is None or answer[0] == _MISS):
            raise failure or DatabaseUnavailableError("MySQL is unavailable and this key was not seen recently")
        if answer is None or answer[0] == _MISS:
            return self._check_locally(loaded.value if loaded else None, hashed, address, scope, charged=True)
        return self._outcome(answer, hashed, address, charged=True)

    def charge(self, admission: Admission, cost: int, sources: list[str]) -> Admission:
        """The rest of a request's cost once its body is read: every source it names must be the key's
        (403), `cost` units may not pass the key's burst (413), and those past the first are charged (429)."""
        for source in sorted(set(sources)):
            if not admission.principal.may_use_source(source):
                raise ForbiddenError(f"this key may not use the source {source!r}")
        if admission.decision is None:
            return admission
        if cost > admission.burst:
            raise PayloadTooLargeError(
                f"{cost} entries are more than this key's burst of {admission.burst}: send smaller batches"
            )
        if cost <= 1:
            return admission
        decision = self._limiter.check(admission.bucket, admission.rate_per_s, admission.burst, cost - 1)
        if not decision.allowed:
            raise rate_limited(decision, "key")
        return dataclasses.replace(admission, decision=decision)

    def _check_in_redis(self, hashed: str, scope: str, *, accept_stale: bool = False) -> list[Any] | None:
        if not self._circuit.is_closed():
            return None
        tag = self._cache.tag(KIND, hashed)
        try:
            answer = list(
                self._auth(
                    keys=[f"{tag}:data", f"{tag}:rate", f"{tag}:used", f"{tag}:revoked"],
                    args=[scope, self._settings.key_last_used_interval_s, int(accept_stale)],
                )
            )
        except redis.RedisError as exc:
            self._circuit.record_failure(exc)
            return None
        self._circuit.record_success()
        return answer

    def _outcome(self, answer: list[Any], hashed: str, address: str, *, charged: bool = False) -> Admission:
        status = int(answer[0])
        if status in (_UNKNOWN, _REVOKED):
            raise self._failed(address, charge=not charged)
        if status == _NO_SCOPE:
            raise ForbiddenError("this key may not do this")
        key = json.loads(answer[1])["v"]
        rate, burst = int(key["rate_per_s"]), int(key["burst"])
        decision = Decision.from_script([int(x) for x in answer[2:6]], rate, burst)
        if not decision.allowed:
            raise rate_limited(decision, "key")
        if int(answer[6]):
            self._touch(str(key["id"]))
        return self._admission(key, hashed, decision)

    def _check_locally(
        self, key: dict[str, Any] | None, hashed: str, address: str, scope: str, *, charged: bool = False
    ) -> Admission:
        if key is None or key["revoked"]:
            raise self._failed(address, charge=not charged)
        rate, burst = int(key["rate_per_s"]), int(key["burst"])
        decision = self._limiter.check(self._bucket(hashed), rate, burst, 1)
        if not decision.allowed:
            raise rate_limited(decision, "key")
        if scope not in key["scopes"]:
            raise ForbiddenError("this key may not do this")
        return self._admission(key, hashed, decision)

    def _admission(self, key: dict[str, Any], hashed: str, decision: Decision) -> Admission:
        principal = Principal(str(key["id"]), list(key["scopes"]), list(key["sources"]))
        return Admission(principal, decision, self._bucket(hashed), int(key["rate_per_s"]), int(key["burst"]))

    def _bucket(self, hashed: str) -> str:
        return f"{self._cache.tag(KIND, hashed)}:rate"

    def _load(self, hashed: str, address: str, *, charge_address: bool) -> Loaded:
        """The key's cached form, read from MySQL once for all API instances (single flight) and cached."""

        def ttls(value: dict[str, Any] | None) -> tuple[int, int]:
            if value is None:
                return self._settings.key_absent_ttl_s, 0
            return self._settings.key_cache_ttl_s, self._settings.key_stale_ttl_s

        return self._cache.get_or_load(KIND, hashed, lambda: self._lookup(hashed, address, charge_address), ttls)

    def _remembered(self, hashed: str, address: str) -> tuple[dict[str, Any] | None, bool]:
        """The key as this process last read it from MySQL, for as long as Redis would keep it, and
        whether it was read now (and its caller's address charged for it): while Redis is unavailable
        each key costs one MySQL read per KEY_CACHE_TTL_S per instance."""
        now = self._clock()
        with self._memory_lock:
            found = self._memory.get(hashed)
            if found is not None and found[0] > now:
                return found[1], False
        key = self._lookup(hashed, address)
        ttl = self._settings.key_cache_ttl_s if key else self._settings.key_absent_ttl_s
        with self._memory_lock:
            if len(self._memory) >= _MEMORY_ENTRIES:
                self._memory = {h: v for h, v in self._memory.items() if v[0] > now}
            if len(self._memory) < _MEMORY_ENTRIES:
                self._memory[hashed] = (now + ttl, key)
        return key, True

    def _lookup(self, hashed: str, address: str, charge_address: bool = True) -> dict[str, Any] | None:
        """Read a key from MySQL, paid first by its caller's address (unless the key is known) and from
        the lookups of every instance (KEY_LOOKUP_RATE_PER_S): made-up tokens cannot reach MySQL faster."""
        if charge_address:
            self._callers.charge_failure(address)
        rate, burst = self._settings.key_lookup_rate_per_s, self._settings.key_lookup_burst
        if not self._limiter.check(f"{self._settings.redis_key_prefix}key-lookups", rate, burst, 1).allowed:
            raise BudgetExhaustedError("too many keys not in the cache are being looked up: try again shortly")
        key = self._store.by_hash(hashed)
        return key.cached() if key else None

    def _touch(self, key_id: str) -> None:
        try:
            self._store.touch(key_id)
        except SluiceError as exc:  # a missed last_used_at is no reason to refuse the request
            logger.warning("could not record that key %s was used: %s", key_id, exc.message)

    def revoke(self, key: ApiKey) -> None:
        """Make every cache refuse a key revoked in MySQL: its revocation mark, then its copy dropped.
        503 when Redis cannot take the mark (repeating the revocation completes it)."""
        tag = self._cache.tag(KIND, key.token_hash)
        ttl = self._revocation_ttl_s()
        try:
            self._redis.set(f"{tag}:revoked", "1", ex=ttl)
        except redis.RedisError as exc:  # tried even while the circuit is open: this must not be skipped
            self._circuit.record_failure(exc)
            raise DependencyUnavailableError(
                "redis",
                "the key is revoked in MySQL, but the cache could not be told and may honour it for a while:"
                " repeat the revocation to complete it",
            ) from exc
        self._cache.invalidate(KIND, key.token_hash, ttl)

    def _revocation_ttl_s(self) -> int:
        """How long a revocation mark lives: longer than any copy of the key a cache holds (fresh, then
        stale) plus the longest a load begun before the revocation may take to write one."""
        load_s = self._settings.single_flight_wait_ms / 1000 + self._settings.mysql.connect_timeout_s
        load_s += self._settings.mysql.read_timeout_s
        return self._settings.key_cache_ttl_s + self._settings.key_stale_ttl_s + math.ceil(load_s) + 1

    # --- the admin token ------------------------------------------------------------------------

    def admit_admin(self, token: str | None, address: str) -> None:
        """Let the admin token in: 401 without a bearer token, 403 with another one (429 when the
        address has failed too often)."""
        if token is None:
            self._callers.charge_failure(address)
            raise UnauthorizedError("this needs an Authorization: Bearer <admin token> header")
        if not hmac.compare_digest(token.encode(), self._admin_token().encode()):
            self._callers.charge_failure(address)
            raise ForbiddenError("the token is not the admin token")

    def _failed(self, address: str, *, charge: bool = True) -> SluiceError:
        """The error for a failed attempt, after charging the address (429 when it is over its limit)."""
        if charge:
            try:
                self._callers.charge_failure(address)
            except RateLimitedError as limited:
                return limited
        return UnauthorizedError(UNAUTHORIZED)
