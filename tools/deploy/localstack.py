"""Deploy the app into the LocalStack on this machine with `chalice deploy`, and print its API URL.

    python -m tools.deploy.localstack --stage local            bootstrap, deploy (or update), print the URL
    python -m tools.deploy.localstack --stage local --delete   remove the deployment (`chalice delete`)

The functions run as host processes through LocalStack's host executor (localstack/host_executor).
The API answers at http://127.0.0.1:4566/_aws/execute-api/<api id>/<stage>/ (no DNS needed).
"""

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools.aws import LOCAL_AWS_ENV, aws_client
from tools.deploy import gateway_responses
from tools.devstack.bootstrap import bootstrap
from tools.ops.budget import check
from tools.stage import ROOT, chalice_config, outside_environment, stage_settings

CHALICE = ROOT / ".venv" / "bin" / "chalice"


@dataclass(frozen=True)
class Deployment:
    stage: str
    rest_api_id: str
    api_url: str
    api_function: str
    consumer_function: str
    event_source_uuid: str


def localstack_endpoint(stage: str) -> str:
    endpoint = stage_settings(stage).sqs_endpoint_url
    if not endpoint:
        raise SystemExit(f"stage {stage} has no SQS_ENDPOINT_URL: it is not a LocalStack stage")
    return endpoint


def chalice_env(stage: str) -> dict[str, str]:
    """The environment for chalice to talk to LocalStack instead of AWS."""
    return {**outside_environment(), **LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": localstack_endpoint(stage)}


def deployed_record(stage: str) -> Path:
    return ROOT / ".chalice" / "deployed" / f"{stage}.json"


def read_deployment(stage: str) -> Deployment | None:
    """What `chalice deploy` recorded for the stage, with the API's LocalStack URL; None if nothing is deployed."""
    if not deployed_record(stage).exists():
        return None
    resources = {r["name"]: r for r in json.loads(deployed_record(stage).read_text())["resources"]}
    if "rest_api" not in resources:
        return None  # `chalice delete` leaves an empty record
    api_stage = chalice_config(stage).api_gateway_stage
    api_id = resources["rest_api"]["rest_api_id"]
    return Deployment(
        stage=stage,
        rest_api_id=api_id,
        api_url=f"{localstack_endpoint(stage)}/_aws/execute-api/{api_id}/{api_stage}/",
        api_function=resources["api_handler"]["lambda_arn"].rsplit(":", 1)[-1],
        consumer_function=resources["consume_logs"]["lambda_arn"].rsplit(":", 1)[-1],
        event_source_uuid=resources["consume_logs-sqs-event-source"]["event_uuid"],
    )


def deploy(stage: str) -> Deployment:
    """Bootstrap the stage, check its budget, then create or update its deployment in LocalStack."""
    bootstrap(stage)
    _, problems = check(stage)
    if problems:
        raise SystemExit("budget check FAILED:\n  - " + "\n  - ".join(problems))
    _chalice_deploy(stage)
    deployment = read_deployment(stage)
    if deployment is None:
        raise SystemExit(f"chalice deploy recorded no REST API for stage {stage}")
    report_batch_item_failures(stage, deployment.event_source_uuid)
    gateway_responses.put_all(
        aws_client("apigateway", stage_settings(stage)), deployment.rest_api_id, chalice_config(stage).api_gateway_stage
    )
    return deployment


def _chalice_deploy(stage: str) -> None:
    """`chalice deploy`, its output passed on but for the AWS URL it prints, which does not work
    here (the LocalStack URL is printed after)."""
    cmd = [str(CHALICE), "deploy", "--stage", stage]
    with subprocess.Popen(cmd, cwd=ROOT, env=chalice_env(stage), stdout=subprocess.PIPE, text=True) as chalice:
        assert chalice.stdout is not None
        for line in chalice.stdout:
            if "Rest API URL:" not in line:
                print(line, end="", flush=True)
    if chalice.returncode != 0:
        raise subprocess.CalledProcessError(chalice.returncode, cmd)


def report_batch_item_failures(stage: str, event_source_uuid: str, timeout_s: float = 60) -> None:
    """Switch on partial batch responses for the consumer's event source, which Chalice cannot do
    (the packaged stack sets the same in deploy/stack.yaml); and keep the mapping enabled.

    `Enabled=True` is explicit: LocalStack 2026.3.0 takes an update without it (as `chalice deploy`
    sends when the mapping exists) to mean the worker's current state, and a mapping caught while
    it was being updated ended up Disabled, consuming nothing.
    """
    lambda_client = aws_client("lambda", stage_settings(stage))
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            lambda_client.update_event_source_mapping(
                UUID=event_source_uuid, Enabled=True, FunctionResponseTypes=["ReportBatchItemFailures"]
            )
            return
        except lambda_client.exceptions.ResourceInUseException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # the mapping is still being created or updated


def delete(stage: str) -> None:
    """Remove the stage's deployment from LocalStack (if there is one)."""
    if read_deployment(stage) is not None:
        subprocess.run([str(CHALICE), "delete", "--stage", stage], cwd=ROOT, env=chalice_env(stage), check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--delete", action="store_true")
    args = parser.parse_args(argv)
    if args.delete:
        delete(args.stage)
        return 0
    deployment = deploy(args.stage)
    print(f"\nAPI (through LocalStack's API Gateway): {deployment.api_url}\n  curl {deployment.api_url}health")
    return 0


if __name__ == "__main__":
    sys.exit(main())
