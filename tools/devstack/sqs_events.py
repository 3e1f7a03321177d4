"""SQS messages as Lambda's SQS event source hands them to a function."""

from typing import Any

RECEIVE_ATTRIBUTES = ["All"]


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received SQS message in the shape of a Lambda SQS event record."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": dict(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Received SQS messages as one Lambda SQS event."""
    return {"Records": [lambda_record(m, queue_arn, region) for m in messages]}


def receive(
    sqs: Any, queue_url: str, max_messages: int, wait_s: int, visibility_timeout_s: int | None = None
) -> list[dict[str, Any]]:
    """ReceiveMessage with every system attribute (ApproximateReceiveCount among them)."""
    kwargs: dict[str, Any] = {
        "QueueUrl": queue_url,
        "MaxNumberOfMessages": max_messages,
        "WaitTimeSeconds": wait_s,
        "MessageSystemAttributeNames": RECEIVE_ATTRIBUTES,
    }
    if visibility_timeout_s is not None:
        kwargs["VisibilityTimeout"] = visibility_timeout_s
    return list(sqs.receive_message(**kwargs).get("Messages", []))


def delete(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    """Delete messages, ten per request."""
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
        response = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"SQS did not delete messages: {response['Failed']}")


def succeeded(messages: list[dict[str, Any]], response: Any) -> list[dict[str, Any]]:
    """The messages a handler's answer does not name in `batchItemFailures` (a partial batch
    response); as Lambda does, an answer that names an unknown message fails the whole batch."""
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if not failures:
        return list(messages)
    failed = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
    if not failed <= {m["MessageId"] for m in messages}:
        return []
    return [m for m in messages if m["MessageId"] not in failed]
