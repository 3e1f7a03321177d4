"""The shapes of the API's answers, for its OpenAPI description (chalicelib/web/openapi.py).

The request models live with their concepts (chalicelib/items/model.py, logs/model.py, keys/model.py), where the code
validates with them; these describe what the handlers return, and the fuzz run checks every
answer against them.
"""

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.keys.model import KeyFields, KeyView
from chalicelib.logs.model import LogLevel


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Item(_Answer):
    id: str
    name: str
    description: str
    attributes: dict[str, Any]
    version: int = Field(ge=1)
    updated_at: str = Field(description="RFC 3339, UTC")


class ItemPage(_Answer):
    items: list[Item]
    next_cursor: str | None


class LogQueued(_Answer):
    id: UUID
    status: Literal["queued"]


class LogsQueued(_Answer):
    ids: list[UUID]
    status: Literal["queued"]


class LogEntry(_Answer):
    id: UUID
    level: LogLevel
    source: str
    message: str
    timestamp: str = Field(description="RFC 3339, UTC")
    attributes: dict[str, Any]
    received_at: str
    stored_at: str
    key_id: str | None = Field(description="the key that wrote it (null: stored before keys were recorded)")


class LogPage(_Answer):
    logs: list[LogEntry]
    next_cursor: str | None


class LogTail(_Answer):
    logs: list[LogEntry] = Field(description="oldest first, in the order they were stored")
    next_cursor: str = Field(description="ask from here next, always (past what was read, even with no match)")


class StatsBucket(_Answer):
    start: str = Field(description="the bucket's first instant (RFC 3339, UTC)")
    counts: dict[str, int] = Field(description="entries by level or source; absent: none")


class LogStats(_Answer):
    interval: str
    by: str
    since: str = Field(description="the range, widened to whole buckets: since")
    until: str = Field(description="... and until (exclusive)")
    buckets: list[StatsBucket]
    total: int


class Key(KeyView):  # the answer's own name in openapi.json
    pass


class KeyCreated(KeyFields):
    key: str = Field(description="the token: shown this once, stored only as a hash")


class KeyList(_Answer):
    keys: list[Key]


class Health(_Answer):
    status: Literal["ok"]


class DependencyProblem(_Answer):
    code: Literal["dependency_unavailable"]
    message: str


class Dependencies(_Answer):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["ok", "unavailable"]]
    error: DependencyProblem | None = None


class ErrorDetail(_Answer):
    code: str
    message: str
    request_id: str
    details: Any = None


class Error(_Answer):
    error: ErrorDetail


class OtlpPartialSuccess(_Answer):
    rejectedLogRecords: str = Field(description="int64 as OTLP/JSON writes it: records refused, none queued")
    errorMessage: str


class OtlpExported(BaseModel):
    """An ExportLogsServiceResponse (OTLP/JSON): empty when every record was queued."""

    model_config = ConfigDict(extra="allow")  # OTLP: a client ignores fields it does not know
    partialSuccess: OtlpPartialSuccess | None = None
