"""A Lambda execution environment as a host process. Standard library only: it runs on the
interpreter that stands in for the Lambda runtime, not in LocalStack's environment.

    python runtime.py           the environment: talks to LocalStack, supervises the worker
    python runtime.py worker    the worker: imports the handler and runs invocations

The environment listens on 127.0.0.1 for LocalStack's `POST /invoke`, runs each invocation in
the worker with the function's timeout, and answers LocalStack at LOCALSTACK_RUNTIME_ENDPOINT
with the invocation's logs and its response or error in Lambda's shapes. The worker is a
separate process so a timed-out or crashed invocation can be killed and the code initialised
again, as Lambda does. stdout and stderr of the worker are the invocation's logs.
"""

import contextlib
import http.server
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from typing import Any

END_MARK = "\x1esluice-invocation-end\x1e"
INIT_TIMEOUT_S = 60.0


def die_with_parent(expected_parent: int) -> None:
    """Exit when the process that started us is gone (LocalStack killed, environment killed).

    A check of the parent every second, not the kernel's parent-death signal: that signal fires
    when the *thread* that started the process ends, and environments are started from
    LocalStack's request threads and workers re-initialised from invocation threads, so it killed
    healthy processes once the thread that started them was done.
    """

    def watch() -> None:
        while True:
            if os.getppid() != expected_parent:
                os._exit(1)
            time.sleep(1)

    threading.Thread(target=watch, daemon=True).start()


# --- the worker ------------------------------------------------------------------------------


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


