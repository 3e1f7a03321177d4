"""The system under test for one fault scenario: the `faults` stage served as `make up` serves it
(chalice local and the local SQS event source), with SQS behind the fault proxy; and the
reconciliation of what the clients were told against what MySQL, the rejects and the DLQ hold.
"""

import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from chalicelib.config import Settings
from faults.proxy import FaultProxy
from faults.workload import Record
from tools.bootstrap import bootstrap_mysql, bootstrap_queues, sqs_client
from tools.devstack import admin_connect, find_service
from tools.processes import Processes, wait_http
from tools.stage import ROOT, stage_environment, stage_settings

STAGE = "faults"
API_PORT = 8400
VENV = ROOT / ".venv" / "bin"


@dataclass(frozen=True)
class ConsumerProfile:
    """How the consumer runs in a scenario: the function timeout it gets, the queue's visibility
    timeout (at least 6 times that, as AWS requires) and settings that must fit inside them."""

    timeout_s: int | None = None  # None: the stage's
    visibility_timeout_s: int | None = None
    env: dict[str, str] = field(default_factory=dict)


# The stage's own settings: a 60 s function, a 360 s visibility timeout.
STANDARD = ConsumerProfile()
# A consumer killed mid-batch leaves its messages invisible for the whole visibility timeout: a
# 5 s function and a 30 s visibility timeout keep those scenarios short. Its MySQL read timeout
# and statement timeout are shorter than the function's, as the budget check requires.
SHORT_VISIBILITY = ConsumerProfile(
    timeout_s=5,
    visibility_timeout_s=30,
    env={"MYSQL_READ_TIMEOUT_S": "4", "MYSQL_STATEMENT_TIMEOUT_S": "3", "CONSUMER_RETRY_MAX_MS": "1000"},
)


class Sluice:
    """The faults stage's API and consumer processes; the proxy in front of LocalStack's SQS."""

    def __init__(self, log_dir: Path, proxy: FaultProxy) -> None:
        # The app reaches SQS through the proxy; the suite itself talks to LocalStack directly.
        self.settings: Settings = dataclasses.replace(
            stage_settings(STAGE), sqs_endpoint_url=stage_settings("local").sqs_endpoint_url
        )
        env = stage_environment(STAGE)
        self.key = env["DEV_API_KEY"]
        self.admin_token = env["ADMIN_TOKEN"]
        self.port = API_PORT
        self.proxy = proxy
        self._processes = Processes(log_dir)
        self._consumers: list[subprocess.Popen[bytes]] = []
        self._consumer_profile = STANDARD

    def prepare(self, consumer: ConsumerProfile) -> None:
        """Schema, users and key; queues with the profile's visibility timeout; everything empty."""
        self._consumer_profile = consumer
        settings = self.settings
        if consumer.visibility_timeout_s:
            settings = dataclasses.replace(settings, queue_visibility_timeout_s=consumer.visibility_timeout_s)
        bootstrap_mysql(settings, self.key)
        urls = bootstrap_queues(settings)
        with admin_connect(settings.mysql.database) as conn, conn.cursor() as cur:
            for table in ("logs", "log_rejects", "items"):
                cur.execute(f"TRUNCATE TABLE {table}")
            cur.execute("DROP TRIGGER IF EXISTS faults_reject")
        sqs = sqs_client(settings)
        for url in (urls.queue_url, urls.dlq_url):
            sqs.purge_queue(QueueUrl=url)
        r = redis.Redis.from_url(settings.redis_url)
        keys = list(r.scan_iter(match=f"{settings.redis_key_prefix}*", count=1000))
        if keys:
            r.delete(*keys)

    def start(self, consumers: int = 1) -> None:
        """The API, and `consumers` local event sources (each with the stage's W workers)."""
        cmd = [str(VENV / "python"), "-m", "tools.chalice_local", "--stage", STAGE, "--port", str(self.port)]
        self._processes.start("api", cmd)
        for _ in range(consumers):
            self.start_consumer()
        wait_http(f"http://127.0.0.1:{self.port}/health")

    def start_consumer(self) -> None:
        """One more local event source process."""
        profile = self._consumer_profile
        cmd = [str(VENV / "python"), "-m", "tools.local_consumer", "--stage", STAGE]
        if profile.timeout_s:
            cmd += ["--timeout-s", str(profile.timeout_s)]
        cmd += [f"--env={k}={v}" for k, v in profile.env.items()]
        self._consumers.append(self._processes.start(f"consumer-{len(self._consumers)}", cmd))

    def kill_consumers(self) -> None:
        """SIGKILL every consumer process, as a crash (or Lambda's end of an environment) would."""
        for consumer in self._consumers:
            self._processes.kill(consumer)
        self._consumers.clear()

    def stop(self) -> None:
        self._processes.stop()
        self._consumers.clear()

    def queue_urls(self) -> tuple[str, str]:
        sqs = sqs_client(self.settings)
        return (
            sqs.get_queue_url(QueueName=self.settings.log_queue_name)["QueueUrl"],
            sqs.get_queue_url(QueueName=self.settings.log_dlq_name)["QueueUrl"],
        )


# --- faults on the services this machine runs ------------------------------------------------


def kill_service(name: str) -> None:
    """SIGKILL a devstack service (MariaDB, Redis): no shutdown, no flush."""
    service = find_service(name)
    pid = service.pid()
    if pid is None:
        raise RuntimeError(f"{name} is not running")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while service.pid() is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not die")
        time.sleep(0.05)


def start_service(name: str) -> float:
    """Start a devstack service again; return when it answers (time.monotonic())."""
    find_service(name).start()
    return time.monotonic()


def pause_service(name: str, paused: bool) -> None:
    """SIGSTOP (hang) or SIGCONT (resume) a devstack service's process."""
    pid = find_service(name).pid()
    if pid is None:
        raise RuntimeError(f"{name} is not running")
    os.kill(pid, signal.SIGSTOP if paused else signal.SIGCONT)


# --- reconciliation --------------------------------------------------------------------------


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
    with admin_connect(settings.mysql.database) as conn, conn.cursor() as cur:
        cur.execute("SELECT message, COUNT(*) FROM logs GROUP BY message")
        stored = {row[0]: int(row[1]) for row in cur.fetchall()}
        cur.execute("SELECT body FROM log_rejects")
        rejected = {_marker(row[0]) for row in cur.fetchall()}
    dead: set[str] = set()
    if dlq_url:
        sqs = sqs_client(settings)
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
    sqs = sqs_client(settings)

    def depth() -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    return depth


def any_answer(record: Record) -> dict[str, Any]:
    """The answers by request and status, for the report."""
    return dict(sorted(record.answers.items()))
