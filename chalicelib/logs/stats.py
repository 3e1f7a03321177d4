"""GET /logs/stats: how many entries were stored per interval of `timestamp`, by level or source.

It reads the counts the writer keeps (chalicelib/consumer/counts.py) rather than the rows: per
minute for 1m and 5m buckets, per hour for 1h and 1d. The range is widened to whole buckets, and
every bucket of it is answered, those without entries as zero. The counts are exact for what is
stored; the same filters as GET /logs apply, but for a search (`q`, `attr.*`): no count holds words.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from chalicelib.errors import ValidationError
from chalicelib.keys.sources import sql_condition
from chalicelib.logs.model import SOURCE_PATTERN, LogLevel
from chalicelib.logs.store import LogFilter, filter_conditions
from chalicelib.mysql.connector import Database, all_rows
from chalicelib.validation import Strict, Timestamp, format_rfc3339

Interval = Literal["1m", "5m", "1h", "1d"]
INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
# The counts each interval reads (chalicelib/consumer/counts.py): per source, and for every source together.
_BY_SOURCE = {"1m": "log_counts", "5m": "log_counts", "1h": "log_counts_hourly", "1d": "log_counts_hourly"}
_EVERY_SOURCE = {"1m": "log_level_counts", "5m": "log_level_counts", "1h": "log_level_counts_hourly"}
_EVERY_SOURCE["1d"] = _EVERY_SOURCE["1h"]
_EPOCH = datetime(1970, 1, 1)


class StatsQuery(Strict):
    since: Timestamp | None = None
    until: Timestamp | None = None
    interval: Interval = "1m"
    by: Literal["level", "source"] = "level"
    source: str | None = Field(default=None, pattern=SOURCE_PATTERN)
    level: LogLevel | None = None


@dataclass(frozen=True)
class StatsRange:
    """Whole buckets of one interval: [since, until)."""

    since: datetime
    until: datetime
    interval: str

    @property
    def step(self) -> timedelta:
        return INTERVALS[self.interval]

    def starts(self) -> list[datetime]:
        count = (self.until - self.since) // self.step
        return [self.since + i * self.step for i in range(count)]


def bucket_range(since: datetime, until: datetime, interval: str, max_buckets: int) -> StatsRange:
    """[since, until) widened to whole buckets (UTC, naive); ValidationError past `max_buckets`."""
    step = INTERVALS[interval]
    start = _EPOCH + ((since.replace(tzinfo=None) - _EPOCH) // step) * step
    end = _EPOCH + -((_EPOCH - until.replace(tzinfo=None)) // step) * step  # rounded up
    if end <= start:
        end = start + step
    if (end - start) // step > max_buckets:
        raise ValidationError(
            "invalid query: since",
            details=[
                {
                    "field": "since",
                    "message": f"at most {max_buckets} buckets of {interval}: a longer interval, or a shorter range",
                }
            ],
        )
    return StatsRange(start, end, interval)


class StatsStore:
    """Reads the writer's counts; each call takes one connection within a read slot."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def counts(
        self, span: StatsRange, by: str, source: str | None, level: str | None, sources: list[str] | None
    ) -> dict[datetime, dict[str, int]]:
        """Entries per bucket start, by level or source (only those with entries)."""
        wanted = LogFilter(limit=0, source=source, level=level, sources=sources)
        conditions, condition_args = filter_conditions(wanted)
        where = ["bucket >= %s", "bucket < %s", *conditions]
        args: list[Any] = [span.since, span.until, *condition_args]
        column = "level" if by == "level" else "source"
        # Every source, by level: the counts kept for every source together answer it.
        every_source = by == "level" and source is None and (sources is None or sql_condition(sources)[0] is None)
        table = (_EVERY_SOURCE if every_source else _BY_SOURCE)[span.interval]
        sql = (
            f"SELECT bucket, {column} AS name, SUM(entries) AS entries FROM {table}"
            f" WHERE {' AND '.join(where)} GROUP BY bucket, {column}"
        )
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            rows = all_rows(cur)
        found: dict[datetime, dict[str, int]] = {}
        for row in rows:
            start = span.since + ((row["bucket"] - span.since) // span.step) * span.step
            counts = found.setdefault(start, {})
            counts[str(row["name"])] = counts.get(str(row["name"]), 0) + int(row["entries"])
        return found


def stats_answer(span: StatsRange, by: str, counts: dict[datetime, dict[str, int]]) -> dict[str, Any]:
    """The answer: every bucket of the range, zero-filled, and the total."""
    buckets = [{"start": format_rfc3339(start), "counts": counts.get(start, {})} for start in span.starts()]
    return {
        "interval": span.interval,
        "by": by,
        "since": format_rfc3339(span.since),
        "until": format_rfc3339(span.until),
        "buckets": buckets,
        "total": sum(sum(c.values()) for c in counts.values()),
    }
