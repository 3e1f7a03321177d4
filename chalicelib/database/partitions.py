"""Retention by partition: the logs table holds one partition per day of `ts`, and maintenance
(every hour) keeps them.

Partitions, oldest first: `p_before` (what was stored before the first maintenance run, if
anything), `pYYYYMMDD` (the rows whose `ts` falls on that day, UTC) and `p_future`, a catch-all
above the last day, so no row ever lacks a partition. Maintenance:
- creates the days up to LOG_PARTITIONS_AHEAD_DAYS ahead by splitting `p_future`, which is empty
  then (the API takes timestamps at most LOG_TIMESTAMP_MAX_AHEAD_S ahead), so the split moves no
  rows;
- drops the partitions whose every row is older than LOG_RETENTION_DAYS: DROP PARTITION removes
  the day's file, it deletes no rows one by one;
- deletes the dropped days' counts (`log_counts`, `log_counts_hourly`: GET /logs/stats);
- forgets the ids (`log_ids`) first stored more than LOG_ID_WINDOW_DAYS ago, in chunks, and the
  commit order (`log_commits`: GET /logs/tail) as old.
A run waits at most PARTITION_LOCK_WAIT_S for the table's metadata lock (writers hold it during
their transactions) or a row lock, and otherwise fails, to be tried again at the next run. A
named lock keeps two runs apart. Each statement is stopped after PARTITION_STATEMENT_TIMEOUT_S
on MariaDB; on MySQL 8, which stops only SELECTs, the client gives up READ_TIMEOUT_MARGIN_S later
(chalicelib/mysql/dialect.py).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pymysql.cursors
from pymysql.connections import Connection

from chalicelib.config import Settings
from chalicelib.consumer.counts import COUNT_TABLES
from chalicelib.errors import MigrationError
from chalicelib.mysql.connector import MySQLConnector

logger = logging.getLogger(__name__)

FUTURE = "p_future"
BEFORE = "p_before"
ID_DELETE_CHUNK = 10_000  # log_ids rows per DELETE
ID_DELETE_ROUNDS = 100  # at most this many per run (a million ids); the rest next run


@dataclass(frozen=True)
class Partition:
    name: str
    below: date | None  # rows with ts before this day (exclusive bound); None: MAXVALUE
    rows: int  # InnoDB's estimate


@dataclass(frozen=True)
class Plan:
    """What one maintenance run does."""

    create: tuple[date, ...]  # days to split off p_future, oldest first
    first_split: bool  # no day exists yet: p_before takes every row before the first new day
    drop: tuple[str, ...]  # partitions to drop
    dropped_below: date | None = None  # every row before this day goes with them (their counts too)


@dataclass
class MaintenanceResult:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    ids_forgotten: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "dropped": self.dropped, "ids_forgotten": self.ids_forgotten}


def day_name(day: date) -> str:
    return f"p{day:%Y%m%d}"


def read_partitions(conn: Connection) -> list[Partition]:
    """The logs table's partitions in order; empty if it is not partitioned."""
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute(
            "SELECT PARTITION_NAME, PARTITION_DESCRIPTION, TABLE_ROWS FROM information_schema.PARTITIONS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'logs' AND PARTITION_NAME IS NOT NULL"
            " ORDER BY PARTITION_ORDINAL_POSITION"
        )
        rows = cur.fetchall()
    return [Partition(str(name), _bound(str(description)), int(count or 0)) for name, description, count in rows]


def _bound(description: str) -> date | None:
    """'2026-11-28 00:00:00' (quoted or not) -> that day; MAXVALUE -> None."""
    text = description.strip("'\" ")
    if text.upper() == "MAXVALUE":
        return None
    return date.fromisoformat(text[:10])


def plan(partitions: list[Partition], today: date, retention_days: int, ahead_days: int) -> Plan:
    """The days to create (through today + ahead_days) and the partitions to drop (every row
    older than retention_days: the partition's bound is at or before today - retention_days),
    those just created included (maintenance that missed days catches up)."""
    if not partitions or partitions[-1].name != FUTURE:
        raise MigrationError("the logs table is not partitioned as migration 0003 leaves it")
    days = [p for p in partitions if p.below is not None]
    first_split = not days
    start = today if first_split else days[-1].below
    assert start is not None
    create = []
    day = start
    while day <= today + timedelta(days=ahead_days):
        create.append(day)
        day += timedelta(days=1)
    cutoff = today - timedelta(days=retention_days)
    bounds = [(p.name, p.below) for p in days] + [(day_name(d), d + timedelta(days=1)) for d in create]
    if first_split and create:
        bounds.insert(0, (BEFORE, create[0]))
    dropped = [(name, below) for name, below in bounds if below is not None and below <= cutoff]
    return Plan(tuple(create), first_split, tuple(n for n, _ in dropped), max((b for _, b in dropped), default=None))


