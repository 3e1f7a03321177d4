"""`make redrive` and `make replay-rejects`: what failed, back into the pipeline once fixed.

    python -m tools.ops.redrive dead-letters --stage local [--dry-run] [--method task|copy] [--max N]
    python -m tools.ops.redrive rejects --stage local [--dry-run] [--since 2026-11-27T00:00:00] [--max N]
                                       [--key-id key_0123456789abcdef]

dead-letters: the DLQ's messages back to the log queue (tools/ops/dead_letters.py): SQS's message move
task by default, or receive-send-delete (`--method copy`, also what `--max` uses).
rejects: `log_rejects` rows not replayed yet back to the log queue (tools/ops/replay.py).

A local stage uses LocalStack and the local MariaDB. A packaged stage uses its stack's queues
(`--target localstack|ministack` for a stack `make deploy-stack` made, as its operator role;
`--target aws` with your usual AWS credentials, which must be the role the stack's RedriveRoleArn
names: the queues' policies let no other principal move or read messages; the stack named by
`--stack-name`, default sluice-<stage>), and for
`rejects` the database as an administrator (MYSQL_ADMIN_HOST and the other MYSQL_ADMIN_*
variables on AWS; the local MariaDB for an emulator's stack).
"""

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from chalicelib.logs.queue import LogQueue
from tools.admin import admin_connection
from tools.aws import aws_client
from tools.deploy.stack import operator_client, stack_name, targets
from tools.ops import deployed
from tools.ops.dead_letters import DeadLetters
from tools.ops.replay import RejectReplay
from tools.stage import is_packaged, stage_settings


def queues(stage: str, target: str, name: str | None) -> tuple[Any, str, str]:
    """(SQS client, log queue URL, DLQ URL) for the stage where it runs."""
    if not is_packaged(stage):
        settings = stage_settings(stage)
        sqs = aws_client("sqs", settings)
        return (
            sqs,
            sqs.get_queue_url(QueueName=settings.log_queue_name)["QueueUrl"],
            sqs.get_queue_url(QueueName=settings.log_dlq_name)["QueueUrl"],
        )
    endpoint = None if target == "aws" else targets()[target].endpoint
    cfn = aws_client("cloudformation", endpoint_url=endpoint)
    stack = deployed.describe_stack(cfn, name or stack_name(stage))
    outputs = deployed.stack_outputs(stack)
    if endpoint is None:  # AWS: your credentials, which must be the stack's RedriveRoleArn's
        return aws_client("sqs"), outputs["LogQueueUrl"], outputs["LogDeadLetterQueueUrl"]
    operator = next(p["ParameterValue"] for p in stack["Parameters"] if p["ParameterKey"] == "RedriveRoleArn")
    return operator_client(target, operator, "sqs"), outputs["LogQueueUrl"], outputs["LogDeadLetterQueueUrl"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["dead-letters", "rejects"])
    parser.add_argument("--stage", default="local")
    parser.add_argument("--target", choices=[*sorted(targets()), "aws"], default="localstack")
    parser.add_argument("--stack-name", help="default: sluice-<stage>")
    parser.add_argument("--dry-run", action="store_true", help="show what would move; move nothing")
    parser.add_argument("--method", choices=["task", "copy"], default="task", help="dead-letters: how")
    parser.add_argument("--max", type=int, help="at most this many messages (dead-letters: copy) or rows")
    parser.add_argument("--since", type=datetime.fromisoformat, help="rejects: set aside at or after (UTC)")
    parser.add_argument("--key-id", help="rejects: the key that wrote the entries that name none (you vouch for it)")
    args = parser.parse_args(argv)
    if args.target == "aws" and not is_packaged(args.stage):
        parser.error(f"--target aws needs a stage deployed as a stack (--stage prod, say), not {args.stage}")
    sqs, queue_url, dlq_url = queues(args.stage, args.target, args.stack_name)
    if args.what == "dead-letters":
        dead = DeadLetters(sqs, queue_url, dlq_url)
        if args.dry_run:
            report = dead.dry_run().to_dict()
        elif args.method == "copy" or args.max is not None:
            report = dead.move_by_copy(args.max).to_dict()
        else:
            report = dead.move_with_task().to_dict()
    else:
        settings = stage_settings(args.stage)
        queue = LogQueue(
            sqs, settings.log_queue_name, settings.sqs_message_max_bytes, settings.sqs_batch_max_bytes, queue_url
        )
        with admin_connection(settings.mysql.database, settings=settings) as conn:
            replay = RejectReplay(conn, queue, key_id=args.key_id)
            report = replay.run(dry_run=args.dry_run, since=args.since, limit=args.max).to_dict()
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
