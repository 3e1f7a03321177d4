"""`make up`: start the services, bootstrap the stage, check its budget, then serve the API with
`chalice local` and consume the queue with the local event source. Ctrl-C stops all it started.

    python -m tools.serve --stage local [--port 8000]
"""

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import FrameType

from tools import devstack
from tools.bootstrap import bootstrap
from tools.budget import check
from tools.stage import LOCAL_AWS_ENV, ROOT

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
        env = {**os.environ, **LOCAL_AWS_ENV}
        api_cmd = [str(BIN / "chalice"), "local", "--stage", stage, "--host", "127.0.0.1", "--port", str(port)]
        api_cmd.append("--no-autoreload")
        consumer_cmd = [str(BIN / "python"), "-m", "tools.local_consumer", "--stage", stage]
        for name, cmd in (("api", api_cmd), ("consumer", consumer_cmd)):
            children.append((name, subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)))
        url = f"http://127.0.0.1:{port}"
        _wait_for_api(url, children[0][1])
        print(
            f"\nsluice is up (stage {stage}): API {url}  |  budget: {inputs.total} of {inputs.max_connections}"
            f" MySQL connections\n  curl {url}/health\n"
            f"  curl -X POST {url}/logs -H 'Content-Type: application/json'"
            """ -d '{"level":"info","source":"web","message":"hello"}'\n"""
            "Ctrl-C stops everything this started.\n",
            flush=True,
        )
        while all(process.poll() is None for _, process in children):
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
    args = parser.parse_args(argv)
    return serve(args.stage, args.port)


if __name__ == "__main__":
    sys.exit(main())
