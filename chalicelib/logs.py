"""Logs, the write-heavy resource: validated, queued in SQS, read back from MySQL once stored."""

import uuid
from typing import Any

from chalicelib.cache import Cache
from chalicelib.config import Settings
from chalicelib.db import Database
from chalicelib.errors import NotFoundError, QueueUnavailableError, ValidationError
from chalicelib.models import (
    LogEntryIn,
    LogListQuery,
    decode_cursor,
    encode_cursor,
    invalid_cursor,
    new_log_record,
    parse_rfc3339,
    utc_now,
    validate,
    validate_log_batch,
)
from chalicelib.queue import LogQueue

_KIND = "log"


def check_log_id(log_id: str) -> str:
    """The canonical form of a log id; raise ValidationError naming `id` if it is not a UUID."""
    try:
        return str(uuid.UUID(log_id))
    except ValueError:
        raise ValidationError("invalid request: id", details=[{"field": "id", "message": "must be a UUID"}]) from None


class LogService:
    def __init__(self, queue: LogQueue, db: Database, cache: Cache, settings: Settings) -> None:
        self._queue = queue
        self._db = db
        self._cache = cache
        self._settings = settings

    def ingest(self, body: Any) -> dict[str, Any]:
        """Queue one entry; return its id once SQS has it."""
        entry = validate(LogEntryIn, body, "log entry")
        record = new_log_record(entry, utc_now())
        self._queue.send([record])
        return {"id": str(record.id), "status": "queued"}

    def ingest_batch(self, body: Any) -> dict[str, Any]:
        """Queue every entry of a batch, or none if any is invalid."""
        received_at = utc_now()
        records = [new_log_record(entry, received_at) for entry in validate_log_batch(body)]
        ids = [str(r.id) for r in records]
        try:
            self._queue.send(records)
        except QueueUnavailableError as exc:
            # Some messages may already be queued: give the ids so a retry with them stores each once.
            raise QueueUnavailableError(
                f"{exc.message}. Some entries may have been queued: retry the batch with these ids"
                " (each id is stored once)",
                details={"ids": ids},
            ) from exc
        return {"ids": ids, "status": "queued"}

    def get(self, log_id: str) -> dict[str, Any]:
        """A stored entry; raise NotFoundError while it is not stored (yet)."""
        log_id = check_log_id(log_id)
        # Stored entries never change, so a found one is cached; absence is not, it ends soon.
        found = self._cache.lookup(_KIND, log_id)
        if found.entry is not None and found.entry.value is not None:
            return found.entry.value
        entry = self._db.get_log(log_id)
        if entry is None:
            raise NotFoundError(f"log entry {log_id} is not stored (yet)")
        self._cache.fill(_KIND, log_id, entry, found.generation, self._settings.log_cache_ttl_s, 0)
        return entry

    def query(self, params: dict[str, str]) -> dict[str, Any]:
        """Stored entries matching the filters, newest first."""
        query = validate(LogListQuery, params, "query")
        before = None
        if query.cursor:
            position = decode_cursor(query.cursor, ("ts", "id"))
            try:
                before = (parse_rfc3339(position["ts"]), position["id"])
            except ValueError:
                raise invalid_cursor() from None
        logs, more = self._db.query_logs(
            source=query.source,
            level=query.level,
            since=query.since,
            until=query.until,
            before=before,
            limit=query.limit,
        )
        next_cursor = encode_cursor({"ts": logs[-1]["timestamp"], "id": logs[-1]["id"]}) if more else None
        return {"logs": logs, "next_cursor": next_cursor}
