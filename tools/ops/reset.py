"""A stage emptied for a fresh start (the tests, the fault suite, the benchmark): every table its
migrations create, its Redis keys and its queues. Its API keys stay: the bootstrap's development
key (DEV_API_KEY) lives there, and callers make their own keys beside it."""

import re
from collections.abc import Iterable
from typing import Any

import pymysql
import redis

from chalicelib.database.schema import load_migrations
from chalicelib.mysql.errors import DEADLOCK

_CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?", re.IGNORECASE)
KEPT = ("api_keys", "log_commit_sequence")  # keys callers made; the commit counter's one row


def migration_tables() -> list[str]:
    """Every table the migrations create, in the order they first appear."""
    names: list[str] = []
    for migration in load_migrations():
        for name in _CREATE_TABLE.findall(migration.sql):
            if name not in names:
                names.append(name)
    return names


def data_tables() -> list[str]:
    """The tables a run fills: every migration's table but the kept ones."""
    return [name for name in migration_tables() if name not in KEPT]


DEADLOCK_RETRIES = 5  # a writer still storing a batch may deadlock a DELETE: MySQL rolls one back


def empty_tables(conn: Any, *, truncate: bool = False) -> None:
    """Remove every row of the data tables of the connection's database, a table per transaction.
    DELETE by default (no metadata lock to wait on), tried again when MySQL chose it as a
    deadlock's victim; TRUNCATE for large tables no other session holds open."""
    with conn.cursor() as cur:
        for table in data_tables():
            for attempt in range(DEADLOCK_RETRIES):
                try:
                    cur.execute(f"TRUNCATE TABLE {table}" if truncate else f"DELETE FROM {table}")
                    conn.commit()
                    break
                except pymysql.err.OperationalError as exc:
                    conn.rollback()
                    if exc.args[0] != DEADLOCK or attempt == DEADLOCK_RETRIES - 1:
                        raise


def forget_redis_keys(redis_url: str, prefix: str) -> None:
    """Delete every Redis key under the stage's prefix."""
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def purge_queues(sqs: Any, urls: Iterable[str]) -> None:
    """Drop every message of the queues."""
    for url in urls:
        sqs.purge_queue(QueueUrl=url)
