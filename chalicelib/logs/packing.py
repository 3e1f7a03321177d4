"""How log entries are packed into SQS messages, and read back out of them.

A message body is `{"logs": [entry, ...]}`: one entry for POST /logs, as many as fit for
POST /logs/batch, so a batch of 500 small entries costs one SendMessage call, not 500.
Bodies are ASCII JSON (non-ASCII escaped): SQS refuses some Unicode characters outright.
"""

import json
from collections.abc import Sequence
from typing import Any

SQS_MAX_BATCH_ENTRIES = 10
_ENVELOPE_PREFIX = '{"logs":['
_ENVELOPE_SUFFIX = "]}"


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
