"""The log queue's consumer: one SQS batch per invocation, stored by the writer.

What MySQL cannot take now is tried again inside the invocation, with a short growing backoff,
while the function has time for another attempt; so an outage shorter than that costs a delay,
never a trip to the dead-letter queue. What still cannot be stored goes back to SQS alone (a
partial batch response, `batchItemFailures`) and returns after a short, growing delay (by its
receive count) instead of the queue's whole visibility timeout. One bad message never fails
the others: the writer sets bad entries aside and fails only the messages of rows it cannot store.
"""

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.consumer.writer import LogWriter, WriteResult
from chalicelib.errors import DependencyUnavailableError
from chalicelib.logs.queue import LogQueue
from chalicelib.metrics import PipelineMetrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How the consumer retries: inside the invocation, then through SQS."""

    first_delay_s: float  # CONSUMER_RETRY_FIRST_MS: the first wait inside an invocation; doubles
    max_delay_s: float  # CONSUMER_RETRY_MAX_MS: the longest wait inside an invocation
    attempt_s: float  # how long one attempt may take (MySQL's connect + read timeouts)
    redelivery_base_s: int  # REDELIVERY_DELAY_BASE_S: a given-back message's delay on its 1st receive
    redelivery_max_s: int  # REDELIVERY_DELAY_MAX_S: the longest such delay

    def redelivery_delay_s(self, receive_count: int) -> int:
        """Seconds before a message given back on its `receive_count`-th receive is seen again."""
        return int(min(self.redelivery_base_s * 2 ** max(receive_count - 1, 0), self.redelivery_max_s))


class LogConsumer:
    def __init__(
        self,
        writer: LogWriter,
        queue: LogQueue,
        policy: RetryPolicy,
        metrics: PipelineMetrics | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writer = writer
        self._queue = queue
        self._policy = policy
        self._metrics = metrics
        self._sleep = sleep
        self._clock = clock

    def consume(self, records: Sequence[Mapping[str, Any]], remaining_ms: Callable[[], int]) -> dict[str, Any]:
        """Store a batch of SQS records; return the partial batch response (and what was done)."""
        result = self._write_retrying(records, remaining_ms)
        failed = set(result.failed_messages)
        if failed:
            self._delay([r for r in records if r.get("messageId") in failed])
        if self._metrics is not None:
            self._metrics.batch(len(records), result)
        return {
            "batchItemFailures": [{"itemIdentifier": message_id} for message_id in sorted(failed)],
            **result.to_dict(),
        }

    def _write_retrying(self, records: Sequence[Mapping[str, Any]], remaining_ms: Callable[[], int]) -> WriteResult:
        # The last attempt must be able to run its whole course before the function times out.
        give_up_at = self._clock() + remaining_ms() / 1000 - self._policy.attempt_s
        delay = self._policy.first_delay_s
        attempt = 1
        while True:
            try:
                return self._writer.write(records)
            except DependencyUnavailableError as exc:
                if self._clock() + delay > give_up_at:
                    logger.warning(
                        "MySQL still unavailable after %d attempts; giving the batch back to SQS: %s",
                        attempt,
                        exc.message,
                    )
                    ids = tuple(str(r.get("messageId", "")) for r in records)
                    return WriteResult(stored=0, duplicates=0, rejected=0, failed_messages=ids)
                logger.warning("MySQL unavailable (attempt %d); retrying in %.2fs: %s", attempt, delay, exc.message)
            self._sleep(delay)
            delay = min(delay * 2, self._policy.max_delay_s)
            attempt += 1

    def _delay(self, records: Sequence[Mapping[str, Any]]) -> None:
        receipts = [
            (str(r["receiptHandle"]), self._policy.redelivery_delay_s(_receive_count(r)))
            for r in records
            if r.get("receiptHandle")
        ]
        self._queue.delay_redelivery(receipts)


def _receive_count(record: Mapping[str, Any]) -> int:
    try:
        return int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1
