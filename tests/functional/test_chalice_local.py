"""tools/devstack/chalice_local: Chalice's local server with TCP_NODELAY, a deep listen backlog, and API
Gateway's own answers in the error shape."""

import json
import threading
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from chalice.local import LocalChalice

from tests.functional.conftest import JSON, STAGE
from tools.devstack.chalice_local import create_server


@pytest.fixture(scope="module")  # Chalice makes the app a LocalChalice once per process
def server():
    local = create_server(STAGE, "127.0.0.1", 0)
    thread = threading.Thread(target=local.server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{local.server.server_address[1]}"
    local.shutdown()
    local.server.server_close()


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
