"""`chalice local` for many concurrent clients: Chalice's own local dev server (LocalDevServer and
its API Gateway emulation) with two socket settings and one method changed. No auto-reload (Chalice's polls every
file under the project, `.data/` and the virtual environments included): restart after a change.

    python -m tools.devstack.chalice_local --stage local [--host 127.0.0.1] [--port 8000] [--env NAME=VALUE ...]

`--env` overrides one of the stage's environment variables (the benchmark uses it).

- TCP_NODELAY on each connection: Chalice's handler writes a response's headers and body in two
  sends, and on a kept-alive connection Nagle's algorithm then holds the body for the client's
  delayed ACK, about 40 ms a request (measured: 48 ms instead of 2.5 ms per POST /logs).
- A listen backlog of 1024 instead of socketserver's 5, so a burst of new connections is queued,
  not dropped and retried by the clients' TCP a second or more later.
- Every method goes through Chalice (a 405 in JSON for one the path lacks), where http.server
  would answer TRACE or QUERY with an HTML 501.
- A path without a route answers 404 in the error shape, as the deployed API Gateway does
  (tools/deploy/gateway_responses.py), not Chalice's copy of API Gateway's default 403.
- A body sent with `Transfer-Encoding: chunked` is read (tools/devstack/chunked.py), within the
  largest body any route takes; a malformed or oversized one is answered 400 or 413, and the
  connection closed.
"""

import argparse
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

from chalice.cli.factory import CLIFactory
from chalice.deploy.validate import validate_routes
from chalice.local import (
    ChaliceRequestHandler,
    ForbiddenError,
    LocalDevServer,
    LocalGatewayException,
    ThreadedHTTPServer,
)

from chalicelib.web.http import error_body
from tools.deploy import gateway_responses
from tools.devstack.chunked import ChunkedBodyError, read_chunked
from tools.devstack.processes import PARENT_ENV, die_with_parent
from tools.stage import ROOT, forget_defaulted_variables


def create_server(stage: str, host: str, port: int, overrides: dict[str, str] | None = None) -> LocalDevServer:
    """The stage's app behind Chalice's local API Gateway emulation, built by Chalice as `chalice local` does."""
    forget_defaulted_variables()  # what the stage leaves out is its default, not a value of this process's
    factory = CLIFactory(str(ROOT), environ=os.environ)
    params = {"environment_variables": overrides} if overrides else None
    config = factory.create_config_obj(chalice_stage_name=stage, user_provided_params=params)
    app = config.chalice_app
    validate_routes(app.routes)
    # The two settings this module exists for. Everything else stays Chalice's own: its server
    # factory also makes the app's current_request thread-local, which a threaded server needs.
    ChaliceRequestHandler.disable_nagle_algorithm = True
    ThreadedHTTPServer.request_queue_size = 1024
    # Methods Chalice's handler leaves to http.server (an HTML 501): through Chalice, as API Gateway
    # would take them, so a method the path does not have gets the usual JSON 405.
    ChaliceRequestHandler.__getattr__ = _any_method
    # A path without a route: the 404 the deployed API Gateway gives (tools/deploy/gateway_responses.py),
    # not Chalice's imitation of API Gateway's default 403.
    ChaliceRequestHandler._send_error_response = _send_gateway_answer  # type: ignore[method-assign,assignment]
    from chalicelib import wiring  # the app's settings, loaded with the app above

    body_cap = max(wiring.SETTINGS.max_body_bytes, wiring.SETTINGS.max_batch_body_bytes)
    handle = _reading_chunked_bodies(_CHALICE_HANDLE, body_cap)
    for name in ("_generic_handle", "do_GET", "do_PUT", "do_POST", "do_HEAD", "do_DELETE", "do_PATCH", "do_OPTIONS"):
        setattr(ChaliceRequestHandler, name, handle)  # Chalice's do_* are aliases of _generic_handle
    setattr(ChaliceRequestHandler, "_parse_payload", _parsed_payload)  # noqa: B010
    server: LocalDevServer = factory.create_local_server(app, config, host, port)
    return server


_CHALICE_HANDLE = ChaliceRequestHandler._generic_handle
_CHALICE_PARSE = ChaliceRequestHandler._parse_payload


def _reading_chunked_bodies(handle: Callable[[Any], None], max_bytes: int) -> Callable[[Any], None]:
    """Chalice's request handling, with a chunked body read first (Chalice reads Content-Length only)."""

    def handle_request(handler: ChaliceRequestHandler) -> None:
        if "chunked" not in handler.headers.get("transfer-encoding", "").lower():
            handler._chunked_payload = None
            handle(handler)
            return
        try:
            body = read_chunked(handler.rfile, max_bytes)
        except ChunkedBodyError as refused:
            handler.close_connection = True  # what follows on the connection is not a request
            code = "payload_too_large" if refused.status == 413 else "invalid_body"
            answer = json.dumps(error_body(code, str(refused), str(uuid.uuid4())))
            handler._send_http_response(
                refused.status, {"Content-Type": "application/json", "Connection": "close"}, answer
            )
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "transfer-encoding"}
        handler._chunked_payload = ({**headers, "Content-Length": str(len(body))}, body)
        handle(handler)

    return handle_request


def _parsed_payload(handler: ChaliceRequestHandler) -> tuple[dict[str, Any], bytes | None]:
    """The chunked body read before Chalice's handling, or Chalice's own reading of Content-Length."""
    payload = getattr(handler, "_chunked_payload", None)
    return payload if payload is not None else _CHALICE_PARSE(handler)


def _any_method(handler: ChaliceRequestHandler, name: str) -> Any:
    """`do_<METHOD>` for a method Chalice's handler does not name (TRACE, QUERY, ...)."""
    if name.startswith("do_"):
        return handler._generic_handle
    raise AttributeError(name)


def _send_gateway_answer(handler: ChaliceRequestHandler, error: LocalGatewayException) -> None:
    """Chalice's local gateway refuses with ForbiddenError only for a path without a route (the
    app registers no Chalice authorizer): answer as the deployed gateway does, else as Chalice does."""
    if not isinstance(error, ForbiddenError):
        handler._send_http_response(error.CODE, error.headers, error.body)
        return
    answer = gateway_responses.ANSWERS["MISSING_AUTHENTICATION_TOKEN"]
    assert answer.status is not None
    headers = {"Content-Type": "application/json", **dict(answer.headers)}
    handler._send_http_response(answer.status, headers, gateway_responses.body(answer, str(uuid.uuid4())))


def env_pair(text: str) -> tuple[str, str]:
    """NAME=VALUE as a pair (an argparse type)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--env", action="append", default=[], type=env_pair, metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    if PARENT_ENV in os.environ:  # started by make up (tools.devstack.serve): end with it
        die_with_parent()
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")  # as chalice local does
    create_server(args.stage, args.host, args.port, dict(args.env)).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
