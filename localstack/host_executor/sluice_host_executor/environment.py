"""One execution environment, from LocalStack's side: a process forked from the function's
template, fed invocations one at a time over a pipe, its output cut into each invocation's logs.

A timeout or a crash kills the process; the next invocation forks a new one from the template,
which is Lambda's "init again" (and its init output starts that invocation's logs).
"""

import contextlib
import json
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluice_host_executor import runtime
from sluice_host_executor.template import Template, TemplateError

END_MARK = runtime.END_MARK.encode()  # written after each message
# How long init may take in an environment that runs it itself (the template's mode
# "per-environment"); LocalStack's startup timeout (20 s by default) stops it sooner.
INIT_TIMEOUT_S = 60.0
# How long to wait for the last of a killed or crashed process's output, and for its exit status.
AFTERMATH_WAIT_S = 1.0
TRANSCRIPT_BYTES = 64 * 1024  # what get_logs keeps of everything an environment printed


class InitError(Exception):
    """The function's init failed; `body` is the error in Lambda's shape."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("errorMessage", "init failed"))
        self.body = body


@dataclass
class Outcome:
    """One invocation's answer: the response or error body, and its logs."""

    is_error: bool
    body: str
    logs: str


class Process:
    """A forked environment process, its pipes, and its output as it arrives."""

    def __init__(self, template: Template, env: dict[str, str], transcript: bytearray) -> None:
        requests_read, self._requests = os.pipe()
        self._results, results_write = os.pipe()
        output_read, output_write = os.pipe()
        self._template = template
        try:
            self.pid = template.fork(env, (requests_read, results_write, output_write))
        except BaseException:
            for fd in (self._requests, self._results, output_read):
                os.close(fd)
            raise
        finally:
            for fd in (requests_read, results_write, output_write):
                os.close(fd)
        self._output = b""
        self._output_changed = threading.Condition()
        self._transcript = transcript
        self._results_buffer = b""
        # poll, not select: LocalStack holds far more than select's 1,024 descriptors under load
        self._poller = select.poll()
        self._poller.register(self._results, select.POLLIN)
        threading.Thread(target=self._read_output, args=(output_read,), daemon=True).start()

    def _read_output(self, fd: int) -> None:
        while chunk := os.read(fd, 65536):
            with self._output_changed:
                self._output += chunk
                self._transcript += chunk
                del self._transcript[:-TRANSCRIPT_BYTES]
                self._output_changed.notify_all()
        os.close(fd)
        with self._output_changed:
            self._output += END_MARK  # EOF ends whatever was being collected
            self._output_changed.notify_all()

    def take_output(self, wait_s: float = 1.0) -> str:
        """Output up to the next end-of-message mark (or what came, after wait_s)."""
        deadline = time.monotonic() + wait_s
        with self._output_changed:
            while END_MARK not in self._output and time.monotonic() < deadline:
                self._output_changed.wait(timeout=max(0.0, deadline - time.monotonic()))
            text, found, rest = self._output.partition(END_MARK)
            self._output = rest if found else b""
        return text.decode(errors="replace")

    def next_result(self, timeout_s: float) -> dict[str, Any] | None:
        """The next message, or None at the timeout; EOF (the process ended) is {"kind": "exit"}."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._results_buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not self._poller.poll(remaining * 1000):
                return None
            chunk = os.read(self._results, 65536)
            if not chunk:
                return {"kind": "exit", "code": self.exit_code()}
            self._results_buffer += chunk
        line, _, self._results_buffer = self._results_buffer.partition(b"\n")
        result: dict[str, Any] = json.loads(line)
        return result

    def send(self, request: dict[str, Any]) -> None:
        os.write(self._requests, (json.dumps(request) + "\n").encode())

    def exit_code(self) -> int | None:
        """How the process ended, as its template saw it (None if it cannot tell)."""
        return self._template.exit_code(self.pid, AFTERMATH_WAIT_S)

    def kill(self) -> None:
        """SIGKILL the process and whatever it started (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        for fd in (self._requests, self._results):
            with contextlib.suppress(OSError):
                os.close(fd)


def exit_message(code: int | None) -> str:
    """As Lambda words a runtime that exited."""
    if code is None:
        return "Runtime exited without providing a reason"
    if code < 0:
        return f"Runtime exited with error: signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
    return f"Runtime exited with error: exit status {code}"


class Environment:
    """An execution environment: one process at a time, one invocation at a time.

    `template` gives the function's template for each fork: the same one while it runs, a new one
    if it ended, so an environment can initialise again after its template was replaced.
    """

    def __init__(
        self, template: Callable[[], Template], env: dict[str, str], timeout_s: float, version: str, memory: str
    ) -> None:
        self._template = template
        self._env = env
        self.timeout_s = timeout_s
        self.version = version
        self.memory = memory
        self.transcript = bytearray()
        self._lock = threading.Lock()
        self._process: Process | None = None
        self._stopped = False
        self._pending_init_logs = ""

    def start(self) -> None:
        """Fork the process and wait until it is ready; InitError if the function's init failed."""
        with self._lock:
            self._pending_init_logs = self._start_process()

    def _start_process(self) -> str:
        """Fork a process; the init logs (the template's, then the process's own until ready)."""
        if self._stopped:
            raise InitError({"errorMessage": "the environment was stopped", "errorType": "Runtime.Stopped"})
        try:
            template = self._template()
            process = Process(template, self._env, self.transcript)
        except TemplateError as exc:
            raise InitError({"errorMessage": str(exc), "errorType": "Runtime.Unknown"}) from exc
        self._process = process
        result = process.next_result(INIT_TIMEOUT_S)
        logs = template.init_logs + process.take_output()
        if result is not None and result["kind"] == "ready":
            return logs
        process.kill()
        self._process = None
        if result is None:
            body = {"errorMessage": f"init did not finish in {INIT_TIMEOUT_S:.0f}s", "errorType": "Runtime.InitTimeout"}
        elif result["kind"] == "exit":
            body = {"errorMessage": exit_message(result["code"]), "errorType": "Runtime.ExitError"}
        else:
            body = result["body"]
        raise InitError(body)

    def invoke(self, request: dict[str, Any]) -> Outcome:
        """Run one invocation (LocalStack's payload) with the function's timeout."""
        with self._lock:
            invoke_id = request["invoke-id"]
            started = time.monotonic()
            logs = self._pending_init_logs
            self._pending_init_logs = ""
            if self._process is None:  # killed by a timeout or a crash: init again
                try:
                    logs += self._start_process()
                except InitError as exc:
                    return self._finish(invoke_id, started, logs, True, json.dumps(exc.body))
            assert self._process is not None
            logs = logs + f"START RequestId: {invoke_id} Version: {self.version}\n"
            deadline_ms = int(time.time() * 1000 + self.timeout_s * 1000)
            process = self._process
            try:
                process.send({**request, "deadline-ms": deadline_ms})
            except OSError:  # it died while idle: its end of the pipe is closed
                result: dict[str, Any] | None = {"kind": "exit", "code": process.exit_code()}
            else:
                result = process.next_result(self.timeout_s)
            if result is None:
                process.kill()
                self._process = None
                logs += process.take_output(wait_s=AFTERMATH_WAIT_S)
                message = f"Task timed out after {self.timeout_s:.2f} seconds"
                logs += f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {invoke_id} {message}\n"
                body = {"errorMessage": f"RequestId: {invoke_id} Error: {message}", "errorType": "Sandbox.Timedout"}
                return self._finish(invoke_id, started, logs, True, json.dumps(body))
            if result["kind"] == "exit":
                process.kill()
                self._process = None
                logs += process.take_output(wait_s=AFTERMATH_WAIT_S)
                message = f"RequestId: {invoke_id} Error: {exit_message(result['code'])}"
                body = {"errorMessage": message, "errorType": "Runtime.ExitError"}
                return self._finish(invoke_id, started, logs, True, json.dumps(body))
            logs += process.take_output()
            return self._finish(invoke_id, started, logs, result["kind"] != "response", result["body"])

    def _finish(self, invoke_id: str, started: float, logs: str, is_error: bool, body: str) -> Outcome:
        duration_ms = (time.monotonic() - started) * 1000
        logs += (
            f"END RequestId: {invoke_id}\n"
            f"REPORT RequestId: {invoke_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {self.memory} MB\t\n"
        )
        return Outcome(is_error=is_error, body=body, logs=logs)

    def stop(self) -> None:
        """Kill the process (an invocation in it ends as a crash); no new one is forked."""
        self._stopped = True
        process = self._process
        if process is not None:
            process.kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None
