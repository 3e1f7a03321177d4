"""Logs, the write-heavy resource: validated, queued in SQS, read back from MySQL once stored.

Every route takes the caller's key (chalicelib/keys/gate.py): writes are charged one unit per entry
and may only use the key's sources; reads see only the key's sources.
"""

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import ForbiddenError, NotFoundError, QueueUnavailableError, ValidationError
from chalicelib.keys.gate import Admission, Charge
from chalicelib.keys.model import Principal
from chalicelib.logs.model import (
    LogEntryIn,
    LogListQuery,
    invalid_entries,
    new_log_record,
    timestamp_window,
    validate_log_batch,
)
from chalicelib.logs.queue import LogQueue
from chalicelib.logs.search import ATTR_PREFIX, parse_search
from chalicelib.logs.store import LogFilter, LogStore
from chalicelib.metrics import PipelineMetrics
from chalicelib.redis.cache import Cache
from chalicelib.validation import (
    decode_cursor,
    encode_cursor,
    format_rfc3339,
    invalid_cursor,
    parse_rfc3339,
    utc_now,
    validate,
)

_KIND = "log"


def check_log_id(log_id: str) -> str:
    """The canonical form of a log id; raise ValidationError naming `id` if it is not a UUID."""
    try:
        return str(uuid.UUID(log_id))
    except ValueError:
        raise ValidationError("invalid request: id", details=[{"field": "id", "message": "must be a UUID"}]) from None


class LogService:
    def __init__(
        self, queue: LogQueue, store: LogStore, cache: Cache, settings: Settings, metrics: PipelineMetrics | None = None
    ) -> None:
        self._queue = queue
        self._store = store
        self._cache = cache
        self._settings = settings
        self._metrics = metrics

    def ingest(self, body: Any, charge: Charge) -> tuple[dict[str, Any], Admission]:
        """Queue one entry; return its id once SQS has it."""
        received_at = utc_now()
        entry = validate(LogEntryIn, body, "log entry", self._settings.max_error_details)
        self._check_times([entry], received_at, batch=False)
        admission = charge(1, [entry.source])
        record = new_log_record(entry, received_at, admission.principal.key_id or None)
        try:
            self._queue.send([record])
        except QueueUnavailableError as exc:
            # SQS may have taken it after all (a timeout): give the id so a retry with it stores it once.
            raise QueueUnavailableError(
                f"{exc.message}. The entry may have been queued: retry it with this id (an id is stored once)",
                details={"id": str(record.id)},
            ) from exc
        self._count_accepted(1)
        return {"id": str(record.id), "status": "queued"}, admission

    def ingest_batch(self, body: Any, charge: Charge) -> tuple[dict[str, Any], Admission]:
        """Queue every entry of a batch, or none if any is invalid or refused."""
        received_at = utc_now()
        entries = validate_log_batch(body, self._settings.max_error_details)
        self._check_times(entries, received_at, batch=True)
        admission = charge(len(entries), [e.source for e in entries])
        key_id = admission.principal.key_id or None
        records = [new_log_record(entry, received_at, key_id) for entry in entries]
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
        self._count_accepted(len(ids))
        return {"ids": ids, "status": "queued"}, admission

    def _count_accepted(self, entries: int) -> None:
        if self._metrics is not None:
            self._metrics.accepted(entries)

    def _check_times(self, entries: list[LogEntryIn], received_at: datetime, *, batch: bool) -> None:
        """Refuse timestamps outside [received - LOG_TIMESTAMP_MAX_AGE_S, received + LOG_TIMESTAMP_MAX_AHEAD_S]."""
        earliest, latest = timestamp_window(
            received_at, self._settings.log_timestamp_max_age_s, self._settings.log_timestamp_max_ahead_s
        )
        message = (
            f"must be between {format_rfc3339(earliest)} and {format_rfc3339(latest)}"
            f" (at most {self._settings.log_timestamp_max_age_s} s before the time received,"
            f" {self._settings.log_timestamp_max_ahead_s} s after)"
        )
        details = [
            {**({"index": i} if batch else {}), "field": "timestamp", "message": message}
            for i, entry in enumerate(entries)
            if entry.timestamp is not None and not earliest <= entry.timestamp <= latest
        ]
        if not details:
            return
        if batch:
            raise invalid_entries(details, self._settings.max_error_details)
        raise ValidationError("invalid log entry: timestamp", details=details)

    def get(self, log_id: str, principal: Principal) -> dict[str, Any]:
        """A stored entry of one of the caller's sources; NotFoundError while it is not stored (yet)."""
        log_id = check_log_id(log_id)
        # Stored entries never change, so a found one is cached; its absence only briefly (it may
        # be stored a second later), so that a flood of random ids costs few MySQL reads.
        found = self._cache.lookup(_KIND, log_id)
        if found.entry is not None:
            entry = found.entry.value
        else:
            entry = self._store.get(log_id)
            ttl = self._settings.log_cache_ttl_s if entry else self._settings.log_absent_ttl_s
            self._cache.fill(_KIND, log_id, entry, found.generation, ttl, 0)
        if entry is None or not principal.may_use_source(entry["source"]):
            raise NotFoundError(f"log entry {log_id} is not stored (yet)")
        return entry

    def query(self, params: dict[str, str], principal: Principal) -> dict[str, Any]:
        """Stored entries of the caller's sources matching the filters, newest first; a page is
        cut short (with a cursor) before it grows past LOGS_PAGE_MAX_BYTES. A search (`q`,
        `attr.*`) is held to a time range: SEARCH_DEFAULT_SPAN_S back by default, at most
        SEARCH_MAX_SPAN_S."""
        search = parse_search(params)
        query = validate(LogListQuery, without_attributes(params), "query", self._settings.max_error_details)
        check_source(query.source, principal)
        since, until = query.since, query.until
        if search:
            since, until = search_span(since, until, self._settings)
        before = None
        if query.cursor:
            position = decode_cursor(query.cursor, ("ts", "id"))
            try:
                before = (parse_rfc3339(position["ts"]), position["id"])
            except ValueError:
                raise invalid_cursor() from None
        logs, more = self._store.query(
            LogFilter(
                limit=query.limit,
                source=query.source,
                level=query.level,
                since=since,
                until=until,
                before=before,
                sources=None if principal.all_sources else principal.sources,
                search=search,
            )
        )
        page = _within_bytes(logs, self._settings.logs_page_max_bytes)
        more = more or len(page) < len(logs)
        next_cursor = encode_cursor({"ts": page[-1]["timestamp"], "id": page[-1]["id"]}) if more and page else None
        return {"logs": page, "next_cursor": next_cursor}


