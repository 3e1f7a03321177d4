"""The system under test for one fault scenario: what every target offers the scenarios
(`Target`), and the `faults` stage served as `make up` serves it (chalice local and the local SQS
event source), with SQS behind the fault proxy. The same app deployed into LocalStack is
faults/deployed.py."""

import dataclasses
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from chalicelib.config import Settings
from faults.proxy import FaultProxy
from tools import procs
from tools.admin import admin_connection
from tools.aws import aws_client
from tools.devstack.bootstrap import bootstrap_mysql, bootstrap_queues
from tools.devstack.processes import Processes, wait_http
from tools.ops.reset import empty_tables, forget_redis_keys, purge_queues
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


class Target(Protocol):
    """What a scenario drives: the API at `base_url`, its consumers, its stage's settings."""

    name: str
    settings: Settings
    key: str
    admin_token: str
    base_url: str
    proxy: FaultProxy | None
    drain_allowance_s: float  # added to a scenario's recovery bound: what this target's event source needs more

    def prepare(self, consumer: ConsumerProfile) -> None: ...
    def start(self, consumers: int = 1, api_env: dict[str, str] | None = None) -> None: ...
    def api_cpu_s(self) -> float | None: ...
    def start_consumer(self) -> None: ...
    def kill_consumers(self) -> None: ...
    def stop(self) -> None: ...
    def queue_urls(self) -> tuple[str, str]: ...


def reset(settings: Settings, key: str) -> None:
    """Schema, users and key; queues (with the settings' visibility timeout); everything empty."""
    bootstrap_mysql(settings, key)
    urls = bootstrap_queues(settings)
    with admin_connection(settings.mysql.database) as conn:
        empty_tables(conn, truncate=True)
        with conn.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS faults_reject")
    purge_queues(aws_client("sqs", settings), (urls.queue_url, urls.dlq_url))
    forget_redis_keys(settings.redis_url, settings.redis_key_prefix)


def queue_urls(settings: Settings) -> tuple[str, str]:
    """The log queue's URL and its dead-letter queue's."""
    sqs = aws_client("sqs", settings)
    return (
        sqs.get_queue_url(QueueName=settings.log_queue_name)["QueueUrl"],
        sqs.get_queue_url(QueueName=settings.log_dlq_name)["QueueUrl"],
    )


class Sluice:
    """The faults stage's API and consumer processes; the proxy in front of LocalStack's SQS."""

    name = "chalice local"
    drain_allowance_s = 0.0  # the local event source runs W batches at once, as Lambda would

    def __init__(self, log_dir: Path, proxy: FaultProxy) -> None:
        # The app reaches SQS through the proxy; the suite itself talks to LocalStack directly.
        self.settings: Settings = dataclasses.replace(
            stage_settings(STAGE), sqs_endpoint_url=stage_settings("local").sqs_endpoint_url
        )
        env = stage_environment(STAGE)
        self.key = env["DEV_API_KEY"]
        self.admin_token = env["ADMIN_TOKEN"]
        self.base_url = f"http://127.0.0.1:{API_PORT}"
        self.proxy: FaultProxy | None = proxy
        self._proxy = proxy
        self._processes = Processes(log_dir)
        self._consumers: list[subprocess.Popen[bytes]] = []
        self._api: subprocess.Popen[bytes] | None = None
        self._consumer_profile = STANDARD

    def prepare(self, consumer: ConsumerProfile) -> None:
        """Everything empty; queues with the profile's visibility timeout."""
        self._consumer_profile = consumer
        visibility = consumer.visibility_timeout_s or stage_settings(STAGE).queue_visibility_timeout_s
        self.settings = dataclasses.replace(self.settings, queue_visibility_timeout_s=visibility)
        reset(self.settings, self.key)

    def start(self, consumers: int = 1, api_env: dict[str, str] | None = None) -> None:
        """The API (with `api_env` over the stage's settings), and `consumers` local event sources
        (each with the stage's W workers)."""
        cmd = [str(VENV / "python"), "-m", "tools.devstack.chalice_local", "--stage", STAGE, "--port", str(API_PORT)]
        cmd += [f"--env={k}={v}" for k, v in (api_env or {}).items()]
        self._api = self._processes.start("api", cmd)
        for _ in range(consumers):
            self.start_consumer()
        wait_http(f"{self.base_url}/health")

    def api_cpu_s(self) -> float | None:
        """The CPU time (user and system) the API process has used so far."""
        return None if self._api is None else procs.cpu_s(self._api.pid)

    def start_consumer(self) -> None:
        """One more local event source process."""
        profile = self._consumer_profile
        cmd = [str(VENV / "python"), "-m", "tools.devstack.local_consumer", "--stage", STAGE]
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
        """The app's processes; the proxy passes everything again."""
        self._processes.stop()
        self._consumers.clear()
        self._proxy.restore()

    def queue_urls(self) -> tuple[str, str]:
        return queue_urls(self.settings)
