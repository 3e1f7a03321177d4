"""A small function for testing the host executor: each handler shows one runtime behaviour."""

import os
import random
import stat
import sys
import threading
import time
import uuid

print("probe: module imported")

# Init's own state: the same in every environment forked from one init, fresh after a new init.
INIT_ID = uuid.uuid4().hex
# State an environment changes: never seen by another environment.
CALLS = 0


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


def meet(dir, count, timeout_s):
    """Wait until `count` invocations are here at once (each leaves a file named by its pid in
    `dir`); False if they were not by timeout_s. Only separate environments can all be here together."""
    os.makedirs(dir, exist_ok=True)
    open(os.path.join(dir, str(os.getpid())), "w").close()
    deadline = time.monotonic() + float(timeout_s)
    while len(os.listdir(dir)) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def rendezvous(event, context):
    """Return once `count` invocations are in this handler at once (see meet)."""
    return {"pid": os.getpid(), "met": meet(event["dir"], event["count"], event["timeout_s"])}


def crash(event, context):
    """Exit at once (status 3), unless the event says {"crash": false}."""
    if event.get("crash", True):
        os._exit(3)
    return {"pid": os.getpid()}


def not_json(event, context):
    return {1, 2}


def custom_resource(event, context):
    """Answer a CloudFormation custom resource request as its properties say: Outcome SUCCESS or
    FAILED, and Value echoed back as the attribute Echo."""
    import json
    import urllib.request

    properties = event["ResourceProperties"]
    print(f"probe: {event['RequestType']} {properties}")
    answer = {
        "Status": properties.get("Outcome", "SUCCESS"),
        "Reason": f"the probe answered {properties.get('Outcome')} on purpose",
        "PhysicalResourceId": event.get("PhysicalResourceId") or f"probe-{event['LogicalResourceId']}",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"Echo": properties.get("Value", "")},
    }
    request = urllib.request.Request(
        event["ResponseURL"], data=json.dumps(answer).encode(), method="PUT", headers={"Content-Type": ""}
    )
    urllib.request.urlopen(request, timeout=10).close()
    return answer["Status"]


def state(event, context):
    """This environment's process, what it changed, and what it has open."""
    global CALLS
    CALLS += 1
    descriptors = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            mode = os.fstat(int(fd)).st_mode
        except OSError:  # the listing's own
            continue
        descriptors[fd] = "socket" if stat.S_ISSOCK(mode) else "pipe" if stat.S_ISFIFO(mode) else "other"
    if event.get("crash"):
        os._exit(5)
    met = meet(**event["meet"]) if "meet" in event else None
    time.sleep(float(event.get("seconds", 0)))
    return {
        "met": met,
        "pid": os.getpid(),
        "init_id": INIT_ID,
        "calls": CALLS,
        "random": random.random(),
        "descriptors": descriptors,
        "threads": threading.active_count(),
        "tasks": len(os.listdir("/proc/self/task")),
    }
