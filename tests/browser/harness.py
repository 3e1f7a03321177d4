"""What the browser tests and the screenshot share: the `browser` stage's API and consumer as `make up`
runs them (chalice local and the local SQS event source, as child processes on a free port), keys
made and entries posted over HTTP, and Debian's Chromium driven by Playwright (nothing downloaded)."""

import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import Browser, Playwright

from tools.devstack.bootstrap import bootstrap
from tools.devstack.processes import Processes, wait_http
from tools.stage import ROOT, stage_environment

STAGE = "browser"  # its own database, queues and Redis keys: nothing another suite does reaches it
ADMIN_TOKEN = stage_environment(STAGE)["ADMIN_TOKEN"]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
CHROMIUM_NAMES = ("chromium", "chromium-browser")  # Debian's package installs /usr/bin/chromium
STORED_WITHIN_S = 30  # an entry posted is stored within the consumer's 1 s window; the rest is slack


def chromium_path() -> str:
    """Debian's Chromium (scripts/ensure-system-packages.sh installs it); CHROMIUM=<path> names another."""
    found = os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if not found:
        raise RuntimeError("no chromium on PATH: `make setup` installs Debian's package (or set CHROMIUM=<path>)")
    return found


def launch(playwright: Playwright) -> Browser:
    """Headless Chromium from the distribution: Playwright's own browser download is never used."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving() -> Iterator[str]:
    """The stage bootstrapped, its API on a free port and its consumer running; yields the API's URL."""
    bootstrap(STAGE)
    port = free_port()
    processes = Processes(ROOT / ".data" / "browser")
    processes.start("api", [PYTHON, "-m", "tools.devstack.chalice_local", "--stage", STAGE, "--port", str(port)])
    processes.start("consumer", [PYTHON, "-m", "tools.devstack.local_consumer", "--stage", STAGE])
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health")
        yield url
    finally:
        processes.stop()


def call(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    """One JSON request: its status and parsed answer, whatever the status."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def make_key(api: str, sources: list[str], rate_per_s: int = 100, burst: int = 200) -> str:
    """A key that may read and write `sources` (names, or prefixes ending in *)."""
    body = {"name": "browser test", "scopes": ["logs:read", "logs:write"], "sources": sources}
    status, answer = call("POST", f"{api}/keys", ADMIN_TOKEN, {**body, "rate_per_s": rate_per_s, "burst": burst})
    assert status == 201, answer
    return str(answer["key"])


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def post(api: str, key: str, entries: list[dict[str, Any]]) -> list[str]:
    """Queue entries (each given an id, so they can be found) in batches of 500; their ids."""
    with_ids = [{"id": str(uuid.uuid4()), **entry} for entry in entries]
    for start in range(0, len(with_ids), 500):
        status, answer = call("POST", f"{api}/logs/batch", key, {"logs": with_ids[start : start + 500]})
        assert status == 202, answer
    return [entry["id"] for entry in with_ids]


def wait_stored(api: str, key: str, ids: list[str], timeout_s: float = STORED_WITHIN_S) -> None:
    """Wait until every id is stored (GET /logs/{id} answers 200); fail past the deadline."""
    deadline = time.monotonic() + timeout_s
    waiting = list(ids)
    while waiting:
        if call("GET", f"{api}/logs/{waiting[0]}", key)[0] == 200:
            waiting.pop(0)
            continue
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(waiting)} of {len(ids)} entries not stored within {timeout_s}s")
        time.sleep(0.2)
