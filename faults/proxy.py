"""A fault proxy for AWS's JSON protocol (SQS): sits between the app and LocalStack and, on
command, refuses connections, answers late, or holds the calls of one action.

    proxy = FaultProxy(listen_port=4580, upstream="http://127.0.0.1:4566")
    proxy.start()
    proxy.delay_responses(6.0)           # forward each call, then answer 6 s late (it lands; the caller may give up)
    proxy.hold("DeleteMessageBatch")     # keep those calls waiting, unanswered and unforwarded
    proxy.drop_held()                    # ...then close them without forwarding (as a crash would)
    proxy.refuse()                       # stop listening: connections are refused, as if SQS were down
    proxy.restore()                      # back to passing every call through at once

Each call is read whole (headers and Content-Length body), forwarded on a fresh connection and
answered with upstream's status, headers and body. It runs in threads of the fault suite.
"""

import contextlib
import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
UPSTREAM_TIMEOUT_S = 60.0  # longer than any call the app makes (SQS long polls are at most 20 s)


class _Held:
    def __init__(self) -> None:
        self.released = threading.Event()
        self.forward = False


class FaultProxy:
    def __init__(self, listen_port: int, upstream: str) -> None:
        parsed = urlparse(upstream)
        self.listen_port = listen_port
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._lock = threading.Lock()
        self._delay_s = 0.0
        self._hold_action: str | None = None
        self._held: list[_Held] = []
        self._refusing = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.calls: dict[str, int] = {}

    # --- faults -----------------------------------------------------------------------------

    def delay_responses(self, seconds: float) -> None:
        """Answer every call `seconds` late (after forwarding it)."""
        with self._lock:
            self._delay_s = seconds

    def hold(self, action: str) -> None:
        """Keep calls whose action (X-Amz-Target suffix) is `action` waiting until released or dropped."""
        with self._lock:
            self._hold_action = action

    def held(self) -> int:
        """How many calls are being held now."""
        with self._lock:
            return sum(1 for h in self._held if not h.released.is_set())

    def drop_held(self) -> None:
        """Close every held call without forwarding it, and hold no more."""
        self._release(forward=False)

    def release_held(self) -> None:
        """Forward every held call, and hold no more."""
        self._release(forward=True)

    def _release(self, forward: bool) -> None:
        with self._lock:
            self._hold_action = None
            held, self._held = self._held, []
        for h in held:
            h.forward = forward
            h.released.set()

    def refuse(self) -> None:
        """Stop listening, so new connections are refused; calls on open connections are cut off."""
        self._refusing = True
        server = self._server
        self._server = None
        if server is not None:
            server.shutdown()
            server.server_close()

    def restore(self) -> None:
        """Pass every call through at once again (listening if refused)."""
        self.delay_responses(0.0)
        self.release_held()
        self._refusing = False
        if self._server is None:
            self.start()

    # --- running ----------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on 127.0.0.1:listen_port in a thread."""
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY the body waits for the
            # client's delayed ACK, about 40 ms a call that SQS itself does not cost.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                proxy._handle(self)

            def do_GET(self) -> None:
                proxy._handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = Server(("127.0.0.1", self.listen_port), Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Release everything and stop listening."""
        self.release_held()
        self.refuse()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        if self._refusing:
            _cut(request)
            return
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        action = (request.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
        with self._lock:
            self.calls[action] = self.calls.get(action, 0) + 1
            delay = self._delay_s
            held: _Held | None = None
            if self._hold_action and action == self._hold_action:
                held = _Held()
                self._held.append(held)
        if held is not None:
            held.released.wait(UPSTREAM_TIMEOUT_S)
            if not held.forward:
                _cut(request)
                return
        upstream = http.client.HTTPConnection(*self._upstream, timeout=UPSTREAM_TIMEOUT_S)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(request.command, request.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
        except OSError:
            request.send_error(502, "upstream unavailable")
            return
        finally:
            upstream.close()
        if delay:
            time.sleep(delay)
        try:
            request.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    request.send_header(key, value)
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
        except OSError:
            pass  # the caller gave up waiting (a timeout): the call still happened upstream


def _cut(request: BaseHTTPRequestHandler) -> None:
    """Close the caller's connection without an answer."""
    request.close_connection = True
    with contextlib.suppress(OSError):
        request.connection.shutdown(socket.SHUT_RDWR)
