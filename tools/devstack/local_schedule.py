"""The schedules that `chalice local` lacks: runs the app's @app.schedule handlers on timers, as
EventBridge runs them once deployed.

    python -m tools.devstack.local_schedule --stage local [--once]

Each handler runs once at start (so a fresh `make up` has what an hour-old deployment has, such as
today's log partitions), then every period of its `Rate`. A failed run is logged and tried again
at the next period, as a failed scheduled invocation is on AWS (no retry in between). `--once`
runs each handler once and exits with 1 if any failed.
"""

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalice.app import Rate, ScheduledEventConfig
from chalice.local import LambdaContext

from tools.devstack.processes import PARENT_ENV, die_with_parent
from tools.stage import apply_stage_environment

logger = logging.getLogger("sluice.local_schedule")
_UNIT_S = {Rate.MINUTES: 60, Rate.HOURS: 3600, Rate.DAYS: 86400}


@dataclass(frozen=True)
class Scheduled:
    name: str
    period_s: int
    handler: Callable[[dict[str, Any], Any], Any]


def scheduled_handlers(app_module: Any) -> list[Scheduled]:
    """The app's scheduled functions with their periods (Rate expressions only)."""
    found = []
    for source in app_module.app.event_sources:
        if not isinstance(source, ScheduledEventConfig):
            continue
        expression = source.schedule_expression
        if not isinstance(expression, Rate):
            raise SystemExit(f"{source.name}: only Rate schedules run locally, not {expression!r}")
        handler = getattr(app_module, source.handler_string.rsplit(".", 1)[-1])
        found.append(Scheduled(source.name, expression.value * _UNIT_S[expression.unit], handler))
    return found


def scheduled_event(region: str = "us-east-1") -> dict[str, Any]:
    """An event as EventBridge sends a scheduled rule's target (what Chalice's CloudWatchEvent reads)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": {},
    }


def run_once(job: Scheduled) -> bool:
    """One invocation with a scheduled event; False if it raised."""
    event = scheduled_event()
    context = LambdaContext(job.name, memory_size=256, max_runtime_ms=900_000)
    try:
        result = job.handler(event, context)
    except Exception:
        logger.exception("%s failed; next run in %d s", job.name, job.period_s)
        return False
    logger.info("%s: %s", job.name, result)
    return True


def run_forever(jobs: list[Scheduled], stopping: threading.Event) -> None:
    """Each job now, then every period, until `stopping` is set."""
    due = {job.name: time.monotonic() for job in jobs}
    while not stopping.is_set():
        for job in jobs:
            if time.monotonic() >= due[job.name]:
                run_once(job)
                due[job.name] = time.monotonic() + job.period_s
        stopping.wait(max(0.0, min(due.values()) - time.monotonic()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--once", action="store_true", help="run each handler once and exit")
    args = parser.parse_args(argv)
    if PARENT_ENV in os.environ:  # started by make up (tools.devstack.serve): end with it
        die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    apply_stage_environment(args.stage)
    import app as sluice_app  # imported after the stage's environment is in place, as in Lambda

    jobs = scheduled_handlers(sluice_app)
    if args.once:
        return 0 if all([run_once(job) for job in jobs]) else 1
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print("local schedule: " + ", ".join(f"{j.name} every {j.period_s} s" for j in jobs), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        run_forever(jobs, stopping)
    return 0


if __name__ == "__main__":
    sys.exit(main())
