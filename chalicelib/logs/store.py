"""The logs table as the API reads it: one entry by id, and the pages of GET /logs."""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.keys.sources import sql_condition
from chalicelib.logs.search import Search, search_conditions
from chalicelib.mysql.connector import Database, all_rows, one_row
from chalicelib.validation import format_rfc3339

LOG_COLUMNS = "id, level, source, message, ts, attributes, received_at, stored_at, key_id"


@dataclass(frozen=True)
class LogFilter:
    """What a page of GET /logs asks for: its filters, the keyset position (timestamp, id) it continues
    before, its size, and the key's source patterns (names, prefixes ending in *; None: every source)."""

    limit: int
    source: str | None = None
    level: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: tuple[datetime, str] | None = None
    sources: list[str] | None = None
    search: Search = field(default_factory=Search)


class LogStore:
    """Reads stored log entries; each call takes one connection within a read slot."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, log_id: str) -> dict[str, Any] | None:
        """One stored log entry, or None."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {LOG_COLUMNS} FROM logs WHERE id = %s", (log_id,))
            row = one_row(cur)
        return log_from_row(row) if row else None

    def query(self, wanted: LogFilter) -> tuple[list[dict[str, Any]], bool]:
        """Log entries newest first (by timestamp, then id), and whether more follow."""
        sql, args = logs_query(wanted)
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            rows = all_rows(cur)
        return [log_from_row(r) for r in rows[: wanted.limit]], len(rows) > wanted.limit


def logs_query(wanted: LogFilter) -> tuple[str, list[Any]]:
    """The SELECT of GET /logs and its arguments (one more row than the limit, to tell if there are more)."""
    where, args = filter_conditions(wanted)
    if wanted.since is not None:
        where.append("ts >= %s")
        args.append(wanted.since)
    if wanted.until is not None:
        where.append("ts < %s")
        args.append(wanted.until)
    if wanted.before is not None:
        where.append("(ts < %s OR (ts = %s AND id < %s))")
        args.extend([wanted.before[0], wanted.before[0], wanted.before[1]])
    sql = f"SELECT {LOG_COLUMNS} FROM logs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC, id DESC LIMIT %s"
    args.append(wanted.limit + 1)
    return sql, args


def filter_conditions(wanted: LogFilter) -> tuple[list[str], list[Any]]:
    """The conditions on a log row's own columns (no time range, no position): source, level, the
    key's sources, the search."""
    where: list[str] = []
    args: list[Any] = []
    if wanted.source is not None:
        where.append("source = %s")
        args.append(wanted.source)
    if wanted.sources is not None:
        condition, condition_args = sql_condition(wanted.sources)
        if condition is not None:
            where.append(condition)
            args.extend(condition_args)
    if wanted.level is not None:
        where.append("level = %s")
        args.append(wanted.level)
    searched, search_args = search_conditions(wanted.search)
    return where + searched, args + search_args


def log_from_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "level": row["level"],
        "source": row["source"],
        "message": row["message"],
        "timestamp": format_rfc3339(row["ts"]),
        "attributes": json.loads(row["attributes"]),
        "received_at": format_rfc3339(row["received_at"]),
        "stored_at": format_rfc3339(row["stored_at"]),
        "key_id": row["key_id"],
    }
