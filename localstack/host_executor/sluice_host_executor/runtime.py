"""A Lambda function's processes on the host. Standard library only: it runs on the interpreter
that stands in for the Lambda runtime, not in LocalStack's environment.

    python runtime.py template FD

The **template** is started once per function version (executor.py) with the function's
environment. It imports the handler's module, as an environment's init does, and from then on
only forks: each execution environment is a fork of it, so a new one is ready in milliseconds and
starts from the state init left, never from another environment's. It talks to LocalStack's
executor over FD, a Unix socket of datagrams (SOCK_SEQPACKET), one JSON message each:

    template -> executor   {"kind": "template", "mode": "imported" | "per-environment", "reason": ...}
    executor -> template   {"kind": "fork", "env": {...}}, with three fds: requests, results, output
    template -> executor   {"kind": "forked", "pid": N}
    template -> executor   {"kind": "exited", "pid": N, "code": C}   (C < 0: killed by signal -C)

Nothing opened before a fork may reach a child, so the template runs no threads, and when the
handler's init leaves a descriptor (a socket, a file) or a thread open, or fails, it starts over as
a fresh image that does not import the handler ("per-environment"): each environment then runs
init itself after the fork, as it would on AWS. The template ends when the executor's end of FD
closes (the function's last version retired, or LocalStack gone), and kills its environments then.

An **environment** reads invocations from its requests pipe, one JSON line each, runs the handler,
and writes one JSON line per message to its results pipe: "ready" or "init-error" once, then
"response" or "error" per invocation. Its stdout and stderr are the output pipe, with END_MARK
after each message so the executor can cut out each invocation's logs. It exits when the requests
pipe closes.
"""

import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import socket
import stat
import sys
import time
import traceback
from typing import Any

END_MARK = "\x1esluice-invocation-end\x1e"
MAX_MESSAGE = 1 << 20  # the largest fork request: an environment's variables
PR_SET_NAME = 15
# The names ps and the fault suite see (/proc/PID/comm, 15 bytes at most).
TEMPLATE_NAME = b"lambda-template"
ENVIRONMENT_NAME = b"lambda-env"

HANDLER: Any = None  # the handler the template imported; None in per-environment mode


def set_process_name(name: bytes) -> None:
    """Name this process, so a template and its environments can be told apart."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)


# --- what Lambda's Python runtime does --------------------------------------------------------


class LambdaContext:
    """The context object Lambda's Python runtime passes to a handler."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.aws_request_id: str = request["invoke-id"]
        self.invoked_function_arn: str = request["invoked-function-arn"]
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms: int = request["deadline-ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def user_frames(exc: BaseException) -> traceback.StackSummary:
    """The traceback without this runtime's own frames, as Lambda shows it."""
    here = os.path.abspath(__file__)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.abspath(f.filename) != here]
    return traceback.StackSummary.from_list(frames)


def error_body(exc: BaseException, error_type: str | None = None, message: str | None = None) -> dict[str, Any]:
    """An exception in the shape Lambda's Python runtime reports it."""
    return {
        "errorMessage": message if message is not None else str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": user_frames(exc).format(),
    }


def print_error(exc: BaseException) -> None:
    """Log an exception as Lambda's Python runtime does: type, message, the user's frames."""
    text = "".join(user_frames(exc).format())
    sys.stderr.write(f"[ERROR] {type(exc).__name__}: {exc}\nTraceback (most recent call last):\n{text}")


