"""`make status`: how a running local stage's pipeline is doing, sampled over a few seconds; or a
deployed stack's.

    python -m tools.ops.status --stage local [--seconds 5] [--watch]
    python -m tools.ops.status --stage prod --target aws [--stack-name sluice-prod] [--watch]

Shows the log queue (waiting, in flight, delayed), the dead-letter queue, how fast entries are
being stored (ids claimed today, counted twice `--seconds` apart), how far behind the newest
stored entries are (stored minus received), MySQL connections in use by each of the stage's
accounts against its cap, and the log partitions. Reads only: it receives no message (a receive
would count towards a message's trips to the dead-letter queue). The age of the oldest waiting
message is a CloudWatch metric on AWS (ApproximateAgeOfOldestMessage, and the stack's alarm);
LocalStack's SQS metrics are off here (they cost a core while messages wait), so the lag of the
newest stored entries stands in for it. `--watch` samples again until Ctrl-C.

A packaged stage's stack (`--target localstack|ministack` for one `make deploy-stack` made,
`--target aws` with your usual AWS credentials) is found through CloudFormation: its status and
schema version, its queues (the LogQueueUrl and LogDeadLetterQueueUrl outputs), the oldest waiting
message's age from CloudWatch, and which of its alarms are in ALARM. What is read from the database
(stored/s, lag, connections, partitions) is skipped there: on AWS only the stack's functions reach
it, inside the VPC. It needs cloudformation:DescribeStacks and ListStackResources,
sqs:GetQueueAttributes, cloudwatch:GetMetricStatistics and DescribeAlarms.
"""

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions
import pymysql.cursors

from chalicelib.database.accounts import MAINTAINER_CONNECTIONS
from chalicelib.database.partitions import read_partitions
from tools.admin import admin_connection
from tools.aws import aws_client
from tools.deploy.stack import stack_name, targets
from tools.ops import deployed
from tools.ops.queues import queue_counts
from tools.stage import is_packaged, stage_settings

OLDEST_WINDOW = timedelta(minutes=10)  # SQS sends its metrics to CloudWatch every minute or so
SKIPPED_ON_A_STACK = (
    "  stored, lag, connections, partitions: skipped for a deployed stack (they are read from its"
    " database, which only the stack's functions reach, inside its VPC; its CloudWatch metrics and"
    " alarms stand in for them)"
)


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


def queue_name(queue_url: str) -> str:
    """The queue's name, the last part of its URL."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def oldest_message_age_s(cloudwatch: Any, queue: str, now: datetime) -> float | None:
    """The queue's latest ApproximateAgeOfOldestMessage in CloudWatch (None: no data lately)."""
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue}],
        StartTime=now - OLDEST_WINDOW,
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    if not points:
        return None
    return float(max(points, key=lambda point: point["Timestamp"])["Maximum"])


def alarm_states(cfn: Any, cloudwatch: Any, name: str) -> dict[str, str]:
    """The stack's alarms (by logical id) and their states: OK, ALARM, INSUFFICIENT_DATA."""
    pages = cfn.get_paginator("list_stack_resources").paginate(StackName=name)
    alarms = {
        str(resource["PhysicalResourceId"]): str(resource["LogicalResourceId"])
        for page in pages
        for resource in page["StackResourceSummaries"]
        if resource["ResourceType"] == "AWS::CloudWatch::Alarm" and resource.get("PhysicalResourceId")
    }
    if not alarms:
        return {}
    found = cloudwatch.describe_alarms(AlarmNames=list(alarms))["MetricAlarms"]
    states = {alarms[a["AlarmName"]]: str(a["StateValue"]) for a in found if a["AlarmName"] in alarms}
    return {logical: states.get(logical, "not found") for logical in sorted(alarms.values())}


def describe_alarms(states: dict[str, str]) -> str:
    """How many of the alarms are in ALARM, and which."""
    firing = [logical for logical, state in states.items() if state == "ALARM"]
    return f"{len(firing)} of {len(states)} in ALARM" + (f": {', '.join(firing)}" if firing else "")


def readable(read: Callable[[], str]) -> str:
    """A line's figure, or why it cannot be read (a permission the caller lacks, say)."""
    try:
        return read()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        return f"cannot be read ({type(exc).__name__}: {exc})"


def stack_sample(stage: str, target: str, name: str | None = None) -> list[str]:
    """A deployed stack's figures that need no database: its status, queues, oldest message and alarms."""
    name = name or stack_name(stage)
    endpoint = None if target == "aws" else targets()[target].endpoint
    cfn = aws_client("cloudformation", endpoint_url=endpoint)
    stack = deployed.describe_stack(cfn, name)
    queue_url = deployed.stack_output(stack, "LogQueueUrl")
    dlq_url = deployed.stack_output(stack, "LogDeadLetterQueueUrl")
    sqs = aws_client("sqs", endpoint_url=endpoint)
    queue, dlq = queue_counts(sqs, queue_url), queue_counts(sqs, dlq_url)
    cloudwatch = aws_client("cloudwatch", endpoint_url=endpoint)
    now = datetime.now(UTC)

    def oldest() -> str:
        age = oldest_message_age_s(cloudwatch, queue_name(queue_url), now)
        return "no data" if age is None else f"{age:.0f} s"

    version = deployed.stack_outputs(stack).get("SchemaVersion", "-")
    minutes = int(OLDEST_WINDOW.total_seconds() // 60)
    return [
        f"{now:%H:%M:%S} stage {stage}: stack {name} ({stack['StackStatus']}, schema version {version})",
        f"  log queue:    {queue['waiting']} waiting, {queue['in flight']} in flight, {queue['delayed']} delayed",
        f"  dead letters: {dlq['waiting'] + dlq['in flight']}",
        f"  oldest:       {readable(oldest)} (ApproximateAgeOfOldestMessage, CloudWatch, last {minutes} min)",
        f"  alarms:       {readable(lambda: describe_alarms(alarm_states(cfn, cloudwatch, name)))}",
        SKIPPED_ON_A_STACK,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument(
        "--target", choices=[*sorted(targets()), "aws"], default="localstack", help="where a packaged stage's stack is"
    )
    parser.add_argument("--stack-name", help="a packaged stage's stack (default: sluice-<stage>)")
    parser.add_argument("--seconds", type=float, default=5.0, help="the drain rate's sampling window")
    parser.add_argument("--watch", action="store_true", help="sample again until Ctrl-C")
    args = parser.parse_args(argv)
    packaged = is_packaged(args.stage)
    if args.target == "aws" and not packaged:
        parser.error(f"--target aws needs a stage deployed as a stack (--stage prod, say), not {args.stage}")
    try:
        while True:
            if packaged:
                lines = stack_sample(args.stage, args.target, args.stack_name)
            else:
                lines = sample(args.stage, args.seconds)
            print("\n".join(lines), flush=True)
            if not args.watch:
                return 0
            if packaged:
                time.sleep(args.seconds)  # a local sample spends its window measuring
    except KeyboardInterrupt:
        return 0
    except (pymysql.err.OperationalError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        if packaged:
            print(f"stage {args.stage}: the stack's queues cannot be read ({type(exc).__name__}: {exc})")
            return 1
        print(f"stage {args.stage}: the pipeline cannot be read ({type(exc).__name__}); is `make up` running?")
        return 0  # a report, not a check: nothing running is an answer


if __name__ == "__main__":
    sys.exit(main())
