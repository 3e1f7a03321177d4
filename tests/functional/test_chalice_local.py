"""tools/devstack/chalice_local: Chalice's local server with TCP_NODELAY, a deep listen backlog, and API
Gateway's own answers in the error shape."""

import gzip
import http.client
import json
import re
import socket
import threading
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from chalice.local import LocalChalice

from tests.functional.conftest import JSON


def test_each_concurrent_request_is_answered_with_its_own_data(server):
    # GIVEN Chalice's thread-local request in place (a shared current_request once mixed up bodies
    # under load: an acknowledged entry queued twice and another never)
    from app import app

    assert isinstance(app, LocalChalice)
    # WHEN 100 clients post at once, each with its own id
    ids = [str(uuid.uuid4()) for _ in range(100)]
    answers: dict[str, str] = {}
    barrier = threading.Barrier(len(ids))

    def post(log_id: str) -> None:
        body = json.dumps({"id": log_id, "level": "info", "source": "s", "message": log_id}).encode()
        request = urllib.request.Request(f"{server}/logs", data=body, headers=JSON, method="POST")
        barrier.wait()
        with urllib.request.urlopen(request, timeout=30) as response:
            answers[log_id] = json.load(response)["id"]

    threads = [threading.Thread(target=post, args=(log_id,)) for log_id in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN every answer carries the id its request sent
    assert answers == {log_id: log_id for log_id in ids}


def answer(url: str, method: str = "GET") -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and JSON body of one request, whatever its status."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


@pytest.mark.parametrize("path", ["/nope", "/logs/a/b/c", "/", "/items/x/y"])
def test_a_path_without_a_route_answers_404_in_the_error_shape(server, path):
    # WHEN a path no route has is asked for (Chalice's gateway answers 403 "Missing Authentication Token")
    status, headers, body = answer(f"{server}{path}")
    # THEN it is the 404 the deployed API Gateway gives (tools/deploy/gateway_responses.py)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert body["error"]["code"] == "not_found"
    assert body["error"]["request_id"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/logs", "POST, GET"),
        ("DELETE", "/health", "GET"),
        ("PATCH", "/items/x", "GET, PUT, DELETE"),
        ("TRACE", "/logs/batch", "POST"),  # not one of API Gateway's: Chalice's own 405, reshaped
    ],
)
def test_a_method_the_path_lacks_answers_405_with_allow(server, method, path, allow):
    # (Chalice's own 405, in the error shape; API Gateway has no such answer: deployed, it is the 404)
    status, headers, body = answer(f"{server}{path}", method)
    assert status == 405
    assert sorted(headers["Allow"].split(", ")) == sorted(allow.split(", "))
    assert body["error"]["code"] == "method_not_allowed"


def raw_exchange(server: str, request: bytes) -> tuple[bytes, bool]:
    """Send raw bytes on a new connection; the answer's bytes, and whether the server then closed it."""
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received or not _complete(received):
            part = conn.recv(65536)
            if not part:
                return received, True
            received += part
        conn.settimeout(30)  # a server that keeps the connection would leave the read below waiting
        return received, conn.recv(1) == b""


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    return length is not None and len(body) >= int(length.group(1))


def test_a_chunked_gzip_batch_is_read_whole_and_queued(server):
    # GIVEN a batch of 50 entries, gzip-compressed and sent in chunks with no Content-Length (as an
    # OpenTelemetry JavaScript exporter streams its body)
    entries = [{"level": "info", "source": "web-1", "message": f"chunked {i}"} for i in range(50)]
    compressed = gzip.compress(json.dumps({"logs": entries}).encode())
    pieces = [compressed[i : i + 100] for i in range(0, len(compressed), 100)]
    host, port = server.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    # WHEN it is posted, then another request follows on the same connection
    conn.request(
        "POST", "/logs/batch", body=iter(pieces), headers={**JSON, "Content-Encoding": "gzip"}, encode_chunked=True
    )
    accepted = conn.getresponse()
    accepted_body = json.loads(accepted.read())
    conn.request("GET", "/health")
    after = conn.getresponse()
    # THEN every entry is accepted, and the connection still serves the next request
    assert accepted.status == 202, accepted_body
    assert len(accepted_body["ids"]) == 50
    assert (after.status, json.loads(after.read())) == (200, {"status": "ok"})
    conn.close()


@pytest.mark.parametrize(
    ("chunks", "status", "code"),
    [
        (b"zz\r\n{}\r\n0\r\n\r\n", 400, "invalid_body"),
        (b"%x\r\n" % (64 * 1024 * 1024), 413, "payload_too_large"),  # announced past every route's cap
    ],
)
def test_a_malformed_or_oversized_chunked_body_is_refused_and_the_connection_closed(server, chunks, status, code):
    # GIVEN a chunked request whose body is malformed, or larger than any route takes
    head = "POST /logs HTTP/1.1\r\nHost: local\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in JSON.items()) + "\r\n"
    # WHEN it is sent
    received, closed = raw_exchange(server, head.encode() + chunks)
    # THEN it is refused in the error shape, and the server closes the connection (what follows on it
    # cannot be told from the body)
    status_line, _, rest = received.partition(b"\r\n")
    assert int(status_line.split()[1]) == status
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"]["code"] == code
    assert closed
