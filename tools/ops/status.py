"""`make status`: how a running local stage's pipeline is doing, sampled over a few seconds.

    python -m tools.ops.status --stage local [--seconds 5] [--watch]

Shows the log queue (waiting, in flight, delayed), the dead-letter queue, how fast entries are
being stored (ids claimed today, counted twice `--seconds` apart), how far behind the newest
stored entries are (stored minus received), MySQL connections in use by each of the stage's
accounts against its cap, and the log partitions. Reads only: it receives no message (a receive
would count towards a message's trips to the dead-letter queue). The age of the oldest waiting
message is a CloudWatch metric on AWS (ApproximateAgeOfOldestMessage, and the stack's alarm);
LocalStack's SQS metrics are off here (they cost a core while messages wait), so the lag of the
newest stored entries stands in for it. `--watch` samples again until Ctrl-C.
"""

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions
import pymysql.cursors

from chalicelib.database.accounts import MAINTAINER_CONNECTIONS
from chalicelib.database.partitions import read_partitions
from tools.admin import admin_connection
from tools.aws import aws_client
from tools.ops.queues import queue_counts
from tools.stage import is_packaged, stage_settings


def ids_today(cur: Any) -> int:
    cur.execute("SELECT COUNT(*) FROM log_ids WHERE seen_on = UTC_DATE()")
    return int(cur.fetchone()[0])


def newest_lag_s(cur: Any) -> float | None:
    """Stored minus received for the newest entries by timestamp (the index's end), the latest stored."""
    cur.execute("SELECT received_at, stored_at FROM logs ORDER BY ts DESC, id DESC LIMIT 50")
    rows = cur.fetchall()
    if not rows:
        return None
    received, stored = max(rows, key=lambda row: row[1])
    return float((stored - received).total_seconds())


def connections(cur: Any, users: dict[str, int]) -> dict[str, str]:
    cur.execute("SELECT USER, COUNT(*) FROM information_schema.PROCESSLIST GROUP BY USER")
    used = {str(user): int(n) for user, n in cur.fetchall()}
    return {user: f"{used.get(user, 0)} of {cap}" for user, cap in users.items()}


def sample(stage: str, seconds: float) -> list[str]:
    settings = stage_settings(stage)
    sqs = aws_client("sqs", settings)
    queue_url = sqs.get_queue_url(QueueName=settings.log_queue_name)["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=settings.log_dlq_name)["QueueUrl"]
    plain = settings.secrets.plain
    caps = {
        plain["mysql_api"]["username"]: settings.api_read_slots,
        plain["mysql_writer"]["username"]: settings.consumer_max_concurrency,
        plain["mysql_maintainer"]["username"]: MAINTAINER_CONNECTIONS,
    }
    with (
        admin_connection(settings.mysql.database, settings=settings) as conn,
        conn.cursor(pymysql.cursors.Cursor) as cur,
    ):
        before, started = ids_today(cur), time.monotonic()
        time.sleep(seconds)
        after, elapsed = ids_today(cur), time.monotonic() - started
        lag = newest_lag_s(cur)
        in_use = connections(cur, caps)
        partitions = [p for p in read_partitions(conn) if p.below is not None]
    queue, dlq = queue_counts(sqs, queue_url), queue_counts(sqs, dlq_url)
    days = f"{len(partitions)} ({partitions[0].name} .. {partitions[-1].name})" if partitions else "none yet"
    return [
        f"{datetime.now(UTC):%H:%M:%S} stage {stage}",
        f"  log queue:    {queue['waiting']} waiting, {queue['in flight']} in flight, {queue['delayed']} delayed",
        f"  dead letters: {dlq['waiting'] + dlq['in flight']}",
        f"  stored:       {(after - before) / elapsed:.1f} entries/s over {elapsed:.1f} s ({after} today)",
        f"  lag:          {'-' if lag is None else f'{lag:.2f} s'} (stored minus received, newest entries)",
        "  connections:  " + ", ".join(f"{user} {n}" for user, n in in_use.items()),
        f"  partitions:   {days}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--seconds", type=float, default=5.0, help="the drain rate's sampling window")
    parser.add_argument("--watch", action="store_true", help="sample again until Ctrl-C")
    args = parser.parse_args(argv)
    if is_packaged(args.stage):
        parser.error("make status reads a local stage; a stack's figures are its CloudWatch metrics and alarms")
    try:
        while True:
            print("\n".join(sample(args.stage, args.seconds)), flush=True)
            if not args.watch:
                return 0
    except KeyboardInterrupt:
        return 0
    except (pymysql.err.OperationalError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        print(f"stage {args.stage}: the pipeline cannot be read ({type(exc).__name__}); is `make up` running?")
        return 0  # a report, not a check: nothing running is an answer


if __name__ == "__main__":
    sys.exit(main())
