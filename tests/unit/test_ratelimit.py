"""The GCRA limit as each API instance applies it alone (LocalLimiter), with an injected clock;
the same arithmetic runs in Redis (tests/functional/test_keys.py)."""

from chalicelib.redis.ratelimit import LocalLimiter, rate_limit_headers, window_s


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_burst_passes_then_the_rate_refills_it():
    clock = Clock()
    limiter = LocalLimiter(clock)
    # GIVEN 2 entries/s with a burst of 4: the burst passes at once
    assert [limiter.check("k", 2, 4, 1).allowed for _ in range(4)] == [True] * 4
    refused = limiter.check("k", 2, 4, 1)
    assert not refused.allowed and refused.retry_after_ms == 500 and refused.remaining == 0
    # WHEN half a second passes THEN one more entry passes
    clock.now += 0.5
    assert limiter.check("k", 2, 4, 1).allowed
    assert not limiter.check("k", 2, 4, 1).allowed


def test_a_request_costs_its_entries_and_a_refused_one_costs_nothing():
    clock = Clock()
    limiter = LocalLimiter(clock)
    assert limiter.check("k", 10, 10, 7).remaining == 3
    refused = limiter.check("k", 10, 10, 4)  # 4 > the 3 left
    assert not refused.allowed and refused.retry_after_ms == 100
    assert limiter.check("k", 10, 10, 3).allowed  # the refused request took nothing


def test_keys_have_separate_buckets():
    limiter = LocalLimiter(Clock())
    assert limiter.check("a", 1, 1, 1).allowed
    assert not limiter.check("a", 1, 1, 1).allowed
    assert limiter.check("b", 1, 1, 1).allowed


def test_the_headers_describe_the_policy_and_when_to_come_back():
    clock = Clock()
    limiter = LocalLimiter(clock)
    limiter.check("k", 5, 10, 10)
    refused = limiter.check("k", 5, 10, 1)
    headers = rate_limit_headers("key", refused)
    assert headers == {
        "RateLimit-Policy": '"key";q=10;w=2',
        "RateLimit": '"key";r=0;t=2',
        "Retry-After": "1",
    }
    assert window_s(100, 500) == 5 and window_s(1000, 1) == 1