def worker(requests_fd: int, results_fd: int) -> None:
    die_with_parent(int(os.environ["SLUICE_ENVIRONMENT_PID"]))
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    # The function's code first, as /var/task on Lambda; not this runtime's own directory.
    sys.path[:] = [task_root] + [p for p in sys.path if p != os.path.dirname(os.path.abspath(__file__))]
    # Line-buffered, so prints and log records keep their order in the invocation's logs.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    requests = os.fdopen(requests_fd, "r", encoding="utf-8")
    results = os.fdopen(results_fd, "w", encoding="utf-8")

    def send(message: dict[str, Any]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(1, END_MARK.encode())
        results.write(json.dumps(message) + "\n")
        results.flush()

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


# --- the environment ---------------------------------------------------------------------------


class Worker:
    """The worker process, its output (the logs) and its request/result pipes."""

    def __init__(self) -> None:
        requests_read, self._requests = os.pipe()
        self._results, results_write = os.pipe()
        output_read, output_write = os.pipe()
        env = {**os.environ, "SLUICE_ENVIRONMENT_PID": str(os.getpid())}
        self.process = subprocess.Popen(
            [sys.executable, __file__, "worker", str(requests_read), str(results_write)],
            stdin=subprocess.DEVNULL,
            stdout=output_write,
            stderr=output_write,
            pass_fds=(requests_read, results_write),
            env=env,
            cwd=os.environ["LAMBDA_TASK_ROOT"],
        )
        for fd in (requests_read, results_write, output_write):
            os.close(fd)
        self._output = b""
        self._output_done = threading.Condition()
        self._reader = threading.Thread(target=self._read_output, args=(output_read,), daemon=True)
        self._reader.start()
        self._results_buffer = b""

    def _read_output(self, fd: int) -> None:
        while chunk := os.read(fd, 65536):
            with self._output_done:
                self._output += chunk
                self._output_done.notify_all()
        os.close(fd)
        with self._output_done:
            self._output += END_MARK.encode()  # EOF ends whatever was being collected
            self._output_done.notify_all()

    def take_output(self, wait_s: float = 1.0) -> str:
        """Output up to the worker's next end-of-invocation mark (or what came, after wait_s)."""
        mark = END_MARK.encode()
        deadline = time.monotonic() + wait_s
        with self._output_done:
            while mark not in self._output and time.monotonic() < deadline:
                self._output_done.wait(timeout=max(0.0, deadline - time.monotonic()))
            text, found, rest = self._output.partition(mark)
            self._output = rest if found else b""
        return text.decode(errors="replace")

    def next_result(self, timeout_s: float) -> dict[str, Any] | None:
        """The worker's next message, or None at the timeout; EOF (a crash) is {"kind": "exit"}."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._results_buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([self._results], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(self._results, 65536)
            if not chunk:
                return {"kind": "exit", "code": self.process.wait()}
            self._results_buffer += chunk
        line, _, self._results_buffer = self._results_buffer.partition(b"\n")
        result: dict[str, Any] = json.loads(line)
        return result

    def send(self, request: dict[str, Any]) -> None:
        os.write(self._requests, (json.dumps(request) + "\n").encode())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for fd in (self._requests, self._results):
            with contextlib.suppress(OSError):
                os.close(fd)


class Environment:
    def __init__(self) -> None:
        self.endpoint = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"]
        self.runtime_id = os.environ["LOCALSTACK_RUNTIME_ID"]
        self.timeout_s = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
        self.version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.lock = threading.Lock()
        self.worker: Worker | None = None
        self.init_error: dict[str, Any] | None = None
        self.pending_init_logs = ""

    def post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(f"{self.endpoint}{path}", data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def start_worker(self) -> None:
        """Start the worker and wait for its code to load; remember an init error."""
        self.worker = Worker()
        result = self.worker.next_result(INIT_TIMEOUT_S)
        self.pending_init_logs += self.worker.take_output()
        if result is None or result["kind"] != "ready":
            if result is None:
                body = {
                    "errorMessage": f"init did not finish in {INIT_TIMEOUT_S:.0f}s",
                    "errorType": "Runtime.InitTimeout",
                }
            elif result["kind"] == "exit":
                body = {
                    "errorMessage": f"Runtime exited with error: exit status {result['code']}",
                    "errorType": "Runtime.ExitError",
                }
            else:
                body = result["body"]
            self.init_error = body
            self.worker.kill()
            self.worker = None

    def invoke(self, request: dict[str, Any]) -> None:
        with self.lock:
            try:
                self._invoke(request)
            except Exception as exc:  # never leave LocalStack waiting for an answer that cannot come
                traceback.print_exc()
                body = error_body(exc, "Runtime.Unknown")
                body["requestId"] = request["invoke-id"]
                with contextlib.suppress(OSError):
                    self.post(f"/invocations/{request['invoke-id']}/error", json.dumps(body).encode())

    def _invoke(self, request: dict[str, Any]) -> None:
        invoke_id = request["invoke-id"]
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000 + self.timeout_s * 1000)
        logs = self.pending_init_logs + f"START RequestId: {invoke_id} Version: {self.version}\n"
        self.pending_init_logs = ""
        if self.worker is None and self.init_error is None:
            self.start_worker()  # initialise again after a timeout or a crash
            logs += self.pending_init_logs
            self.pending_init_logs = ""
        if self.worker is None:
            assert self.init_error is not None
            kind, body = "error", json.dumps(self.init_error)
        else:
            try:
                self.worker.send({**request, "deadline-ms": deadline_ms})
            except OSError:  # the worker died while idle: its end of the pipe is closed
                result: dict[str, Any] | None = {"kind": "exit", "code": self.worker.process.wait()}
            else:
                result = self.worker.next_result(self.timeout_s)
            if result is None:
                self.worker.kill()
                logs += self.worker.take_output(wait_s=0.2)
                message = f"Task timed out after {self.timeout_s:.2f} seconds"
                logs += f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {invoke_id} {message}\n"
                kind = "error"
                body = json.dumps(
                    {"errorMessage": f"RequestId: {invoke_id} Error: {message}", "errorType": "Sandbox.Timedout"}
                )
                self.worker = None
            elif result["kind"] == "exit":
                logs += self.worker.take_output(wait_s=0.2)
                kind = "error"
                message = f"RequestId: {invoke_id} Error: Runtime exited with error: exit status {result['code']}"
                body = json.dumps({"errorMessage": message, "errorType": "Runtime.ExitError"})
                self.worker.kill()
                self.worker = None
            else:
                logs += self.worker.take_output()
                kind, body = result["kind"], result["body"]
        duration_ms = (time.monotonic() - started) * 1000
        logs += (
            f"END RequestId: {invoke_id}\n"
            f"REPORT RequestId: {invoke_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {self.memory} MB\t\n"
        )
        self.post(f"/invocations/{invoke_id}/logs", json.dumps({"logs": logs}).encode())
        self.post(f"/invocations/{invoke_id}/{'response' if kind == 'response' else 'error'}", body.encode())

    def serve(self) -> None:
        die_with_parent(int(os.environ["SLUICE_PARENT_PID"]))
        signal.signal(signal.SIGTERM, lambda *_: self.shutdown())
        self.start_worker()
        if self.init_error is not None:
            # LocalStack turns this into the invocation's error, as Lambda reports an init failure.
            sys.stderr.write(self.pending_init_logs)
            self.post(f"/status/{self.runtime_id}/error", json.dumps(self.init_error).encode())
            return
        environment = self

        class InvokeHandler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                threading.Thread(target=environment.invoke, args=(request,), daemon=True).start()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), InvokeHandler)
        self.post(f"/status/{self.runtime_id}/ready", json.dumps({"port": server.server_address[1]}).encode())
        server.serve_forever()

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.kill()
        os._exit(0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(int(sys.argv[2]), int(sys.argv[3]))
    else:
        Environment().serve()
