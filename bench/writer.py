"""Scenario 2: rows/s of the consumer's write path by batch size, between a floor and a ceiling.

floor:    one row per INSERT and a commit after each, on one reused connection: how the seed app
          wrote with PyMySQL (whose connections do not autocommit), minus its connect per request
batch N:  the consumer's path (chalicelib.consumer.insert.insert_log_rows), one transaction per N rows
ceiling:  LOAD DATA LOCAL INFILE of the same rows in one statement
All into a table with the product's `logs` schema, emptied before each run; median of the runs.
"""

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pymysql
from pymysql.connections import Connection

from chalicelib.consumer.insert import insert_log_rows, max_statement_bytes
from chalicelib.consumer.writer import record_stored
from chalicelib.database.schema import load_migrations, migrate
from chalicelib.logs.model import LogRecord

DATABASE = "sluice_bench_writer"
SOURCES = ["web-1", "web-2", "api", "worker"]
LEVELS = ["debug", "info", "info", "info", "warning", "error"]


BENCH_KEY_ID = "key_00000000000bec4e"  # the key the benchmark's entries name as their writer


def make_records(n: int, new_id: Callable[[], uuid.UUID] = uuid.uuid4) -> list[LogRecord]:
    """n log entries of about 300 bytes, as the API would queue them (ids from `new_id`)."""
    now = datetime.now(UTC)
    return [
        LogRecord.model_construct(
            id=new_id(),
            level=LEVELS[i % len(LEVELS)],
            source=SOURCES[i % len(SOURCES)],
            message=f"GET /items/item-{i % 977} 200 in {i % 50} ms; user agent bench/1.0; " + "x" * 150,
            timestamp=now,
            attributes={"status": 200, "ms": i % 50, "path": f"/items/item-{i % 977}"},
            received_at=now,
            key_id=BENCH_KEY_ID,
        )
        for i in range(n)
    ]


def connect(host: str, port: int, user: str, password: str) -> Connection:
    return pymysql.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        database=DATABASE,
        charset="utf8mb4",
        ssl_disabled=True,
        local_infile=True,
        autocommit=False,
        init_command="SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'",
    )


SEED_INSERT = (
    "INSERT INTO logs (id, level, source, message, ts, attributes, received_at, stored_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6))"
)


def seed_row(r: LogRecord) -> tuple[Any, ...]:
    return (str(r.id), r.level, r.source, r.message, r.timestamp, _json(r.attributes), r.received_at)


def write_floor(conn: Connection, records: Sequence[LogRecord]) -> None:
    with conn.cursor() as cur:
        for record in records:
            cur.execute(SEED_INSERT, seed_row(record))
            conn.commit()


def write_batches(batch: int) -> Callable[[Connection, Sequence[LogRecord]], None]:
    def write(conn: Connection, records: Sequence[LogRecord]) -> None:
        limit = max_statement_bytes(conn)
        for start in range(0, len(records), batch):
            record_stored(conn, insert_log_rows(conn, records[start : start + batch], batch, limit))
            conn.commit()

    return write


def write_load_data(conn: Connection, records: Sequence[LogRecord]) -> None:
    def field(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, encoding="utf-8") as tsv:
        for r in records:
            message = r.to_message()
            ts = message["timestamp"][:-1].replace("T", " ")
            received = message["received_at"][:-1].replace("T", " ")
            row = [message["id"], r.level, r.source, field(r.message), ts, field(_json(r.attributes)), received]
            tsv.write("\t".join(row) + "\n")
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"LOAD DATA LOCAL INFILE '{tsv.name}' INTO TABLE logs"
                " (id, level, source, message, ts, attributes, received_at) SET stored_at = UTC_TIMESTAMP(6)"
            )
        conn.commit()
    finally:
        os.unlink(tsv.name)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def prepare(admin: Connection) -> None:
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cur.execute(f"CREATE DATABASE {DATABASE}")
    admin.select_db(DATABASE)
    migrate(admin, load_migrations())  # the same tables the app uses


def run(
    admin: Connection,
    connect_writer: Callable[[], Connection],
    rows: int,
    repeats: int,
    batch_sizes: Sequence[int] = (1, 10, 100, 1000),
    progress: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """rows/s (median of `repeats`) for the floor, each batch size and the ceiling."""
    prepare(admin)
    records = make_records(rows)
    methods: list[tuple[str, Callable[[Connection, Sequence[LogRecord]], None]]] = [("floor", write_floor)]
    methods += [(f"batch_{b}", write_batches(b)) for b in batch_sizes]
    methods.append(("load_data", write_load_data))
    results: dict[str, Any] = {"rows": rows, "repeats": repeats, "rows_per_s": {}, "runs": {}}
    for name, method in methods:
        rates = []
        for _ in range(repeats):
            with admin.cursor() as cur:
                for table in ("logs", "log_ids"):
                    cur.execute(f"TRUNCATE TABLE {DATABASE}.{table}")
            conn = connect_writer()
            try:
                started = time.perf_counter()
                method(conn, records)
                elapsed = time.perf_counter() - started
            finally:
                conn.close()
            with admin.cursor() as cur:
                cur.execute(f"SELECT COUNT(*) FROM {DATABASE}.logs")
                stored = cur.fetchone()[0]  # type: ignore[index]
            if stored != rows:
                raise RuntimeError(f"{name} stored {stored} of {rows} rows")
            rates.append(rows / elapsed)
            progress()
        results["runs"][name] = [round(r) for r in rates]
        results["rows_per_s"][name] = round(statistics.median(rates))
    return results