def load_handler(spec: str) -> Any:
    """Import `module.function` as Lambda's Python runtime does, with its error types."""
    module_name, _, function_name = spec.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except SyntaxError as exc:
        raise HandlerError(
            error_body(exc, "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}")
        ) from exc
    except ImportError as exc:
        raise HandlerError(
            error_body(exc, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
        ) from exc
    except Exception as exc:
        raise HandlerError(
            error_body(exc, f"Runtime.{type(exc).__name__}", f"Unable to import module '{module_name}': {exc}")
        ) from exc
    try:
        return getattr(module, function_name)
    except AttributeError as exc:
        raise HandlerError(
            error_body(exc, "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
        ) from exc


class HandlerError(Exception):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body["errorMessage"])
        self.body = body


# --- an execution environment -----------------------------------------------------------------


def run_environment(handler: Any, requests_fd: int, results_fd: int) -> None:
    """Run init if the template did not, report ready, then run invocations until the requests
    pipe closes."""
    requests = os.fdopen(requests_fd, "r", encoding="utf-8")
    results = os.fdopen(results_fd, "w", encoding="utf-8")

    def send(message: dict[str, Any]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(1, END_MARK.encode())
        results.write(json.dumps(message) + "\n")
        results.flush()

    if handler is None:
        try:
            handler = load_handler(os.environ["_HANDLER"])
        except HandlerError as exc:
            sys.stderr.write(f"[ERROR] {exc.body['errorType']}: {exc.body['errorMessage']}\n")
            send({"kind": "init-error", "body": exc.body})
            return
    send({"kind": "ready"})
    for line in requests:
        request = json.loads(line)
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace-id") or ""
        context = LambdaContext(request)
        try:
            event = json.loads(request["payload"]) if request["payload"] else {}
            result = handler(event, context)
            try:
                send({"kind": "response", "body": json.dumps(result)})
            except (TypeError, ValueError) as exc:
                body = error_body(exc, "Runtime.MarshalError", f"Unable to marshal response: {exc}")
                send({"kind": "error", "body": json.dumps(body)})
        except Exception as exc:
            print_error(exc)
            body = error_body(exc)
            body["requestId"] = context.aws_request_id
            send({"kind": "error", "body": json.dumps(body)})


def become_environment(env: dict[str, str], fds: list[int]) -> None:
    """In a child just forked from the template: keep nothing of the template's but what init left
    in memory, then run as an environment."""
    requests_fd, results_fd, output_fd = fds
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setpgid(0, 0)  # its own process group: stopping it also ends whatever its handler started
    set_process_name(ENVIRONMENT_NAME)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    keep = {0, 1, 2, requests_fd, results_fd}
    for fd in open_fds() - keep:  # the template's socket and pipes among them
        os.close(fd)
    os.environ.update(env)
    run_environment(HANDLER, requests_fd, results_fd)


# --- the template -----------------------------------------------------------------------------


def open_fds() -> set[int]:
    """This process's open descriptors (without the one the listing itself used)."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))
        except OSError:
            continue
        fds.add(int(name))
    return fds


def left_open(fds_before: set[int], threads_before: int) -> str:
    """What init left that a fork would share with every environment ("" if nothing)."""
    found = []
    for fd in sorted(open_fds() - fds_before):
        found.append(f"fd {fd} ({'a socket' if stat.S_ISSOCK(os.fstat(fd).st_mode) else 'a file'})")
    threads = len(os.listdir("/proc/self/task"))
    if threads > threads_before:
        found.append(f"{threads - threads_before} thread(s)")
    return ", ".join(found)


def template(control_fd: int, import_handler: bool) -> None:
    global HANDLER
    set_process_name(TEMPLATE_NAME)
    # The function's code first on sys.path, as /var/task on Lambda; not this runtime's directory.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [os.environ["LAMBDA_TASK_ROOT"]] + [p for p in sys.path if p != here]
    # Line-buffered, so prints and log records keep their order in the invocation's logs.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    reason = os.environ.pop("SLUICE_TEMPLATE_REASON", "")
    if import_handler:
        fds_before, threads_before = open_fds(), len(os.listdir("/proc/self/task"))
        try:
            HANDLER = load_handler(os.environ["_HANDLER"])
            reason = left_open(fds_before, threads_before)
            if reason:
                reason = f"init left {reason} open"
        except HandlerError as exc:
            reason = f"init failed ({exc.body['errorType']})"
        if reason:
            # Start over as an image that never ran init: nothing init left can reach an environment.
            sys.stderr.write(f"template: {reason}; each environment runs init itself\n")
            sys.stdout.flush()
            sys.stderr.flush()
            os.set_inheritable(control_fd, True)
            os.environ["SLUICE_TEMPLATE_REASON"] = reason
            os.execv(
                sys.executable, [sys.executable, os.path.abspath(__file__), "template", str(control_fd), "no-import"]
            )
    mode = "imported" if import_handler else "per-environment"
    serve_forks(socket.socket(fileno=control_fd), {"kind": "template", "mode": mode, "reason": reason})


def serve_forks(control: socket.socket, hello: dict[str, Any]) -> None:
    """Fork an environment per request and report each one's exit; end when the executor hangs up."""
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_read, False)
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    control.send(json.dumps(hello).encode())
    children: set[int] = set()
    poller = select.poll()
    poller.register(control.fileno(), select.POLLIN)
    poller.register(wakeup_read, select.POLLIN)
    try:
        while True:
            # poll, not select: FD keeps LocalStack's number for it, which may be past select's 1,024
            readable = {fd for fd, _ in poller.poll()}
            if wakeup_read in readable:
                while _drain(wakeup_read):
                    pass
                report_exits(control, children)
            if control.fileno() not in readable:
                continue
            data, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 3)
            if not data:
                return  # the executor hung up
            request = json.loads(data)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    become_environment(request["env"], fds)
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)  # never back into the template's loop
            for fd in fds:
                os.close(fd)
            children.add(pid)
            control.send(json.dumps({"kind": "forked", "pid": pid}).encode())
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def _drain(fd: int) -> bool:
    try:
        return bool(os.read(fd, 4096))
    except BlockingIOError:
        return False


def report_exits(control: socket.socket, children: set[int]) -> None:
    """Reap the environments that ended and tell the executor how each ended."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        try:
            control.send(json.dumps({"kind": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)}).encode())
        except OSError:
            return


if __name__ == "__main__":
    if sys.argv[1:2] != ["template"]:
        sys.exit("usage: runtime.py template FD [no-import]")
    template(int(sys.argv[2]), import_handler=sys.argv[3:4] != ["no-import"])
