"""`make up`: start the services, bootstrap the stage, check its budget, then serve the API.
Ctrl-C stops everything it started.

    python -m tools.devstack.serve --stage local [--port 8000]    chalice local, the local SQS event source and schedule
    python -m tools.devstack.serve --stage local --via localstack deployed into LocalStack (API Gateway, Lambda, ESM)
    python -m tools.devstack.serve --stop                         stop every make up of this checkout (make down)

Before it starts anything it checks that no other start of the stage runs in this checkout
(tools/devstack/runlock.py) and that the API's port and the services' ports are free, and stops with one
line if not. It dies with whatever started it (make, a shell), and the API, the consumer and the
schedule die with it: the kernel's parent-death signal, so a SIGKILL leaves none of them behind.
MariaDB, Redis and LocalStack that this run started are stopped too, unless it was SIGKILLed
itself (then `make down` stops them; a next `make up` reuses them).
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

from tools.aws import LOCAL_AWS_ENV, aws_client
from tools.deploy import localstack
from tools.devstack import services
from tools.devstack.bootstrap import bootstrap
from tools.devstack.processes import PARENT_ENV, die_with_parent, port_holder, port_in_use
from tools.devstack.runlock import RunLock, stop_all
from tools.ops.budget import check
from tools.stage import ROOT, stage_environment, stage_settings

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


def _wait_for_api(url: str, port: int, api: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """Wait until the API we started answers its health route, from its own process (not from
    another program that took the port)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise SystemExit(f"the API exited with {api.returncode} while starting; see its output above")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                pass
        except urllib.error.HTTPError as error:
            if error.code != 503:  # 503 is sluice's own answer naming a failing check
                raise SystemExit(f"{url}/health answered {error.code}, not sluice's health answer") from None
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
            continue
        holder = port_holder(port)
        if holder is None or holder.pid != api.pid:
            raise SystemExit(
                f"port {port} answered, but from {holder or 'a process not ours'}, not the API started here"
            )
        return
    raise SystemExit(f"the API did not answer at {url} within {timeout_s:.0f}s")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _queue_consumed_in_localstack(stage: str) -> bool:
    """Whether a LocalStack deployment of the stage already consumes its queue (an event source mapping)."""
    settings = stage_settings(stage)
    sqs = aws_client("sqs", settings)
    arn = sqs.get_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName=settings.log_queue_name)["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    lambda_client = aws_client("lambda", settings)
    return bool(lambda_client.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"])


def _supervise(started: list[services.Service], after_localstack: Callable[[], object]) -> None:
    """Start again what died (stopped at the end like the rest, since it is added to `started`);
    LocalStack keeps no state, so after it `after_localstack` makes the stage's resources again."""
    restarted = services.supervise(services.wanted())
    started.extend(s for s in restarted if s not in started)
    if any(s.name == "localstack" for s in restarted):
        after_localstack()


def _refuse_second_start(lock: RunLock, how: str, api: str) -> bool:
    """Take the stage's start lock; if another start holds it, say so in one line and return True."""
    holder = lock.acquire(how, api)
    if holder is None:
        return False
    print(
        f"{holder.line()} already runs for stage {lock.stage} in this checkout; use it, or stop it"
        " (Ctrl-C where it runs, or `make down`)",
        file=sys.stderr,
    )
    return True


def _port_taken(port: int) -> bool:
    """Whether the API's port is held; if so, say by whom and the ways out, in one line."""
    if not port_in_use(port):
        return False
    holder = port_holder(port)
    print(
        f"port {port} is already in use by {holder or 'another program'}; choose another (make up PORT={port + 1})"
        " or stop that program (`make down` if it is another make up of this checkout)",
        file=sys.stderr,
    )
    return True


def serve_localstack(stage: str) -> int:
    """Deploy into LocalStack and wait; Ctrl-C removes the deployment and stops what this started."""
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    lock = RunLock(stage)  # held for as long as this function runs
    if _refuse_second_start(lock, "make up-localstack", "through LocalStack's API Gateway"):
        return 1
    started: list[services.Service] = []
    deployed = False
    try:
        services.up(started=started)
        deployed = True
        deployment = localstack.deploy(stage)
        key = stage_environment(stage).get("DEV_API_KEY", "<an API key: make key NAME=... SOURCES=...>")
        print(
            f"\nsluice is up in LocalStack (stage {stage}): API {deployment.api_url}\n"
            f"  curl {deployment.api_url}health\n"
            f"  curl -X POST {deployment.api_url}logs -H 'Authorization: Bearer {key}'"
            """ -H 'Content-Type: application/json' -d '{"level":"info","source":"web","message":"hello"}'\n"""
            "Ctrl-C removes the deployment and stops everything this started.\n",
            flush=True,
        )
        while True:
            _supervise(started, lambda: localstack.deploy(stage))
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if deployed:
            localstack.delete(stage)
        services.down(started)


def _start_child(module: str, stage: str, *args: str) -> subprocess.Popen[bytes]:
    """A child that dies with this process (tools.devstack.processes.die_with_parent in its main)."""
    env = {**os.environ, **LOCAL_AWS_ENV, PARENT_ENV: str(os.getpid())}
    cmd = [str(BIN / "python"), "-m", module, "--stage", stage, *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)


def serve(stage: str, port: int) -> int:
    # Explicit, so Ctrl-C works even where SIGINT arrives ignored (a job started in the background).
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    url = f"http://127.0.0.1:{port}"
    lock = RunLock(stage)  # held for as long as this function runs
    if _refuse_second_start(lock, "make up", url) or _port_taken(port):
        return 1
    started: list[services.Service] = []
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        services.up(started=started)
        urls = bootstrap(stage)
        print(f"bootstrap ({stage}): queue {urls.queue_url}", flush=True)
        inputs, problems = check(stage)
        if problems:
            print("budget check FAILED:\n  - " + "\n  - ".join(problems), file=sys.stderr)
            return 1
        if _queue_consumed_in_localstack(stage):
            print(
                f"a LocalStack deployment of stage {stage} (made by make deploy) already consumes its queue; two"
                f" consumers would double the writers' connections. Remove it first: make undeploy STAGE={stage}",
                file=sys.stderr,
            )
            return 1
        # The API first: no consumer or schedule runs unless the API is up and is ours.
        children.append(("api", _start_child("tools.devstack.chalice_local", stage, "--port", str(port))))
        _wait_for_api(url, port, children[0][1])
        children.append(("consumer", _start_child("tools.devstack.local_consumer", stage)))
        children.append(("schedule", _start_child("tools.devstack.local_schedule", stage)))
        key = stage_environment(stage).get("DEV_API_KEY", "<an API key: make key NAME=... SOURCES=...>")
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
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, process in reversed(children):
            _stop_child(process, name)
        services.down(started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--via", choices=["chalice-local", "localstack"], default="chalice-local")
    parser.add_argument("--stop", action="store_true", help="stop every make up of this checkout")
    args = parser.parse_args(argv)
    if args.stop:
        stop_all()
        return 0
    die_with_parent(os.getppid())  # make (or the shell) that started us ends: we stop what we started
    if args.via == "localstack":
        return serve_localstack(args.stage)
    return serve(args.stage, args.port)


if __name__ == "__main__":
    sys.exit(main())
