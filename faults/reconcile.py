"""Reconciliation: what the clients were told against what MySQL, the rejects table and the
dead-letter queue hold; and how long a dependency's backlog took to be stored once it returned."""

import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.config import Settings
from faults.workload import Record
from tools.admin import admin_connection
from tools.aws import aws_client
from tools.ops.queues import queue_depth as messages_in_queue


@dataclass
class Reconciliation:
    acknowledged: int
    stored: int  # acknowledged entries stored (once or more)
    lost: int  # acknowledged, and neither stored, set aside nor dead-lettered
    duplicated: int  # acknowledged entries stored more than once (under two ids)
    rejected_rightly: int  # set aside, as the scenario meant
    rejected_wrongly: int  # set aside, though valid
    dead_lettered: int
    unacknowledged_stored: int  # stored though the client never got a 202 (a 503 that had queued it)


def where_entries_are(settings: Settings, dlq_url: str | None = None) -> tuple[dict[str, int], set[str], set[str]]:
    """(marker -> rows stored, markers set aside, markers in the DLQ) of the faults stage."""
    with admin_connection(settings.mysql.database) as conn, conn.cursor() as cur:
        cur.execute("SELECT message, COUNT(*) FROM logs GROUP BY message")
        stored = {row[0]: int(row[1]) for row in cur.fetchall()}
        cur.execute("SELECT body FROM log_rejects")
        rejected = {_marker(row[0]) for row in cur.fetchall()}
    dead: set[str] = set()
    if dlq_url:
        sqs = aws_client("sqs", settings)
        while True:
            got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages")
            if not got:
                break
            for message in got:
                dead |= {e.get("message", "") for e in json.loads(message["Body"]).get("logs", [])}
    return stored, rejected - {""}, dead


def _marker(body: str) -> str:
    try:
        value = json.loads(body)
    except ValueError:
        return ""
    return str(value.get("message", "")) if isinstance(value, dict) else ""


def wait_until_settled(settings: Settings, acked: set[str], timeout_s: float) -> float | None:
    """Wait until every acknowledged entry is stored or set aside; return when (time.monotonic()),
    or None at the timeout (what is missing is then counted as lost).

    Messages may still wait in the queue then: extra copies of stored entries (a send that timed
    out after SQS took it, then retried), or messages a timed-out receive took, invisible until
    their visibility timeout ends. They can only add a row under an id already stored: nothing.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stored, rejected, _ = where_entries_are(settings)
        if acked <= stored.keys() | rejected:
            return time.monotonic()
        time.sleep(0.25)
    return None


class BacklogWatch:
    """From a dependency's return, how long until every entry acknowledged before it was stored
    (or set aside): polls in a thread while the workload goes on."""

    def __init__(self, settings: Settings, backlog: set[str], timeout_s: float) -> None:
        self._settings = settings
        self._backlog = backlog
        self._started = time.monotonic()
        self._deadline = self._started + timeout_s
        self.seconds: float | None = None
        self._thread = threading.Thread(target=self._watch, name="backlog-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while time.monotonic() < self._deadline:
            stored, rejected, _ = where_entries_are(self._settings)
            if self._backlog <= stored.keys() | rejected:
                self.seconds = round(time.monotonic() - self._started, 1)
                return
            time.sleep(0.2)

    def result(self) -> float | None:
        """Seconds from the return until the backlog was stored; None if it was not, in time."""
        self._thread.join(max(0.0, self._deadline - time.monotonic()))
        return self.seconds


def reconcile(
    record: Record, settings: Settings, dlq_url: str, meant_rejected: Callable[[str], bool]
) -> Reconciliation:
    """Every acknowledged entry against MySQL, the rejects table and the DLQ."""
    stored, rejected, dead = where_entries_are(settings, dlq_url)
    acked = set(record.acked)
    found = {m for m, n in stored.items() if n > 0}
    return Reconciliation(
        acknowledged=len(acked),
        stored=len(acked & found),
        lost=len(acked - found - rejected - dead),
        duplicated=sum(1 for m in acked if stored.get(m, 0) > 1),
        rejected_rightly=sum(1 for m in acked & rejected if meant_rejected(m)),
        rejected_wrongly=sum(1 for m in acked & rejected if not meant_rejected(m)),
        dead_lettered=len(acked & dead),
        unacknowledged_stored=len(found - acked),
    )


def queue_depth(settings: Settings, queue_url: str) -> Callable[[], int]:
    """Messages waiting or in flight in the log queue."""
    sqs = aws_client("sqs", settings)

    return functools.partial(messages_in_queue, sqs, queue_url)
