"""tools.devstack's process handling: what counts as running, and starting a dead service again."""

import os
import signal
import subprocess
import sys

from tests.functional.conftest import closed_port
from tests.support.waiting import wait_for
from tools import procs
from tools.devstack import services

ZOMBIE_MAKER = """
import os, signal, subprocess, sys, time
child = subprocess.Popen(["sleep", "600"])
os.kill(child.pid, signal.SIGKILL)  # dies, and is never waited for: a zombie while this lives
print(child.pid, flush=True)
sys.stdin.read()
"""


def test_a_process_that_died_but_was_not_reaped_counts_as_dead():
    # GIVEN a process that another parent started and killed without reaping (as a `make up`
    # whose MariaDB died would leave it)
    parent = subprocess.Popen(
        [sys.executable, "-c", ZOMBIE_MAKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        wait_for(lambda: procs.state(pid) == "Z", timeout_s=10)
        # WHEN another process asks THEN it is not running (so `devstack up` starts the service again)
        assert not services._alive(pid)
    finally:
        parent.communicate("", timeout=10)


def test_supervise_starts_a_service_whose_process_died_again():
    # GIVEN a running service
    service = services.Service(
        "test-sleeper",
        lambda: ([sys.executable, "-c", "import time; time.sleep(600)"], {}),
        ready=lambda: True,
        port=closed_port,
    )
    try:
        assert service.start()
        first = service.pid()
        assert first is not None
        assert services.supervise([service]) == []
        # WHEN its process is killed
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: service.pid() is None, timeout_s=10, interval_s=0.05)
        # THEN supervising starts it again, as a new process
        assert services.supervise([service]) == [service]
        assert service.pid() not in (None, first)
    finally:
        service.stop()
