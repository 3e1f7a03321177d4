"""Counts over time (GET /logs/stats): the writer adds what it stored, per minute and per hour of
`ts`, by source and level, in the transaction that stores the rows. Only rows this transaction
inserted are counted (a duplicate's id is not claimed again), so a redelivery never counts twice.
Rows are upserted in key order, so two writers adding to the same buckets cannot deadlock."""

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymysql.connections import Connection

from chalicelib.logs.model import LogRecord
from chalicelib.mysql.dialect import inserted_value, on_duplicate_key_update, server_of


def minute_of(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def hour_of(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class CountTable:
    name: str
    bucket_of: Callable[[datetime], datetime]
    by_source: bool  # per source and level, or per level for every source together


# In this order, each table's rows in key order: two writers never wait on each other in a cycle.
TABLES = (
    CountTable("log_counts", minute_of, True),
    CountTable("log_counts_hourly", hour_of, True),
    CountTable("log_level_counts", minute_of, False),
    CountTable("log_level_counts_hourly", hour_of, False),
)
COUNT_TABLES = tuple(table.name for table in TABLES)


def add_counts(conn: Connection, stored: Sequence[LogRecord]) -> None:
    """Add the stored records to the minute and hour counts of their source and level."""
    if not stored:
        return
    server = server_of(conn)
    upsert = on_duplicate_key_update(server, (), (f"entries = entries + {inserted_value(server, 'entries')}",))
    with conn.cursor() as cur:
        for table in TABLES:
            keys: Counter[tuple[Any, ...]] = Counter(
                ((r.source,) if table.by_source else ()) + (table.bucket_of(_naive(r.timestamp)), r.level)
                for r in stored
            )
            columns = "source, bucket, level" if table.by_source else "bucket, level"
            rows = sorted(keys.items())
            marks = ",".join(["(" + ", ".join(["%s"] * (len(rows[0][0]) + 1)) + ")"] * len(rows))
            args = [value for key, n in rows for value in (*key, n)]
            cur.execute(f"INSERT INTO {table.name} ({columns}, entries) VALUES {marks}{upsert}", args)


def _naive(value: datetime) -> datetime:
    """A UTC datetime without its zone, as DATETIME columns hold it."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
