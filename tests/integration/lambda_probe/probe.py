"""A small function for testing the host executor: each handler shows one runtime behaviour."""

import os
import sys
import time

print("probe: module imported")


def context_info(event, context):
    print(f"probe: invoked with {event}")
    print("probe: to stderr", file=sys.stderr)
    return {
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "greeting": os.environ.get("GREETING"),
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
        "cwd": os.getcwd(),
        "event": event,
    }


def fail(event, context):
    raise ValueError("the probe failed on purpose")


def sleep(event, context):
    time.sleep(float(event["seconds"]))
    return {"pid": os.getpid(), "slept": event["seconds"]}


def crash(event, context):
    os._exit(3)


def not_json(event, context):
    return {1, 2}
