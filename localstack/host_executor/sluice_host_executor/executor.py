"""LocalStack's side of a host-process execution environment.

Each environment is `python runtime.py` started with the function's environment, in its own
process group; it reports ready (with the port it listens on for invocations) or an init error to
LocalStack's executor endpoint, and LocalStack sends invocations to it as it would to a container.
"""

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import InvalidStateError
from pathlib import Path

from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint, StatusErrorException
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor
from werkzeug import Request

from localstack import config

LOG = logging.getLogger(__name__)

RUNTIME_SCRIPT = Path(__file__).with_name("runtime.py")
# The interpreter that runs function code; its version must match the function's runtime.
PYTHON_ENV = "LAMBDA_HOST_PYTHON"
STOP_GRACE_S = 2.0
# What a process needs from the host beyond the function's own environment.
HOST_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


def host_python() -> str:
    return os.environ.get(PYTHON_ENV) or sys.executable


def host_python_version(python: str) -> str:
    """'python3.13' for the interpreter at `python`."""
    out = subprocess.run(
        [python, "-c", "import sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()


class HostExecutorEndpoint(ExecutorEndpoint):
    """LocalStack's endpoint for one environment; the environment tells its invoke port when ready."""

    def status_ready(self, request: Request, executor_id: str):
        self.container_port = int(request.get_json(force=True)["port"])
        return super().status_ready(request, executor_id)


class HostRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = HostExecutorEndpoint(self.id, container_address="127.0.0.1", container_port=None)
        self.process: subprocess.Popen | None = None
        self.log_path = Path(config.dirs.tmp) / "lambda-host" / f"{self.id}.log"

    def start(self, env_vars: dict[str, str]) -> None:
        runtime = self.function_version.config.runtime or ""
        python = host_python()
        if not runtime.startswith("python"):
            raise LambdaRuntimeException(f"the host executor runs Python functions only, not {runtime or 'images'}")
        have = host_python_version(python)
        if have != runtime:
            raise LambdaRuntimeException(
                f"function runtime {runtime} needs a host {runtime}; {PYTHON_ENV}={python} is {have}"
            )
        code = self.function_version.config.code.get_unzipped_code_location()
        env = {key: os.environ[key] for key in HOST_ENV_KEYS if key in os.environ}
        env.update({key: str(value) for key, value in env_vars.items()})
        env.update(
            {
                "LAMBDA_TASK_ROOT": str(code),
                "LAMBDA_RUNTIME_DIR": str(RUNTIME_SCRIPT.parent),
                "SLUICE_PARENT_PID": str(os.getpid()),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        self.executor_endpoint.start()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [python, str(RUNTIME_SCRIPT)],
                cwd=code,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,  # its own group: stop() ends the environment and the worker it runs
            )
        LOG.debug("host execution environment %s started as pid %s for %s", self.id, self.process.pid, code)
        threading.Thread(target=self._fail_startup_if_it_exits, args=(self.process,), daemon=True).start()
        self.executor_endpoint.wait_for_startup()

    def _fail_startup_if_it_exits(self, process: subprocess.Popen) -> None:
        """An environment that dies before reporting ready fails the start at once, with its output."""
        code = process.wait()
        future = self.executor_endpoint.startup_future
        if future is None or future.done():
            return
        error = {
            "errorMessage": f"the execution environment exited with {code} while starting: {self.get_logs()[-2000:]}",
            "errorType": "Runtime.ExitError",
        }
        # InvalidStateError: it reported ready or an error just before exiting.
        with contextlib.suppress(InvalidStateError):
            future.set_exception(StatusErrorException("environment exited", payload=json.dumps(error).encode()))

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        try:
            self.executor_endpoint.shutdown()
        except Exception as exc:  # the endpoint may never have started
            LOG.debug("error shutting down endpoint of %s: %s", self.id, exc)

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://127.0.0.1:{port}{self.executor_endpoint.get_endpoint_prefix()}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        return self.executor_endpoint.invoke(payload)

    def get_logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        python = host_python()
        try:
            LOG.info("host Lambda executor: function code runs on %s (%s)", python, host_python_version(python))
        except (OSError, subprocess.SubprocessError) as exc:
            LOG.warning("host Lambda executor: %s=%s does not run: %s", PYTHON_ENV, python, exc)
            return False
        return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
