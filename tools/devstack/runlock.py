"""One `make up` (or `make up-localstack`) per stage and checkout: a lock the kernel lets go of
when its holder ends, however it ends (a SIGKILL included), so a stale lock never blocks a start.

The lock file (.data/run/serve-<stage>.lock) also says who holds it: pid, how, and where its API is.
"""

import contextlib
import errno
import fcntl
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tools.devstack.services import RUN


@dataclass(frozen=True)
class Holder:
    pid: int
    how: str  # "make up" or "make up-localstack"
    api: str

    def line(self) -> str:
        return f"{self.how} (pid {self.pid}, API {self.api})"


class RunLock:
    """The stage's start lock, held from `acquire` until this process ends."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.path = RUN / f"serve-{stage}.lock"
        self._file: IO[str] | None = None

    def acquire(self, how: str, api: str) -> Holder | None:
        """Take the lock and record who holds it; if another process holds it, return that holder."""
        RUN.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open for as long as this process runs
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            return self.holder() or Holder(0, "another start", "unknown")
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n{how}\n{api}\n")
        handle.flush()
        self._file = handle
        return None

    def holder(self) -> Holder | None:
        """Who holds the lock now; None if nobody does."""
        if not self.path.exists() or not _locked(self.path):
            return None
        try:
            pid, how, api = self.path.read_text().splitlines()[:3]
            return Holder(int(pid), how, api)
        except ValueError:
            return None


def _locked(path: Path) -> bool:
    with open(path) as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(probe, fcntl.LOCK_UN)
        return False


def stop_all(timeout_s: float = 90) -> None:
    """Stop every `make up` of this checkout (SIGTERM: it removes what it started), waiting for each
    to let go of its lock; SIGKILL one that has not after `timeout_s` (a LocalStack undeploy takes a while)."""
    for path in sorted(RUN.glob("serve-*.lock")):
        holder = RunLock(path.stem.removeprefix("serve-")).holder()
        if holder is None:
            continue
        print(f"{holder.how}: stopping (pid {holder.pid})", flush=True)
        _signal(holder.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _locked(path) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _locked(path):
            print(f"{holder.how}: did not stop in {timeout_s:.0f}s, killing it", flush=True)
            _signal(holder.pid, signal.SIGKILL)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
