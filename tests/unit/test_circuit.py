"""The Redis circuit breaker: skip Redis for a cool-down once it is clearly unavailable."""

import redis

from chalicelib.redis.circuit import RedisCircuit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def refused() -> redis.ConnectionError:
    """What redis-py raises when nothing listens: a ConnectionError raised while handling the refusal."""
    exc = redis.ConnectionError("Error 111 connecting to 127.0.0.1:6380. Connection refused.")
    exc.__context__ = ConnectionRefusedError(111, "Connection refused")
    return exc


def test_a_refused_connection_opens_the_circuit_for_the_cool_down():
    clock = Clock()
    circuit = RedisCircuit(5.0, clock=clock)
    assert circuit.is_closed()
    # WHEN Redis refuses a connection THEN it is skipped for 5 s, and tried again after
    circuit.record_failure(refused())
    clock.now += 4.9
    assert not circuit.is_closed()
    clock.now += 0.2
    assert circuit.is_closed()


def test_timeouts_open_it_only_when_several_come_in_a_row():
    circuit = RedisCircuit(5.0, failures_to_open=3, clock=Clock())
    # a slow moment (a busy process) is not an outage
    circuit.record_failure(redis.TimeoutError("timeout"))
    circuit.record_failure(redis.TimeoutError("timeout"))
    assert circuit.is_closed()
    circuit.record_success()
    circuit.record_failure(redis.TimeoutError("timeout"))
    circuit.record_failure(redis.TimeoutError("timeout"))
    assert circuit.is_closed()
    # three in a row are
    circuit.record_failure(redis.TimeoutError("timeout"))
    assert not circuit.is_closed()
