"""Scenario 3, cap vs drain rate: how long W consumers take to store a fixed backlog, and how many
MySQL connections that costs."""

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.sampler import Sampler, flush_status, mysql_status
from bench.systems.runners import empty_everything, local_consumer, prepare_databases, row_count
from bench.writer import make_records
from chalicelib.config import Settings
from chalicelib.logs.packing import group_for_batches
from tools.aws import aws_client

Progress = Callable[[str], None]


def load_backlog(settings: Settings, entries: int, entries_per_message: int) -> None:
    """Queue `entries` log entries as the API would: `entries_per_message` per SQS message."""
    records = [r.to_message() for r in make_records(entries)]
    bodies = [
        json.dumps({"logs": records[i : i + entries_per_message]}, separators=(",", ":"))
        for i in range(0, len(records), entries_per_message)
    ]
    sqs = aws_client("sqs", settings)
    url = sqs.get_queue_url(QueueName=settings.log_queue_name)["QueueUrl"]

    def send(group: list[str]) -> None:
        response = sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(group)]
        )
        if response.get("Failed"):
            raise RuntimeError(f"SQS refused backlog messages: {response['Failed']}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(send, group_for_batches(bodies, settings.sqs_batch_max_bytes)))


def run(
    log_dir: Path,
    backlog: int,
    writers: list[int],
    entries_per_message: int,
    timeout_s: float,
    progress: Progress,
) -> list[dict[str, Any]]:
    results = []
    for w in writers:
        settings = prepare_databases(writer_cap=w)
        empty_everything(settings)
        progress(f"drain: queueing {backlog} entries for W={w}")
        load_backlog(settings, backlog, entries_per_message)
        flush_status()
        sampler = Sampler().start()
        progress(f"drain: W={w} consumers storing {backlog} entries")
        started = sampler.now()
        with local_consumer(log_dir, w):
            deadline = time.monotonic() + timeout_s
            while row_count(f"{settings.mysql.database}.logs") < backlog and time.monotonic() < deadline:
                time.sleep(0.05)
            finished = sampler.now()
        series = sampler.stop()
        stored = row_count(f"{settings.mysql.database}.logs")
        inserting = [t for t, rows in zip(series.t, series.rows_inserted, strict=True) if rows > 0]
        first_insert = inserting[0] if inserting else finished
        results.append(
            {
                "writers": w,
                "backlog": backlog,
                "entries_per_message": entries_per_message,
                "stored": stored,
                "drain_s": round(finished - started, 2),
                "insert_window_s": round(finished - first_insert, 2),
                "rows_per_s": round(stored / max(finished - first_insert, sampler.interval_s)),
                "peak_threads_connected": max(series.threads_connected, default=0),
                "max_used_connections": mysql_status("Max_used_connections"),
                "completed": stored == backlog,
            }
        )
    return results
