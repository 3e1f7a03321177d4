"""The stage's queues as an operator's tools see them: made or brought up to date (the local
bootstrap), and how many messages each holds (make status, redrive, the tests and benchmarks)."""

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueueUrls:
    queue_url: str
    dlq_url: str


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
