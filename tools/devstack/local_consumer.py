"""The SQS event source that `chalice local` lacks: feeds the log queue to the real consumer handler.

    python -m tools.devstack.local_consumer --stage local [--env NAME=VALUE ...] [--timeout-s SECONDS]

Like Lambda's SQS event source mapping with ReportBatchItemFailures, it runs at most
`maximum_concurrency` invocations at once, each with up to `batch_size` messages gathered for at
most the batching window; when the handler returns it deletes the messages its answer does not
name in `batchItemFailures`, and when it raises it deletes none. What is not deleted reappears
when its visibility ends (so SQS counts receives and moves repeat failures to the DLQ).
Each worker is a thread of this process, where Lambda would use separate environments.
"""

import argparse
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from chalice.local import LambdaContext

from tools.devstack.chalice_local import env_pair
from tools.devstack.processes import PARENT_ENV, die_with_parent
from tools.devstack.sqs_events import delete, lambda_event, receive, succeeded
from tools.stage import CONSUMER_FUNCTION, apply_stage_environment, function_settings

logger = logging.getLogger("sluice.local_consumer")
Handler = Callable[[dict[str, Any], Any], Any]


class LocalEventSource:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int,
        batching_window_s: float,
        max_concurrency: int,
        function_timeout_s: int,
        region: str,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._window_s = batching_window_s
        self._max_concurrency = max_concurrency
        self._timeout_ms = function_timeout_s * 1000
        self._region = region
        self._arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.invocations = 0
        self.failures = 0
        self.in_flight = 0
        self.peak_in_flight = 0

    def gather(self) -> list[dict[str, Any]]:
        """Receive up to batch_size messages, waiting at most the batching window after the first."""
        messages: list[dict[str, Any]] = []
        deadline: float | None = None
        while not self.stopping.is_set() and len(messages) < self._batch_size:
            if deadline is None:
                wait_s = 1  # long-poll for the first message, checking `stopping` every second
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait_s = min(int(remaining), 20)
            got = receive(self._sqs, self._queue_url, min(10, self._batch_size - len(messages)), wait_s)
            if got and deadline is None:
                deadline = time.monotonic() + self._window_s
            messages.extend(got)
            if not got and deadline is not None and wait_s == 0:
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return messages

    def invoke(self, messages: list[dict[str, Any]]) -> bool:
        """Run the handler on one batch; delete what it stored. True if it stored every message."""
        event = lambda_event(messages, self._arn, self._region)
        context = LambdaContext(CONSUMER_FUNCTION, 512, max_runtime_ms=self._timeout_ms)
        context.aws_request_id = str(uuid.uuid4())
        with self._lock:
            self.invocations += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            answer = self._handler(event, context)
        except Exception:
            with self._lock:
                self.failures += 1
            logger.exception("consumer failed on %d messages; SQS will deliver them again", len(messages))
            return False
        finally:
            with self._lock:
                self.in_flight -= 1
        done = succeeded(messages, answer)
        delete(self._sqs, self._queue_url, done)
        if len(done) < len(messages):
            with self._lock:
                self.failures += 1
            logger.warning("consumer gave back %d of %d messages", len(messages) - len(done), len(messages))
        return len(done) == len(messages)

    def _worker(self) -> None:
        while not self.stopping.is_set():
            try:
                messages = self.gather()
                if messages:
                    self.invoke(messages)
            except Exception:
                logger.exception("event source error; retrying in 1s")
                self.stopping.wait(1)

    def run(self) -> None:
        """Poll until `stopping` is set, with max_concurrency workers."""
        workers = [
            threading.Thread(target=self._worker, name=f"sqs-worker-{i}", daemon=True)
            for i in range(self._max_concurrency)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            while worker.is_alive():
                worker.join(timeout=0.5)


def build(stage: str, overrides: dict[str, str] | None = None, timeout_s: int | None = None) -> LocalEventSource:
    """An event source for the stage's log queue and its consume_logs handler; `timeout_s` stands
    for another function timeout than the stage's (the fault suite's short-visibility runs)."""
    apply_stage_environment(stage)
    os.environ.update(overrides or {})  # e.g. CONSUMER_MAX_CONCURRENCY for the benchmark
    import app as sluice_app  # imported after the stage's environment is in place, as in Lambda
    from chalicelib import wiring

    settings = wiring.SETTINGS
    sqs = wiring.get_sqs()
    queue_url = sqs.get_queue_url(QueueName=settings.log_queue_name)["QueueUrl"]
    return LocalEventSource(
        sqs,
        queue_url,
        sluice_app.consume_logs,
        batch_size=settings.consumer_batch_size,
        batching_window_s=settings.consumer_batch_window_s,
        max_concurrency=settings.consumer_max_concurrency,
        function_timeout_s=timeout_s or function_settings(stage, CONSUMER_FUNCTION).timeout_s,
        region=settings.aws_region,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--env", action="append", default=[], type=env_pair, metavar="NAME=VALUE")
    parser.add_argument("--timeout-s", type=int, help="the function timeout to give each invocation")
    args = parser.parse_args(argv)
    if PARENT_ENV in os.environ:  # started by make up (tools.devstack.serve): end with it
        die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    source = build(args.stage, dict(args.env), args.timeout_s)
    signal.signal(signal.SIGTERM, lambda *_: source.stopping.set())
    print(
        f"local event source: {source._queue_url} -> consume_logs "
        f"(batch {source._batch_size}, window {source._window_s}s, concurrency {source._max_concurrency})",
        flush=True,
    )
    try:
        source.run()
    except KeyboardInterrupt:
        source.stopping.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