def _delete_in_chunks(conn: Connection, delete: str, before: date) -> int:
    """Run `delete` (a DELETE ... WHERE <day> < %s) ID_DELETE_CHUNK rows at a time, each committed."""
    total = 0
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        for _ in range(ID_DELETE_ROUNDS):
            deleted = int(cur.execute(f"{delete} LIMIT %s", (before, ID_DELETE_CHUNK)))
            conn.commit()
            total += deleted
            if deleted < ID_DELETE_CHUNK:
                break
    return total


def utc_today() -> date:
    return datetime.now(UTC).date()


class PartitionMaintainer:
    """Runs `maintain` with the maintainer's MySQL account (chalicelib/database/accounts.py), on its own
    connection, closed after."""

    def __init__(self, connector: MySQLConnector, settings: Settings, today: Callable[[], date] = utc_today) -> None:
        self._connector = connector
        self._settings = settings
        self._today = today

    @property
    def connector(self) -> MySQLConnector:
        """What opens the maintainer's connection."""
        return self._connector

    def run(self) -> dict[str, Any]:
        """One maintenance run; what it created, dropped and forgot."""
        s = self._settings
        conn = self._connector.connect()
        try:
            result = maintain(
                conn,
                self._today(),
                retention_days=s.log_retention_days,
                ahead_days=s.log_partitions_ahead_days,
                id_window_days=s.log_id_window_days,
                lock_wait_s=s.partition_lock_wait_s,
            )
        finally:
            conn.close()
        return result.to_dict()


def maintain(
    conn: Connection, today: date, *, retention_days: int, ahead_days: int, id_window_days: int, lock_wait_s: int
) -> MaintenanceResult:
    """Create, drop and forget as the module says; with an administrator's or the maintainer's connection."""
    result = MaintenanceResult()
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute("SELECT GET_LOCK(CONCAT(DATABASE(), '.partitions'), %s)", (lock_wait_s,))
        row = cur.fetchone()
        if not row or row[0] != 1:
            raise MigrationError("another partition maintenance run holds the lock")
        try:
            cur.execute("SET SESSION lock_wait_timeout = %s, innodb_lock_wait_timeout = %s", (lock_wait_s, lock_wait_s))
            todo = plan(read_partitions(conn), today, retention_days, ahead_days)
            if todo.create:
                parts = []
                for i, day in enumerate(todo.create):
                    if i == 0 and todo.first_split:
                        parts.append(f"PARTITION {BEFORE} VALUES LESS THAN ('{day:%Y-%m-%d}')")
                    nxt = day + timedelta(days=1)
                    parts.append(f"PARTITION {day_name(day)} VALUES LESS THAN ('{nxt:%Y-%m-%d}')")
                parts.append(f"PARTITION {FUTURE} VALUES LESS THAN (MAXVALUE)")
                cur.execute(f"ALTER TABLE logs REORGANIZE PARTITION {FUTURE} INTO ({', '.join(parts)})")
                result.created = [day_name(d) for d in todo.create]
            if todo.drop:
                cur.execute(f"ALTER TABLE logs DROP PARTITION {', '.join(todo.drop)}")
                result.dropped = list(todo.drop)
            if todo.dropped_below is not None:  # the dropped days' counts (GET /logs/stats) go with them
                for table in COUNT_TABLES:
                    cur.execute(f"DELETE FROM {table} WHERE bucket < %s", (todo.dropped_below,))
                conn.commit()
            forget_before = today - timedelta(days=id_window_days)
            result.ids_forgotten = _delete_in_chunks(conn, "DELETE FROM log_ids WHERE seen_on < %s", forget_before)
            # The commit order (GET /logs/tail) is kept as long as the ids it leads to.
            _delete_in_chunks(conn, "DELETE FROM log_commits WHERE committed_on < %s", forget_before)
        finally:
            cur.execute("DO RELEASE_LOCK(CONCAT(DATABASE(), '.partitions'))")
    logger.info("partition maintenance", extra={f"partitions_{k}": v for k, v in result.to_dict().items()})
    return result
