"""What a log entry is: as a client posts it, as it travels through the queue into MySQL, and
the queries of GET /logs."""

from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import pydantic
from pydantic import Field

from chalicelib.errors import ValidationError
from chalicelib.keys.model import KEY_ID_PATTERN
from chalicelib.logs.ids import uuid7
from chalicelib.logs.search import Q_MAX_CHARS, SEARCH_HELP
from chalicelib.validation import Attributes, Strict, Timestamp, capped, field_errors, format_rfc3339, validate

SOURCE_PATTERN = r"^[A-Za-z0-9_.:/-]{1,64}$"
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
MESSAGE_MAX_CHARS = 8192
BATCH_MAX_ENTRIES = 500


class LogEntryIn(Strict):
    """A log entry as a client posts it."""

    level: LogLevel
    source: str = Field(pattern=SOURCE_PATTERN)
    message: str = Field(min_length=1, max_length=MESSAGE_MAX_CHARS)
    timestamp: Timestamp | None = None
    attributes: Attributes = Field(default_factory=dict)
    id: UUID | None = None


class LogRecord(Strict):
    """A log entry as it travels through the queue into MySQL: every field known."""

    id: UUID
    level: LogLevel
    source: str = Field(pattern=SOURCE_PATTERN)
    message: str = Field(min_length=1, max_length=MESSAGE_MAX_CHARS)
    timestamp: Timestamp
    attributes: Attributes
    received_at: Timestamp
    # The key that wrote it: always there (a message without it was not queued by this API); null
    # only where keys are not required (a local stage's benchmark baseline).
    key_id: str | None = Field(pattern=KEY_ID_PATTERN)

    def to_message(self) -> dict[str, Any]:
        """The JSON-ready form put on the queue."""
        return {
            "id": str(self.id),
            "level": self.level,
            "source": self.source,
            "message": self.message,
            "timestamp": format_rfc3339(self.timestamp),
            "attributes": self.attributes,
            "received_at": format_rfc3339(self.received_at),
            "key_id": self.key_id,
        }


def new_log_record(entry: LogEntryIn, received_at: datetime, key_id: str | None) -> LogRecord:
    """Complete a client's entry: an id (time-ordered, see chalicelib/logs/ids.py) and a timestamp if
    it gave none, when it arrived, and the key that wrote it."""
    return LogRecord.model_construct(
        id=entry.id or uuid7(int(received_at.timestamp() * 1000)),
        level=entry.level,
        source=entry.source,
        message=entry.message,
        timestamp=entry.timestamp or received_at,
        attributes=entry.attributes,
        received_at=received_at,
        key_id=key_id,
    )


class LogListQuery(Strict):
    source: str | None = Field(default=None, pattern=SOURCE_PATTERN)
    level: LogLevel | None = None
    since: Timestamp | None = None
    until: Timestamp | None = None
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = None
    q: str | None = Field(default=None, max_length=Q_MAX_CHARS, description=SEARCH_HELP)


class LogBatchIn(Strict):
    logs: list[Any] = Field(min_length=1, max_length=BATCH_MAX_ENTRIES)


def validate_log_batch(data: Any, max_details: int = 20) -> list[LogEntryIn]:
    """Validate every entry of a batch; raise ValidationError naming bad entries by index."""
    batch = validate(LogBatchIn, data, max_details=max_details)
    entries: list[LogEntryIn] = []
    details: list[dict[str, Any]] = []
    for index, raw in enumerate(batch.logs):
        try:
            entries.append(LogEntryIn.model_validate(raw))
        except pydantic.ValidationError as exc:
            details.extend(field_errors(exc, index=index))
    if details:
        raise invalid_entries(details, max_details)
    return entries


def invalid_entries(details: list[dict[str, Any]], max_details: int) -> ValidationError:
    """The error for entries of a batch (details carry `index`): nothing of the batch is queued."""
    indexes = sorted({d["index"] for d in details})
    named = ", ".join(map(str, indexes[:max_details])) + (" ..." if len(indexes) > max_details else "")
    return ValidationError(
        f"{len(indexes)} invalid entries, at index {named}; nothing was queued", details=capped(details, max_details)
    )


def timestamp_window(received_at: datetime, max_age_s: int, max_ahead_s: int) -> tuple[datetime, datetime]:
    """The earliest and the latest `timestamp` an entry received at `received_at` may carry."""
    return received_at - timedelta(seconds=max_age_s), received_at + timedelta(seconds=max_ahead_s)
