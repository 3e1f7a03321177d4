"""A function's template process (runtime.py's `template`), from LocalStack's side, and the
registry that keeps one per function version while a version uses it.

A template has imported the function's handler; every execution environment is a fork of it
(runtime.py explains the protocol). It is keyed by what the function's init can see: its code, its
handler and runtime, and its configured environment (which includes the memory size and timeout).
A change of anything else, such as the description or the concurrency, keeps the template; new code
or new variables get a new one, so an environment never mixes old and new.
"""

import json
import logging
import queue
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localstack.services.lambda_.invocation.lambda_models import FunctionVersion

LOG = logging.getLogger(__name__)

RUNTIME_SCRIPT = Path(__file__).with_name("runtime.py")
# How long a template may take to import the handler (LocalStack's own startup timeout, 20 s by
# default, ends the environment waiting for it sooner).
TEMPLATE_START_TIMEOUT_S = 60.0
# How long a fork may take to be answered (milliseconds when well; the template does nothing else).
FORK_TIMEOUT_S = 10.0
STOP_GRACE_S = 2.0
MAX_MESSAGE = 1 << 16
# Exit statuses kept for environments nobody asked about (stopped ones): the newest this many.
EXITS_KEPT = 1000


class TemplateError(Exception):
    """The template could not start or fork: the environment cannot start."""


def template_key(function_version: FunctionVersion) -> str:
    """What the function's init can see; equal keys may share a template."""
    config = function_version.config
    code = config.code.get_unzipped_code_location() if config.code else None
    return json.dumps(
        {
            "function": function_version.id.qualified_arn(),
            "code": str(code),
            "code_sha256": getattr(config.code, "code_sha256", None),
            "handler": config.handler,
            "runtime": config.runtime,
            "environment": config.environment,
            "memory": config.memory_size,
            "timeout": config.timeout,
            "logging": config.logging_config,
        },
        sort_keys=True,
        default=str,
    )


class Template:
    """A running template: fork environments from it and learn how they end."""

    def __init__(self, python: str, code: Path, env: dict[str, str], log_path: Path) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [python, str(RUNTIME_SCRIPT), "template", str(theirs.fileno())],
                cwd=code,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(),),
                process_group=0,
            )
        theirs.close()
        self._socket = ours
        self._fork_lock = threading.Lock()  # one fork request at a time: its answer is the next "forked"
        self._forked: queue.Queue[int | None] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._exits_changed = threading.Condition()
        self.alive = True
        hello = self._hello()
        self.mode: str = hello["mode"]
        # In "imported" mode init ran here once: its output is every environment's init output.
        self.init_logs = self.output() if self.mode == "imported" else ""
        if hello["reason"]:
            LOG.info("template of %s: %s; environments run init themselves", code, hello["reason"])
        threading.Thread(target=self._read, daemon=True, name=f"template-{self.process.pid}").start()

    def _hello(self) -> dict[str, Any]:
        self._socket.settimeout(TEMPLATE_START_TIMEOUT_S)
        try:
            data = self._socket.recv(MAX_MESSAGE)
        except TimeoutError:
            data = b""
        self._socket.settimeout(None)
        if not data:
            self.stop()
            raise TemplateError(f"the function's template process did not start: {self.output()[-2000:]}")
        hello: dict[str, Any] = json.loads(data)
        return hello

    def _read(self) -> None:
        while True:
            try:
                data = self._socket.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            if message["kind"] == "forked":
                self._forked.put(message["pid"])
            elif message["kind"] == "exited":
                with self._exits_changed:
                    self._exits[message["pid"]] = message["code"]
                    for pid in list(self._exits)[:-EXITS_KEPT]:
                        del self._exits[pid]
                    self._exits_changed.notify_all()
        self.alive = False
        self._forked.put(None)
        with self._exits_changed:
            self._exits_changed.notify_all()

    def fork(self, env: dict[str, str], fds: tuple[int, int, int]) -> int:
        """A new environment with these variables on (requests, results, output); its pid."""
        with self._fork_lock:
            if not self.alive:
                raise TemplateError("the function's template process has ended")
            socket.send_fds(self._socket, [json.dumps({"kind": "fork", "env": env}).encode()], list(fds))
            try:
                pid = self._forked.get(timeout=FORK_TIMEOUT_S)
            except queue.Empty:
                pid = None
            if pid is None:
                # A late answer would go to the next request: retire this template, start another.
                self.alive = False
                self.process.kill()
                raise TemplateError(f"the function's template process did not fork: {self.output()[-2000:]}")
        return pid

    def exit_code(self, pid: int, wait_s: float) -> int | None:
        """How environment `pid` ended (as subprocess reports it), or None if not known in wait_s."""
        deadline = time.monotonic() + wait_s
        with self._exits_changed:
            while pid not in self._exits and self.alive and time.monotonic() < deadline:
                self._exits_changed.wait(timeout=max(0.0, deadline - time.monotonic()))
            return self._exits.pop(pid, None)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """End the template; it kills the environments it still has."""
        self._socket.close()  # the template sees its executor hang up
        try:
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log_path.unlink(missing_ok=True)  # one per template: months of them otherwise


class Templates:
    """One template per key, started on first use and stopped when no function version uses it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._templates: dict[str, Template] = {}
        self._starting: dict[str, threading.Lock] = {}
        self._users: Counter[str] = Counter()

    def register(self, key: str) -> None:
        """A function version that may start environments from this key's template."""
        with self._lock:
            self._users[key] += 1

    def release(self, key: str) -> None:
        """That version is retired (updated, deleted); the template ends with its last user."""
        with self._lock:
            self._users[key] -= 1
            if self._users[key] > 0:
                return
            del self._users[key]
            template = self._templates.pop(key, None)
        if template is not None:
            template.stop()

    def get(self, key: str, start: Callable[[], Template]) -> Template:
        """The key's template, started (once, however many environments ask at once) if need be."""
        with self._lock:
            starting = self._starting.setdefault(key, threading.Lock())
        with starting:
            with self._lock:
                template = self._templates.get(key)
            if template is not None and template.alive:
                return template
            if template is not None:
                template.stop()  # ended or retired: reap it before its successor starts
            template = start()
            with self._lock:
                self._templates[key] = template
            return template
