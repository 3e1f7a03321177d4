"""Child processes started for a run (a benchmark's systems, the fault suite's API and consumer),
stopped together; and waiting for a URL to answer."""

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tools.stage import LOCAL_AWS_ENV, ROOT


class Processes:
    """Child process groups started for one system, stopped together."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as log:
            child = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env={**os.environ, **LOCAL_AWS_ENV, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.children.append(child)
        return child

    def kill(self, child: subprocess.Popen[bytes]) -> None:
        """End a child's process group at once (SIGKILL), as a crash would, and reap it."""
        signal_group(child.pid, signal.SIGKILL)
        child.wait()

    def stop(self) -> None:
        """SIGTERM every child's group, last started first; SIGKILL what has not ended after 15 s."""
        for child in reversed(self.children):
            if child.poll() is None:
                signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(child.pid, signal.SIGKILL)
                child.wait()
        self.children.clear()


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the process group led by `pid` (to the process alone if the group is not ours)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def wait_http(url: str, timeout_s: float = 60, method: str = "GET") -> None:
    """Wait until `url` answers at all (any HTTP status)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
            request.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(request, timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout_s:.0f}s") from None
            time.sleep(0.2)
