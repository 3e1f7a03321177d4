"""Limits per client address: requests to the routes anyone may call, and failed attempts to
authenticate (with the key lookups they cause).

An IPv4 address is one bucket; an IPv6 address counts by its /64, the block one subscriber or host
is given, so a client rotating addresses inside it shares one bucket. Buckets live in Redis
(every API instance shares them) and in each process while Redis is unavailable
(chalicelib/redis/ratelimit.py).
"""

import ipaddress

from chalicelib.config import Settings
from chalicelib.errors import RateLimitedError
from chalicelib.redis.ratelimit import Decision, Limiter, rate_limit_headers

IPV6_GROUP_BITS = 64


def address_group(address: str) -> str:
    """The bucket an address counts in: an IPv4 address as it is, an IPv6 address's /64 (an
    IPv4-mapped IPv6 address as its IPv4 address); anything else (no address) as it is."""
    try:
        parsed = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_GROUP_BITS), strict=False))
    return str(parsed)


class CallerLimits:
    """The two per-address limits: anonymous requests (PUBLIC_*) and failures (AUTH_FAILURE_*)."""

    def __init__(self, limiter: Limiter, settings: Settings) -> None:
        self._limiter = limiter
        self._settings = settings

    def admit_public(self, address: str) -> Decision:
        """Count one request to a route anyone may call; 429 when its address is over PUBLIC_RATE_PER_S."""
        rate, burst = self._settings.public_rate_per_s, self._settings.public_burst
        return self._charge("public", address, rate, burst)

    def charge_failure(self, address: str) -> None:
        """Count one failed attempt (or one key lookup) of an address; 429 past AUTH_FAILURE_RATE_PER_S."""
        self._charge("address", address, self._settings.auth_failure_rate_per_s, self._settings.auth_failure_burst)

    def _charge(self, policy: str, address: str, rate: int, burst: int) -> Decision:
        bucket = f"{self._settings.redis_key_prefix}{policy}:{{{address_group(address)}}}"
        decision = self._limiter.check(bucket, rate, burst, 1)
        if not decision.allowed:
            raise rate_limited(decision, policy)
        return decision


def rate_limited(decision: Decision, policy: str) -> RateLimitedError:
    """The 429 of a refused request, with the limit's RateLimit fields and Retry-After."""
    return RateLimitedError(
        "over the rate limit: nothing was done; try again after Retry-After seconds",
        headers=rate_limit_headers(policy, decision),
    )
