"""Dead letters back to the log queue, once their cause is fixed (`make redrive`).

Two ways, the same outcome:
- `task`: SQS's own message move task (StartMessageMoveTask from the DLQ to the log queue), which
  SQS runs to the end by itself; this waits for it and reports what it moved.
- `copy`: receive, send to the log queue, then delete from the DLQ, ten at a time. A message is
  deleted only after the log queue took it, so a run cut short loses nothing; a message sent but
  not yet deleted is moved again by the next run, and stored once all the same (the consumer
  stores an id once, chalicelib/consumer/logids.py).
A dry run moves nothing: it counts the dead letters and shows some (a peek, visible again at once).
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.logs.packing import SQS_MAX_BATCH_ENTRIES, unpack_message
from tools.ops.queues import queue_depth

COPY_VISIBILITY_S = 60  # a received dead letter stays hidden this long while it is copied
TASK_POLL_S = 1.0
TASK_DONE = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@dataclass
class RedriveReport:
    method: str  # "task", "copy" or "dry run"
    waiting: int  # dead letters when the run began (SQS's approximate count)
    moved: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)  # dry run: some messages, what they carry
    status: str = "done"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "waiting": self.waiting,
            "moved": self.moved,
            "status": self.status,
            "sample": self.sample,
        }


class DeadLetters:
    """The log queue's dead-letter queue, and the way back."""

    def __init__(self, sqs: Any, queue_url: str, dlq_url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._clock = clock

    def waiting(self) -> int:
        """How many messages the DLQ holds (SQS's approximate count, in flight included)."""
        return queue_depth(self._sqs, self._dlq_url)

    def dry_run(self, sample_size: int = 10) -> RedriveReport:
        """What a redrive would move, without moving it."""
        report = RedriveReport("dry run", self.waiting(), status="nothing moved")
        messages = self._sqs.receive_message(
            QueueUrl=self._dlq_url,
            MaxNumberOfMessages=min(sample_size, SQS_MAX_BATCH_ENTRIES),
            VisibilityTimeout=0,  # a peek: visible again at once
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])
        for message in messages:
            report.sample.append(_describe(message))
        return report

    def move_with_task(self, timeout_s: float = 600) -> RedriveReport:
        """SQS's message move task from the DLQ to the log queue; waits until it ends."""
        report = RedriveReport("task", self.waiting())
        source, destination = self._arn(self._dlq_url), self._arn(self._queue_url)
        self._sqs.start_message_move_task(SourceArn=source, DestinationArn=destination)
        deadline = self._clock() + timeout_s
        while True:
            tasks = self._sqs.list_message_move_tasks(SourceArn=source, MaxResults=1).get("Results", [])
            task = tasks[0] if tasks else {}
            if task.get("Status") in TASK_DONE:
                report.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
                report.status = task["Status"].lower()
                if task["Status"] != "COMPLETED":
                    report.status += f": {task.get('FailureReason', 'no reason given')}"
                return report
            if self._clock() > deadline:
                report.status = f"still running after {timeout_s:.0f} s (SQS finishes it; run again to see)"
                return report
            time.sleep(TASK_POLL_S)

    def move_by_copy(self, max_messages: int | None = None) -> RedriveReport:
        """Receive, send to the log queue, delete from the DLQ: until the DLQ is empty or `max_messages`."""
        report = RedriveReport("copy", self.waiting())
        while max_messages is None or report.moved < max_messages:
            want = (
                SQS_MAX_BATCH_ENTRIES
                if max_messages is None
                else min(SQS_MAX_BATCH_ENTRIES, max_messages - report.moved)
            )
            messages = self._sqs.receive_message(
                QueueUrl=self._dlq_url, MaxNumberOfMessages=want, VisibilityTimeout=COPY_VISIBILITY_S, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                return report
            sent = self._sqs.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(messages)],
            )
            taken = {int(entry["Id"]) for entry in sent.get("Successful", [])}
            if taken:
                self._sqs.delete_message_batch(
                    QueueUrl=self._dlq_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": messages[i]["ReceiptHandle"]} for i in sorted(taken)],
                )
            report.moved += len(taken)
            if len(taken) < len(messages):  # what SQS did not take stays in the DLQ, visible again later
                report.status = f"{len(messages) - len(taken)} not taken by the log queue; run again"
                return report
        return report

    def _arn(self, url: str) -> str:
        return str(self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _describe(message: dict[str, Any]) -> dict[str, Any]:
    """A dead letter as the dry run shows it: its id, receives, and the entries it carries."""
    attributes = message.get("Attributes", {})
    try:
        entries = unpack_message(message["Body"])
        ids = [e.get("id") for e in entries if isinstance(e, dict)]
        carries = {"entries": len(entries), "ids": ids[:5]}
    except ValueError as exc:
        carries = {"entries": 0, "unreadable": str(exc), "body": json.dumps(message["Body"])[:200]}
    return {
        "message_id": message["MessageId"],
        "receives": int(attributes.get("ApproximateReceiveCount", 0)),
        **carries,
    }
