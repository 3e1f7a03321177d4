"""LocalStack's runtime executor for host processes: each execution environment is a process
forked from its function's template (template.py), which has imported the handler once.

LocalStack asks for environments as Lambda would (one per concurrent invocation, up to the
function's reserved concurrency or the account's limit) and retires them when idle, when the
function is updated or deleted. This executor starts a template for a function version when its
first environment starts, forks every environment from it, and stops it with the version's last use.
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from localstack.services.lambda_.invocation.executor_endpoint import StatusErrorException
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor

from localstack import config
from sluice_host_executor.environment import Environment, InitError
from sluice_host_executor.template import Template, Templates, template_key

LOG = logging.getLogger(__name__)

# The interpreter that runs function code; its version must match the function's runtime.
PYTHON_ENV = "LAMBDA_HOST_PYTHON"
# What a process needs from the host beyond the function's own environment.
HOST_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")
# LocalStack's variables that differ between two environments of one version: the template is
# started with the first environment's, and each fork gets its own.
PER_ENVIRONMENT_KEYS = (
    "LOCALSTACK_RUNTIME_ID",
    "LOCALSTACK_RUNTIME_ENDPOINT",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)

TEMPLATES = Templates()


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


class HostRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.environment: Environment | None = None

    def start(self, env_vars: dict[str, str]) -> None:
        runtime = self.function_version.config.runtime or ""
        if not runtime.startswith("python"):
            raise LambdaRuntimeException(f"the host executor runs Python functions only, not {runtime or 'images'}")
        env = {key: str(value) for key, value in env_vars.items()}
        own = {key: env.pop(key) for key in PER_ENVIRONMENT_KEYS if key in env}
        key = template_key(self.function_version)
        self.environment = Environment(
            lambda: TEMPLATES.get(key, lambda: self._start_template(runtime, env | own)),
            own,
            timeout_s=float(self.function_version.config.timeout),
            version=self.function_version.id.qualifier,
            memory=str(self.function_version.config.memory_size),
        )
        try:
            self.environment.start()
        except InitError as exc:
            LOG.warning(
                "environment %s of %s did not start: %s", self.id, self.function_version.qualified_arn, exc.body
            )
            # LocalStack returns this as the invocation's error, as Lambda reports a failed init.
            raise StatusErrorException("environment startup failed", payload=json.dumps(exc.body).encode()) from exc

    def _start_template(self, runtime: str, env_vars: dict[str, str]) -> Template:
        python = host_python()
        have = host_python_version(python)
        if have != runtime:
            raise LambdaRuntimeException(
                f"function runtime {runtime} needs a host {runtime}; {PYTHON_ENV}={python} is {have}"
            )
        code = self.function_version.config.code.get_unzipped_code_location()
        env = {key: os.environ[key] for key in HOST_ENV_KEYS if key in os.environ}
        env.update(env_vars)
        env.update(
            {
                "LAMBDA_TASK_ROOT": str(code),
                "LAMBDA_RUNTIME_DIR": str(Path(__file__).parent),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        log_path = Path(config.dirs.tmp) / "lambda-host" / f"template-{self.id}.log"
        template = Template(python, code, env, log_path)
        LOG.debug(
            "template %s (%s) started for %s", template.process.pid, template.mode, self.function_version.qualified_arn
        )
        return template

    def stop(self) -> None:
        if self.environment is not None:
            self.environment.stop()

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        # LocalStack hands this to every environment; ours answer over pipes instead.
        return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        assert self.environment is not None, "invoked before start"
        outcome = self.environment.invoke(payload)
        return InvocationResult(
            payload["invoke-id"], outcome.body.encode(), is_error=outcome.is_error, logs=outcome.logs
        )

    def get_logs(self) -> str:
        return self.environment.transcript.decode(errors="replace") if self.environment is not None else ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()
        TEMPLATES.register(template_key(function_version))

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        TEMPLATES.release(template_key(function_version))

    @classmethod
    def validate_environment(cls) -> bool:
        python = host_python()
        try:
            LOG.info("host Lambda executor: function code runs on %s (%s)", python, host_python_version(python))
        except (OSError, subprocess.SubprocessError) as exc:
            LOG.warning("host Lambda executor: %s=%s does not run: %s", PYTHON_ENV, python, exc)
            return False
        return True
