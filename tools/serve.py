"""`make up`: start the services, bootstrap the stage, check its budget, then serve the API.
Ctrl-C stops everything it started.

    python -m tools.serve --stage local [--port 8000]     chalice local + the local SQS event source and schedule
    python -m tools.serve --stage local --via localstack  deployed into LocalStack (API Gateway, Lambda, ESM)
"""

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from types import FrameType

from tools import deploy, devstack
from tools.bootstrap import bootstrap, sqs_client
from tools.budget import check
from tools.stage import LOCAL_AWS_ENV, ROOT, aws_client, stage_environment, stage_settings

BIN = ROOT / ".venv" / "bin"


def _stop_child(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is not None:
        return
    print(f"{name}: stopping", flush=True)
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _wait_for_api(url: str, api: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise SystemExit(f"chalice local exited with {api.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (a 503 names the failing check)
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise SystemExit(f"the API did not answer at {url} within {timeout_s:.0f}s")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _queue_consumed_in_localstack(stage: str) -> bool:
    """Whether a LocalStack deployment of the stage already consumes its queue (an event source mapping)."""
    settings = stage_settings(stage)
    sqs = sqs_client(settings)
    arn = sqs.get_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName=settings.log_queue_name)["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    lambda_client = aws_client("lambda", settings)
    return bool(lambda_client.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"])


def _supervise(started: list[devstack.Service], after_localstack: Callable[[], object]) -> None:
    """Start again what died (stopped at the end like the rest, since it is added to `started`);
    LocalStack keeps no state, so after it `after_localstack` makes the stage's resources again."""
    restarted = devstack.supervise(devstack.wanted())
    started.extend(s for s in restarted if s not in started)
    if any(s.name == "localstack" for s in restarted):
        after_localstack()


def serve_localstack(stage: str) -> int:
    """Deploy into LocalStack and wait; Ctrl-C removes the deployment and stops what this started."""
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    started: list[devstack.Service] = []
    deployed = False
    try:
        started = devstack.up()
        deployed = True
        deployment = deploy.deploy(stage)
        print(
            f"\nsluice is up in LocalStack (stage {stage}): API {deployment.api_url}\n"
            f"  curl {deployment.api_url}health\n"
            "Ctrl-C removes the deployment and stops everything this started.\n",
            flush=True,
        )
        while True:
            _supervise(started, lambda: deploy.deploy(stage))
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if deployed:
            deploy.delete(stage)
        devstack.down(started)


def serve(stage: str, port: int) -> int:
    # Explicit, so Ctrl-C works even where SIGINT arrives ignored (a job started in the background).
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    started: list[devstack.Service] = []
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        started = devstack.up()
        urls = bootstrap(stage)
        print(f"bootstrap ({stage}): queue {urls.queue_url}", flush=True)
        inputs, problems = check(stage)
        if problems:
            print("budget check FAILED:\n  - " + "\n  - ".join(problems), file=sys.stderr)
            return 1
        if _queue_consumed_in_localstack(stage):
            print(
                f"a LocalStack deployment of stage {stage} already consumes its queue; two consumers would"
                f" double the writers' connections. Remove it first: make undeploy STAGE={stage}",
                file=sys.stderr,
            )
            return 1
        env = {**os.environ, **LOCAL_AWS_ENV}
        api_cmd = [str(BIN / "python"), "-m", "tools.chalice_local", "--stage", stage, "--port", str(port)]
        consumer_cmd = [str(BIN / "python"), "-m", "tools.local_consumer", "--stage", stage]
        schedule_cmd = [str(BIN / "python"), "-m", "tools.local_schedule", "--stage", stage]
        for name, cmd in (("api", api_cmd), ("consumer", consumer_cmd), ("schedule", schedule_cmd)):
            children.append((name, subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)))
        url = f"http://127.0.0.1:{port}"
        _wait_for_api(url, children[0][1])
        key = stage_environment(stage).get("DEV_API_KEY", "<an API key: make key NAME=...>")
        print(
            f"\nsluice is up (stage {stage}): API {url}  |  budget: {inputs.total} of {inputs.max_connections}"
            f" MySQL connections\n  development key: {key}\n  curl {url}/health\n"
            f"  curl -X POST {url}/logs -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json'"
            """ -d '{"level":"info","source":"web","message":"hello"}'\n"""
            "Ctrl-C stops everything this started.\n",
            flush=True,
        )
        # Supervise: a service that dies is started again (stopped at the end if this started it),
        # so nothing is left dead or as a zombie; if the API, the consumer or the schedule exits, everything stops.
        while all(process.poll() is None for _, process in children):
            _supervise(started, lambda: bootstrap(stage))
            time.sleep(0.5)
        for name, process in children:
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        for name, process in reversed(children):
            _stop_child(process, name)
        devstack.down(started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--via", choices=["chalice-local", "localstack"], default="chalice-local")
    args = parser.parse_args(argv)
    if args.via == "localstack":
        return serve_localstack(args.stage)
    return serve(args.stage, args.port)


if __name__ == "__main__":
    sys.exit(main())
