"""The faults the suite injects into the services this machine runs: MariaDB and Redis killed,
started again or hung, and a foreign MySQL client that takes every connection. (SQS's faults are
the proxy's, faults/proxy.py.)"""

import os
import signal
import threading
import time
from collections import Counter
from typing import Any

import pymysql

from tools.admin import admin_connection
from tools.devstack.services import find_service


def kill_service(name: str) -> None:
    """SIGKILL a devstack service (MariaDB, Redis): no shutdown, no flush."""
    service = find_service(name)
    pid = service.pid()
    if pid is None:
        raise RuntimeError(f"{name} is not running")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while service.pid() is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not die")
        time.sleep(0.05)


def start_service(name: str) -> float:
    """Start a devstack service again; return when it answers (time.monotonic())."""
    find_service(name).start()
    return time.monotonic()


def pause_service(name: str, paused: bool) -> None:
    """SIGSTOP (hang) or SIGCONT (resume) a devstack service's process."""
    pid = find_service(name).pid()
    if pid is None:
        raise RuntimeError(f"{name} is not running")
    os.kill(pid, signal.SIGSTOP if paused else signal.SIGCONT)


class MySQLHog:
    """A foreign client that takes every connection MySQL has, and each one freed, until released."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._release = threading.Event()
        self.held: list[Any] = []
        self.peak = 0
        self.refusals: Counter[int | None] = Counter()
        self.full = threading.Event()  # MySQL refused it with 1040: every connection is taken
        self._thread = threading.Thread(target=self._run, name="mysql-hog", daemon=True)

    def __enter__(self) -> "MySQLHog":
        with admin_connection() as admin, admin.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS faults_hog@'%' IDENTIFIED BY 'hog'")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._release.is_set():
            try:
                self.held.append(
                    pymysql.connect(
                        host="127.0.0.1", port=self._port, user="faults_hog", password="hog", connect_timeout=2
                    )
                )
                self.peak = max(self.peak, len(self.held))
            except pymysql.err.MySQLError as exc:
                errno = exc.args[0] if exc.args else None
                self.refusals[errno] += 1
                if errno == 1040:
                    self.full.set()
                self._release.wait(0.005)

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._thread.join()
        for conn in self.held:
            conn.close()


def connections_by_user() -> dict[str, int] | str:
    """MySQL's connections now, by user; or why they could not be read.

    A note, not a check: while a hog holds every connection, this needs root's one extra
    connection. In one full `make faults` run it got 1040 (that connection already in use), which
    failed the whole max-connections scenario; the scenario alone passed right after.
    """
    try:
        with admin_connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT USER, COUNT(*) FROM information_schema.PROCESSLIST GROUP BY USER")
            return {row[0]: int(row[1]) for row in cur.fetchall()}
    except pymysql.err.OperationalError as exc:
        return f"not read: {exc.args[0] if exc.args else exc}"
