"""Child processes started for a run (a benchmark's systems, the fault suite's API and consumer),
stopped together; waiting for a URL to answer; who holds a port; dying with one's parent."""

import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tools import procs
from tools.aws import LOCAL_AWS_ENV
from tools.stage import ROOT


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


def port_in_use(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class PortHolder:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})"


def port_holder(port: int) -> PortHolder | None:
    """The process listening on TCP `port`, found through /proc; None if none (or not visible to us)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address "ADDR:PORT" in hex, state 0A = LISTEN, inode in field 9
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for pid in procs.pids():
        try:
            if procs.socket_inodes(pid) & inodes:
                return PortHolder(pid, procs.cmdline(pid).rstrip()[:120])
        except OSError:
            continue  # ended meanwhile, or not ours to read
    return None


PARENT_ENV = "SLUICE_PARENT_PID"  # set by a parent that wants its child to die with it
_PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int | None = None) -> None:
    """Have the kernel send this process SIGTERM when its parent ends, however it ends (SIGKILL too).

    The signal follows the parent *thread* that started us: call this only in processes started
    from their parent's main thread (make, tools.devstack.serve). `expected_parent` (default: $SLUICE_PARENT_PID,
    else the parent now) closes the race of a parent that died before this call: then we exit now.
    """
    if expected_parent is None:
        expected_parent = int(os.environ.get(PARENT_ENV) or os.getppid())
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != expected_parent:
        raise SystemExit(f"parent {expected_parent} is gone; not starting")
