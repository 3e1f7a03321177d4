"""SQS: the log queue, its dead-letter queue, and how log entries are packed into messages.

A message body is `{"logs": [entry, ...]}`: one entry for POST /logs, as many as fit for
POST /logs/batch, so a batch of 500 small entries costs one SendMessage call, not 500.
Bodies are ASCII JSON (non-ASCII escaped): SQS refuses some Unicode characters outright.
"""

import json
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from chalicelib.aws import error_code, is_unavailable
from chalicelib.errors import ConfigError, QueueUnavailableError, SluiceError
from chalicelib.models import LogRecord

logger = logging.getLogger(__name__)

SQS_MAX_BATCH_ENTRIES = 10
_ENVELOPE_PREFIX = '{"logs":['
_ENVELOPE_SUFFIX = "]}"
_SEND_ATTEMPTS = 3


def pack_messages(entries: Sequence[dict[str, Any]], max_bytes: int) -> list[str]:
    """Pack entries, in order, into as few message bodies of at most `max_bytes` as they fit in."""
    bodies: list[str] = []
    current: list[str] = []
    size = len(_ENVELOPE_PREFIX) + len(_ENVELOPE_SUFFIX)
    for entry in entries:
        encoded = json.dumps(entry, separators=(",", ":"))
        if len(_ENVELOPE_PREFIX) + len(encoded) + len(_ENVELOPE_SUFFIX) > max_bytes:
            raise ValueError(f"a log entry of {len(encoded)} bytes does not fit in a message of {max_bytes} bytes")
        added = len(encoded) + (1 if current else 0)
        if current and size + added > max_bytes:
            bodies.append(_ENVELOPE_PREFIX + ",".join(current) + _ENVELOPE_SUFFIX)
            current, size = [], len(_ENVELOPE_PREFIX) + len(_ENVELOPE_SUFFIX)
            added = len(encoded)
        current.append(encoded)
        size += added
    if current:
        bodies.append(_ENVELOPE_PREFIX + ",".join(current) + _ENVELOPE_SUFFIX)
    return bodies


def group_for_batches(bodies: Sequence[str], max_batch_bytes: int) -> list[list[str]]:
    """Group bodies into SendMessageBatch calls: at most 10 messages and `max_batch_bytes` each."""
    groups: list[list[str]] = []
    current: list[str] = []
    size = 0
    for body in bodies:
        if current and (len(current) == SQS_MAX_BATCH_ENTRIES or size + len(body) > max_batch_bytes):
            groups.append(current)
            current, size = [], 0
        current.append(body)
        size += len(body)
    if current:
        groups.append(current)
    return groups


def unpack_message(body: str) -> list[Any]:
    """The raw entries of a message body; raises ValueError if the body is not one of ours."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"message body is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("logs"), list):
        raise ValueError('message body is not {"logs": [...]}')
    entries: list[Any] = data["logs"]
    return entries


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


@dataclass(frozen=True)
class QueueUrls:
    queue_url: str
    dlq_url: str


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
                raise QueueUnavailableError(f"SQS refused messages: {failed}")
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


def queue_counts(sqs: Any, queue_url: str) -> dict[str, int]:
    """A queue's messages by state (SQS's approximate counts): waiting, in flight, delayed."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {
        "waiting": int(attributes["ApproximateNumberOfMessages"]),
        "in flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
    }


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Messages waiting or in flight."""
    counts = queue_counts(sqs, queue_url)
    return counts["waiting"] + counts["in flight"]


def sqs_error(exc: Exception, doing: str) -> SluiceError:
    """An SQS failure as a domain error: unavailable (503), or a deployment mistake such as a
    missing permission or queue (500). The details go to the log, not into the answer."""
    code = error_code(exc)
    if is_unavailable(exc):
        logger.warning("SQS unavailable while trying to %s: %s", doing, exc)
        return QueueUnavailableError(f"SQS is unavailable ({code})")
    logger.error("SQS refused to %s: %s", doing, exc)
    return ConfigError(f"SQS refused to {doing} ({code}): check the queue and the function's permissions")


def ensure_queues(
    sqs: Any, queue_name: str, dlq_name: str, visibility_timeout_s: int, max_receive_count: int
) -> QueueUrls:
    """Create the DLQ and the log queue with its redrive policy, or bring their attributes up to date."""
    dlq_url = _create_or_update(sqs, dlq_name, {"MessageRetentionPeriod": str(14 * 24 * 3600)})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})
    queue_url = _create_or_update(
        sqs,
        queue_name,
        {
            "VisibilityTimeout": str(visibility_timeout_s),
            "MessageRetentionPeriod": str(4 * 24 * 3600),
            "RedrivePolicy": redrive,
        },
    )
    return QueueUrls(queue_url=queue_url, dlq_url=dlq_url)


def _create_or_update(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    try:
        url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url
