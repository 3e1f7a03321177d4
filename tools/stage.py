"""A stage's configuration as Chalice resolves it from .chalice/config.json, for tools and tests."""

import os
from dataclasses import dataclass
from pathlib import Path

from chalice.cli.factory import CLIFactory
from chalice.config import Config

from chalicelib.config import Settings, load_settings
from chalicelib.secrets import SecretStore
from tools.aws import LOCAL_AWS_ENV, aws_client

ROOT = Path(__file__).resolve().parent.parent
API_FUNCTION = "api_handler"
CONSUMER_FUNCTION = "consume_logs"
MAINTENANCE_FUNCTION = "maintain_partitions"


def chalice_config(stage: str) -> Config:
    """Chalice's own view of the stage (environment variables, per-function settings)."""
    return CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name=stage)


def stage_environment(stage: str) -> dict[str, str]:
    """The environment variables the stage's functions get."""
    return dict(chalice_config(stage).environment_variables)


def stage_settings(stage: str) -> Settings:
    """The stage's Settings, as its functions would load them (a packaged stage's deploy-time
    settings are stand-ins)."""
    return load_settings({**DEPLOY_TIME_STAND_INS, **os.environ, **stage_environment(stage)})


@dataclass(frozen=True)
class FunctionSettings:
    timeout_s: int
    reserved_concurrency: int | None


def function_settings(stage: str, function: str) -> FunctionSettings:
    """A function's Lambda timeout and reserved concurrency in the stage."""
    scoped = chalice_config(stage).scope(stage, function)
    return FunctionSettings(timeout_s=int(scoped.lambda_timeout), reserved_concurrency=scoped.reserved_concurrency)


def apply_stage_environment(stage: str, local_aws: bool = True) -> None:
    """Put the stage's environment (and LocalStack credentials) into os.environ, as Lambda would."""
    if local_aws:
        os.environ.update(LOCAL_AWS_ENV)
    os.environ.update(stage_environment(stage))


# Settings a packaged stack's functions get from its template at deploy time (deploy/stack.yaml
# sets them from parameters and resources). Before there is a stack, the tools that read such a
# stage (chalice package importing app.py, make budget) see these stand-ins; no template gets them.
DEPLOY_TIME_STAND_INS = {
    "MYSQL_HOST": "set.at.deploy.invalid",
    "MYSQL_PORT": "3306",
    "REDIS_URL": "rediss://set.at.deploy.invalid:6379/0",
}


def is_packaged(stage: str) -> bool:
    """Whether the stage deploys as a packaged stack (secrets from Secrets Manager), not with chalice deploy."""
    return stage_environment(stage).get("SECRETS_SOURCE") == "secretsmanager"


def stage_secrets(stage: str) -> SecretStore:
    """The stage's secrets as its functions read them (a local stage's plain values)."""
    settings = stage_settings(stage)
    return SecretStore(settings.secrets, lambda: aws_client("secretsmanager", settings))
