"""The logs table as the API reads it: one entry by id, and the pages of GET /logs."""

import json
from datetime import datetime
from typing import Any

from chalicelib.keys.sources import sql_condition
from chalicelib.mysql.connector import Database, all_rows, one_row
from chalicelib.validation import format_rfc3339

_LOG_COLUMNS = "id, level, source, message, ts, attributes, received_at, stored_at"


class LogStore:
    """Reads stored log entries; each call takes one connection within a read slot."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, log_id: str) -> dict[str, Any] | None:
        """One stored log entry, or None."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {_LOG_COLUMNS} FROM logs WHERE id = %s", (log_id,))
            row = one_row(cur)
        return _log_from_row(row) if row else None

    def query(
        self,
        *,
        source: str | None,
        level: str | None,
        since: datetime | None,
        until: datetime | None,
        before: tuple[datetime, str] | None,
        limit: int,
        sources: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Log entries newest first (by timestamp, then id), before the keyset position `before`;
        `sources` (a key's patterns: names, prefixes ending in *) limits them to those sources."""
        sql, args = logs_query(
            source=source, level=level, since=since, until=until, before=before, limit=limit, sources=sources
        )
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            rows = all_rows(cur)
        return [_log_from_row(r) for r in rows[:limit]], len(rows) > limit


def logs_query(
    *,
    source: str | None,
    level: str | None,
    since: datetime | None,
    until: datetime | None,
    before: tuple[datetime, str] | None,
    limit: int,
    sources: list[str] | None = None,
) -> tuple[str, list[Any]]:
    """The SELECT of GET /logs and its arguments (one more row than `limit`, to tell if there are more)."""
    where: list[str] = []
    args: list[Any] = []
    if source is not None:
        where.append("source = %s")
        args.append(source)
    if sources is not None:
        condition, condition_args = sql_condition(sources)
        if condition is not None:
            where.append(condition)
            args.extend(condition_args)
    if level is not None:
        where.append("level = %s")
        args.append(level)
    if since is not None:
        where.append("ts >= %s")
        args.append(since)
    if until is not None:
        where.append("ts < %s")
        args.append(until)
    if before is not None:
        where.append("(ts < %s OR (ts = %s AND id < %s))")
        args.extend([before[0], before[0], before[1]])
    sql = f"SELECT {_LOG_COLUMNS} FROM logs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC, id DESC LIMIT %s"
    args.append(limit + 1)
    return sql, args


def _log_from_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "level": row["level"],
        "source": row["source"],
        "message": row["message"],
        "timestamp": format_rfc3339(row["ts"]),
        "attributes": json.loads(row["attributes"]),
        "received_at": format_rfc3339(row["received_at"]),
        "stored_at": format_rfc3339(row["stored_at"]),
    }
