"""SQS: the log queue, which the API sends packed entries to (logs/packing.py says how they are
packed) and whose redelivery the consumer delays."""

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import botocore.exceptions

from chalicelib.aws import error_code, is_unavailable
from chalicelib.errors import ConfigError, QueueUnavailableError, SluiceError
from chalicelib.logs.model import LogRecord
from chalicelib.logs.packing import SQS_MAX_BATCH_ENTRIES, group_for_batches, pack_messages

logger = logging.getLogger(__name__)

_SEND_ATTEMPTS = 3


class GroupSender:
    """Sends the messages of concurrent callers together, in SendMessageBatch calls.

    A caller hands over its message and waits until SQS has accepted it (or refused it). One
    thread sends: whatever arrived while a call was in flight goes out in the next call, up to 10
    messages and `max_batch_bytes`. Alone, a message is sent at once, so nothing waits for a
    batch to fill; under load, one request to SQS carries up to ten. (In Lambda an environment
    serves one request at a time and every call carries one message.)
    """

    def __init__(self, send_batch: Callable[[list[str]], None], max_batch_bytes: int, wait_s: float = 15.0) -> None:
        self._send_batch = send_batch
        self._max_batch_bytes = max_batch_bytes
        self._wait_s = wait_s
        self._pending: queue.SimpleQueue[tuple[str, Future[None]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def waiting(self) -> int:
        """How many messages wait for the next call (not counting the one in flight)."""
        return self._pending.qsize()

    def send(self, body: str) -> None:
        """Return once SQS accepted the message; raise QueueUnavailableError otherwise."""
        done: Future[None] = Future()
        self._pending.put((body, done))
        self._ensure_thread()
        try:
            done.result(timeout=self._wait_s)
        except FutureTimeout:
            raise QueueUnavailableError(f"SQS did not accept the message within {self._wait_s:.0f}s") from None

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sqs-group-sender", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._pending.get()]
            size = len(batch[0][0])
            while len(batch) < SQS_MAX_BATCH_ENTRIES:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                if size + len(item[0]) > self._max_batch_bytes:
                    self._pending.put(item)  # next call (order across callers does not matter)
                    break
                batch.append(item)
                size += len(item[0])
            try:
                self._send_batch([body for body, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    done.set_exception(exc)
            else:
                for _, done in batch:
                    done.set_result(None)


class LogQueue:
    """Sends packed log entries to SQS.

    A deployed stack gives the queue's URL (LOG_QUEUE_URL), so the function needs no
    sqs:GetQueueUrl; otherwise the URL is looked up by name once per warm instance.
    """

    def __init__(
        self, sqs: Any, queue_name: str, message_max_bytes: int, batch_max_bytes: int, queue_url: str | None = None
    ) -> None:
        self._sqs = sqs
        self._queue_name = queue_name
        self._message_max_bytes = message_max_bytes
        self._batch_max_bytes = batch_max_bytes
        self._url: str | None = queue_url
        self._group = GroupSender(self._send_batch, batch_max_bytes)

    @property
    def url(self) -> str:
        """The queue's URL; raises QueueUnavailableError if SQS cannot tell it."""
        if self._url is None:
            try:
                self._url = self._sqs.get_queue_url(QueueName=self._queue_name)["QueueUrl"]
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                raise sqs_error(exc, "find the log queue") from exc
        return self._url

    def send(self, records: Sequence[LogRecord]) -> int:
        """Queue the records; return how many SQS requests it took.

        Returns only once SQS has accepted every message. Raises QueueUnavailableError
        otherwise; messages accepted before the failure stay queued.
        """
        bodies = pack_messages([r.to_message() for r in records], self._message_max_bytes)
        if len(bodies) == 1:
            self._group.send(bodies[0])  # shares a SendMessageBatch with concurrent requests
            return 1
        groups = group_for_batches(bodies, self._batch_max_bytes)
        for group in groups:
            self._send_batch(group)
        return len(groups)

    def send_bodies(self, bodies: Sequence[str]) -> None:
        """Queue message bodies as they are (a replayed message); raises QueueUnavailableError."""
        for group in group_for_batches(bodies, self._batch_max_bytes):
            self._send_batch(group)

    def _send_batch(self, bodies: list[str]) -> None:
        pending = {str(i): body for i, body in enumerate(bodies)}
        for _ in range(_SEND_ATTEMPTS):
            entries = [{"Id": i, "MessageBody": body} for i, body in pending.items()]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                raise sqs_error(exc, "queue the messages") from exc
            failed = response.get("Failed", [])
            for ok in response.get("Successful", []):
                pending.pop(ok["Id"], None)
            if not pending:
                return
            if any(f.get("SenderFault") for f in failed):
                logger.error("SQS refused messages: %s", failed)  # its text goes to the log, not the answer
                codes = ", ".join(sorted({str(f.get("Code", "?")) for f in failed}))
                raise QueueUnavailableError(f"SQS refused {len(failed)} messages ({codes})")
        raise QueueUnavailableError(f"SQS did not accept {len(pending)} messages after {_SEND_ATTEMPTS} attempts")

    def delay_redelivery(self, receipts: Sequence[tuple[str, int]]) -> None:
        """Make received messages visible again after the given seconds: (receipt handle, seconds).

        Best effort: a message whose change fails comes back after the queue's visibility timeout.
        """
        for start in range(0, len(receipts), SQS_MAX_BATCH_ENTRIES):
            chunk = receipts[start : start + SQS_MAX_BATCH_ENTRIES]
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for i, (handle, seconds) in enumerate(chunk)
            ]
            try:
                response = self._sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, SluiceError) as exc:
                logger.warning("could not shorten the redelivery delay of %d messages: %s", len(chunk), exc)
                continue
            if response.get("Failed"):
                logger.warning("SQS did not shorten the redelivery delay of: %s", response["Failed"])

    def ping(self) -> None:
        """Ask SQS for the queue's depth; raises QueueUnavailableError or ConfigError."""
        try:
            self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise sqs_error(exc, "read the log queue's depth") from exc


def sqs_error(exc: Exception, doing: str) -> SluiceError:
    """An SQS failure as a domain error: unavailable (503), or a deployment mistake such as a
    missing permission or queue (500). The details go to the log, not into the answer."""
    code = error_code(exc)
    if is_unavailable(exc):
        logger.warning("SQS unavailable while trying to %s: %s", doing, exc)
        return QueueUnavailableError(f"SQS is unavailable ({code})")
    logger.error("SQS refused to %s: %s", doing, exc)
    return ConfigError(f"SQS refused to {doing} ({code}): check the queue and the function's permissions")
