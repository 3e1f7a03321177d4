"""The reads beside GET /logs: counts over time (GET /logs/stats) and the tail in the order of
storage (GET /logs/tail). Both see only the key's sources, as GET /logs does."""

from datetime import timedelta
from typing import Any

from pydantic import Field

from chalicelib.config import Settings
from chalicelib.keys.model import Principal
from chalicelib.logs.model import SOURCE_PATTERN, LogLevel
from chalicelib.logs.search import Q_MAX_CHARS, SEARCH_HELP, parse_search
from chalicelib.logs.service import check_source, without_attributes
from chalicelib.logs.stats import StatsQuery, StatsStore, bucket_range, stats_answer
from chalicelib.logs.store import LogFilter
from chalicelib.logs.tail import Position, TailStore
from chalicelib.validation import Strict, decode_cursor, encode_cursor, invalid_cursor, utc_now, validate

STATS_DEFAULT_SPAN = timedelta(hours=1)


class TailQuery(Strict):
    source: str | None = Field(default=None, pattern=SOURCE_PATTERN)
    level: LogLevel | None = None
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = None
    q: str | None = Field(default=None, max_length=Q_MAX_CHARS, description=SEARCH_HELP)


class LogReading:
    def __init__(self, stats: StatsStore, tail: TailStore, settings: Settings) -> None:
        self._stats = stats
        self._tail = tail
        self._settings = settings

    def stats(self, params: dict[str, str], principal: Principal) -> dict[str, Any]:
        """Entries per bucket of the range (default: the last hour at 1m), by level or source."""
        query = validate(StatsQuery, params, "query", self._settings.max_error_details)
        check_source(query.source, principal)
        until = query.until or utc_now()
        since = query.since or until - STATS_DEFAULT_SPAN
        span = bucket_range(since, until, query.interval, self._settings.stats_max_buckets)
        sources = None if principal.all_sources else principal.sources
        counts = self._stats.counts(span, query.by, query.source, query.level, sources)
        return stats_answer(span, query.by, counts)

    def tail(self, params: dict[str, str], principal: Principal) -> dict[str, Any]:
        """Entries stored after the cursor, oldest first, and the cursor to ask from next (always
        one). Without a cursor: the latest entries, and a cursor after them."""
        search = parse_search(params)
        query = validate(TailQuery, without_attributes(params), "query", self._settings.max_error_details)
        check_source(query.source, principal)
        position = None
        if query.cursor:
            found = decode_cursor(query.cursor, ("seq", "id"))
            if not found["seq"].isdigit():
                raise invalid_cursor()
            position = Position(int(found["seq"]), found["id"])
        wanted = LogFilter(
            limit=query.limit,
            source=query.source,
            level=query.level,
            sources=None if principal.all_sources else principal.sources,
            search=search,
        )
        logs, after = self._tail.after(position, wanted)
        return {"logs": logs, "next_cursor": encode_cursor({"seq": str(after.seq), "id": after.log_id})}