def without_attributes(params: dict[str, str]) -> dict[str, str]:
    """The query string less the attribute filters (`attr.*`: chalicelib/logs/search.py reads them)."""
    return {k: v for k, v in params.items() if not k.startswith(ATTR_PREFIX)}


def check_source(source: str | None, principal: Principal) -> None:
    """A source filter the key may not read is refused, not answered empty."""
    if source is not None and not principal.may_use_source(source):
        raise ForbiddenError(f"this key may not use the source {source!r}")


def search_span(since: datetime | None, until: datetime | None, settings: Settings) -> tuple[datetime, datetime]:
    """A search's time range: until defaults to now, since to SEARCH_DEFAULT_SPAN_S before it; at
    most SEARCH_MAX_SPAN_S long."""
    until = until or utc_now()
    since = since or until - timedelta(seconds=settings.search_default_span_s)
    if until - since > timedelta(seconds=settings.search_max_span_s):
        message = (
            f"a search (q, attr.*) spans at most {settings.search_max_span_s} s from since to until:"
            " narrow the range, or page through it"
        )
        raise ValidationError("invalid query: since", details=[{"field": "since", "message": message}])
    return since, until


def _within_bytes(logs: list[dict[str, Any]], max_bytes: int) -> list[dict[str, Any]]:
    """The leading entries whose JSON fits in `max_bytes` (at least one)."""
    size = 0
    for count, entry in enumerate(logs):
        size += len(json.dumps(entry, separators=(",", ":"))) + 1
        if size > max_bytes and count > 0:
            return logs[:count]
    return logs
