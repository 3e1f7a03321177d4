"""What the comparison systems share: their MySQL user, tables and insert (bench-only code)."""

import json
import os
from typing import Any

import pymysql

DATABASE = "sluice_bench"
# Unlike sluice's `logs`, these tables do not make the log id unique, so a duplicate would show.
TABLES = ("direct_logs", "celery_logs")
TABLE_DDL = """CREATE TABLE IF NOT EXISTS {table} (
    seq BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    id CHAR(36) CHARACTER SET ascii NOT NULL,
    level VARCHAR(16) NOT NULL,
    source VARCHAR(64) NOT NULL,
    message TEXT NOT NULL,
    attributes JSON NOT NULL,
    stored_at DATETIME(6) NOT NULL,
    KEY by_id (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
USER = "bench_seed"
PASSWORD = "bench-seed-password"


def connect() -> pymysql.connections.Connection:
    """A new connection, as the seed app opened one per request (no TLS, like sluice's local stages)."""
    return pymysql.connect(
        host=os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("BENCH_MYSQL_PORT", "3307")),
        user=USER,
        password=PASSWORD,
        database=DATABASE,
        charset="utf8mb4",
        ssl_disabled=True,
        connect_timeout=10,
    )


def insert(conn: pymysql.connections.Connection, table: str, entry: dict[str, Any]) -> None:
    """One row, one commit: how the seed app wrote."""
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (id, level, source, message, attributes, stored_at)"
            " VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
            (entry["id"], entry["level"], entry["source"], entry["message"], json.dumps(entry.get("attributes", {}))),
        )
    conn.commit()


def error_body(exc: pymysql.err.MySQLError) -> dict[str, Any]:
    errno = exc.args[0] if exc.args else "unknown"
    return {"error": {"code": f"mysql_{errno}", "message": str(exc)}}
