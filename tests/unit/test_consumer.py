"""The consumer's retries: inside the invocation while it has time, then back to SQS with a growing delay."""

from typing import Any

import pytest

from chalicelib.consumer.consumer import LogConsumer, RetryPolicy
from chalicelib.consumer.writer import WriteResult
from chalicelib.errors import DatabaseError, DatabaseUnavailableError

POLICY = RetryPolicy(first_delay_s=0.2, max_delay_s=2, attempt_s=22, redelivery_base_s=5, redelivery_max_s=300)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FlakyWriter:
    """Fails with MySQL unavailable `failures` times, then stores the batch (or fails its `bad` messages)."""

    def __init__(self, failures: int, bad: tuple[str, ...] = (), error: Exception | None = None) -> None:
        self.failures = failures
        self.bad = bad
        self.error = error
        self.calls = 0

    def write(self, messages: Any) -> WriteResult:
        self.calls += 1
        if self.error:
            raise self.error
        if self.calls <= self.failures:
            raise DatabaseUnavailableError("MySQL is unavailable")
        return WriteResult(stored=len(messages) - len(self.bad), duplicates=0, rejected=0, failed_messages=self.bad)


class RecordingQueue:
    def __init__(self) -> None:
        self.delayed: list[tuple[str, int]] = []

    def delay_redelivery(self, receipts: list[tuple[str, int]]) -> None:
        self.delayed.extend(receipts)


def records(*receive_counts: int) -> list[dict[str, Any]]:
    return [
        {"messageId": f"m{i}", "receiptHandle": f"r{i}", "attributes": {"ApproximateReceiveCount": str(n)}}
        for i, n in enumerate(receive_counts)
    ]


def consumer(writer: FlakyWriter, queue: RecordingQueue, clock: FakeClock) -> LogConsumer:
    return LogConsumer(writer, queue, POLICY, sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]


def test_an_outage_shorter_than_the_invocations_time_is_ridden_out_inside_it():
    # GIVEN MySQL unavailable for the first 6 attempts and an invocation with 60 s left
    clock, queue, writer = FakeClock(), RecordingQueue(), FlakyWriter(failures=6)
    # WHEN a batch is consumed
    answer = consumer(writer, queue, clock).consume(records(1, 1), lambda: 60_000)
    # THEN it was tried again after 0.2, 0.4, 0.8, 1.6, 2, 2 s, stored, and nothing went back to SQS
    assert clock.sleeps == [0.2, 0.4, 0.8, 1.6, 2, 2]
    assert answer == {"batchItemFailures": [], "stored": 2, "duplicates": 0, "rejected": 0}
    assert queue.delayed == []


def test_without_time_for_another_attempt_the_batch_goes_back_with_a_delay_by_receive_count():
    # GIVEN MySQL never available and 60 s left, of which an attempt may take 22 s
    clock, queue, writer = FakeClock(), RecordingQueue(), FlakyWriter(failures=10**6)
    # WHEN a batch whose messages were received 1, 3 and 9 times is consumed
    answer = consumer(writer, queue, clock).consume(records(1, 3, 9), lambda: 60_000)
    # THEN it kept trying until the last attempt could still finish in time (38 s), then gave every
    # message back, visible again after 5 s x 2^(receives - 1), at most 300 s
    assert sum(clock.sleeps) <= 60 - 22
    assert sum(clock.sleeps) + 2 > 60 - 22
    assert answer["batchItemFailures"] == [{"itemIdentifier": m} for m in ("m0", "m1", "m2")]
    assert queue.delayed == [("r0", 5), ("r1", 20), ("r2", 300)]


def test_with_less_time_left_than_one_attempt_it_gives_the_batch_back_at_once():
    clock, queue, writer = FakeClock(), RecordingQueue(), FlakyWriter(failures=1)
    answer = consumer(writer, queue, clock).consume(records(2), lambda: 2_000)
    assert writer.calls == 1
    assert clock.sleeps == []
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m0"}]
    assert queue.delayed == [("r0", 10)]


def test_messages_the_writer_could_not_store_go_back_alone():
    clock, queue, writer = FakeClock(), RecordingQueue(), FlakyWriter(failures=0, bad=("m1",))
    answer = consumer(writer, queue, clock).consume(records(1, 1, 1), lambda: 60_000)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}], "stored": 2, "duplicates": 0, "rejected": 0}
    assert queue.delayed == [("r1", 5)]


def test_a_failure_a_retry_cannot_fix_fails_the_invocation():
    # GIVEN MySQL refusing the writer's statements (a missing privilege): a deployment mistake
    clock, queue = FakeClock(), RecordingQueue()
    writer = FlakyWriter(failures=0, error=DatabaseError("MySQL refused the statement (error 1142)"))
    # WHEN a batch is consumed THEN the invocation fails at once (every message returns after the
    # visibility timeout and, if nobody fixes it, reaches the DLQ to be redriven later)
    with pytest.raises(DatabaseError):
        consumer(writer, queue, clock).consume(records(1), lambda: 60_000)
    assert writer.calls == 1
