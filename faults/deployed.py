"""The fault suite's second target: the `faults-deployed` stage deployed into LocalStack with
`chalice deploy` (tools.deploy.localstack), as `make up-localstack` runs it: the API behind LocalStack's API
Gateway, the consumer a Lambda function fed by the SQS event source mapping (partial batch
responses on), both on the host executor.

The stage's consumer has a 10 s timeout and its queue a 60 s visibility timeout (six times that),
so a consumer killed mid-batch costs a minute rather than six; and a maximum receive count of 10,
so a 20 s MariaDB outage, twice the function's timeout, may give a batch back a few times (1 to
4 s apart) without sending it to the dead-letter queue.

SQS faults are not run here: the API's calls to SQS are the same code under chalice local, where
the fault proxy sits between them, and LocalStack's community edition keeps no state across a
restart, so "SQS stopped" cannot be shown by stopping it.
"""

import contextlib
import os
import signal

from chalicelib.config import Settings
from faults.harness import ConsumerProfile, queue_urls, reset
from faults.proxy import FaultProxy
from tools import procs
from tools.deploy.localstack import Deployment, delete, deploy
from tools.devstack.processes import wait_http
from tools.stage import stage_environment, stage_settings

STAGE = "faults-deployed"


class Deployed:
    """The faults-deployed stage in LocalStack; deployed by the first `start`, removed by `close`."""

    name = "LocalStack"
    # LocalStack's event source mapping runs one batch at a time (about 100 messages/s, NOTES.md), not
    # W: a 20 s outage's backlog of some 5,000 entries takes it 9 to 13 s here, which AWS would not.
    drain_allowance_s = 10.0

    def __init__(self) -> None:
        self.settings: Settings = stage_settings(STAGE)
        env = stage_environment(STAGE)
        self.key = env["DEV_API_KEY"]
        self.admin_token = env["ADMIN_TOKEN"]
        self.base_url = ""
        self.proxy: FaultProxy | None = None
        self._deployment: Deployment | None = None

    def prepare(self, consumer: ConsumerProfile) -> None:
        """Everything empty. The consumer is the stage's own function: `consumer` is not applied."""
        reset(self.settings, self.key)

    def start(self, consumers: int = 1, api_env: dict[str, str] | None = None) -> None:
        """Deploy (once), then wait for the API to answer through API Gateway (`api_env` is the stage's,
        fixed at deploy: no scenario run here needs another)."""
        if self._deployment is None:
            self._deployment = deploy(STAGE)
            self.base_url = self._deployment.api_url.rstrip("/")
        wait_http(f"{self.base_url}/health", timeout_s=120)

    def api_cpu_s(self) -> float | None:
        """Not measured: the API runs in Lambda environments LocalStack starts and stops."""
        return None

    def start_consumer(self) -> None:
        """Nothing to do: Lambda starts an environment for the next batch the event source hands over."""

    def kill_consumers(self) -> None:
        """SIGKILL the consumer's workers (the processes running its handler) in every environment:
        a crash in the middle of an invocation, which Lambda reports as the runtime exiting."""
        assert self._deployment is not None
        for pid in handler_processes(self._deployment.consumer_function):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Nothing to stop between scenarios: the deployment stays for the next one."""

    def close(self) -> None:
        """Remove the deployment."""
        if self._deployment is not None:
            delete(STAGE)
            self._deployment = None

    def queue_urls(self) -> tuple[str, str]:
        return queue_urls(self.settings)


def handler_processes(function_name: str) -> list[int]:
    """The pids of the function's execution environments (the processes that run its handler).

    Each is a fork of the function's template (localstack/host_executor), named `lambda-env`; its
    environment block is the template's, which names the function.
    """
    wanted = f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode()
    found = []
    for pid in procs.pids():
        try:
            if procs.name(pid) == "lambda-env" and wanted in procs.environment(pid):
                found.append(pid)
        except OSError:  # gone meanwhile, or not ours
            continue
    return found
