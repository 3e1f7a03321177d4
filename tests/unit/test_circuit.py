"""The Redis circuit breaker skips Redis for a cool-down after a failure."""

from chalicelib.cache import RedisCircuit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_redis_is_skipped_during_the_cool_down_and_tried_after_it():
    clock = Clock()
    circuit = RedisCircuit(5.0, clock=clock)
    assert circuit.is_closed()
    # WHEN Redis fails
    circuit.record_failure(ConnectionError("refused"))
    # THEN it is skipped for 5 s, and tried again after
    clock.now += 4.9
    assert not circuit.is_closed()
    clock.now += 0.2
    assert circuit.is_closed()
