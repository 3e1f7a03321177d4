"""What a refused request costs the API: its process's CPU time per request, for the requests a
flood sends (faults/flood.py), one client at a time so nothing else runs beside them.

    python -m bench.refusals [--code DIR] [--requests 300]

`--code` serves the API from another checkout of sluice (say, a `git worktree` of an older
commit), with this checkout's virtual environment and stage settings: the same measurement before
and after a change. The per-address limits are at their declared defaults; the services must be
up (`make up`). Traffic goes to 127.0.0.1 only and stops by itself.
"""

import argparse
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from chalicelib.config import declared_default
from faults.flood import invalid_batch
from faults.workload import Api
from tools import procs
from tools.aws import LOCAL_AWS_ENV
from tools.devstack.bootstrap import bootstrap
from tools.devstack.processes import wait_http
from tools.ops.reset import forget_redis_keys
from tools.stage import ROOT, stage_settings

STAGE = "bench"
PORT = 8470


def measure(pid: int, requests: int, send: Callable[[], int]) -> tuple[float, dict[int, int]]:
    """CPU ms per request, and the answers by status, for `requests` calls of `send`."""
    statuses: dict[int, int] = {}
    before = procs.cpu_s(pid)
    for _ in range(requests):
        status = send()
        statuses[status] = statuses.get(status, 0) + 1
    return 1000 * (procs.cpu_s(pid) - before) / requests, statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to serve the API from")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    bootstrap(STAGE)
    settings = stage_settings(STAGE)
    forget_redis_keys(settings.redis_url, settings.redis_key_prefix)  # the address buckets start full
    limits = {name: declared_default(name) for name in ("PUBLIC_RATE_PER_S", "PUBLIC_BURST")}
    cmd = [sys.executable, "-m", "tools.devstack.chalice_local", "--stage", STAGE, "--port", str(PORT)]
    cmd += [f"--env={k}={v}" for k, v in limits.items()]
    env = {**os.environ, **LOCAL_AWS_ENV, "PYTHONPATH": str(args.code)}
    api = subprocess.Popen(cmd, cwd=args.code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{PORT}"
        wait_http(f"{base}/health")
        body = invalid_batch()

        def made_up() -> int:
            client = Api(base, "slk_" + uuid.uuid4().hex * 2, "")
            status = client.call_raw("POST", "/logs/batch", body)[0]
            client.close()
            return status

        anonymous_client = Api(base, "", "")

        def anonymous() -> int:
            return anonymous_client.call("GET", f"/items/{uuid.uuid4().hex}")[0]

        print(f"API served from {args.code} (stage {STAGE}, {args.requests} requests each, one at a time)")
        for name, send in (("invalid 5 MiB batch, made-up key", made_up), ("anonymous GET /items/{random}", anonymous)):
            started = time.monotonic()
            ms, statuses = measure(api.pid, args.requests, send)
            print(f"  {name}: {ms:.2f} ms CPU a request; answers {statuses}; {time.monotonic() - started:.1f} s")
    finally:
        api.terminate()
        api.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
