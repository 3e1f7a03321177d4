"""Functional tests: the app through chalice.test.Client against the real MariaDB, Redis and LocalStack SQS.

The `test` stage of .chalice/config.json gives them their own database, Redis key prefix and
queues; `make test` starts the servers. Every test starts from empty tables, keys and queues.
"""

import dataclasses
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pymysql
import pytest
import redis
from chalice.test import Client

from tests.support.mysql import global_variable
from tools.admin import admin_connection
from tools.aws import aws_client
from tools.devstack.bootstrap import bootstrap
from tools.devstack.chalice_local import create_server
from tools.devstack.sqs_events import delete, lambda_event, receive, succeeded
from tools.ops.queues import queue_depth as log_queue_depth
from tools.ops.reset import empty_tables, forget_redis_keys, purge_queues
from tools.stage import apply_stage_environment, stage_environment

STAGE = "test"
apply_stage_environment(STAGE)  # before importing the app, as Lambda would

import app as sluice_app  # noqa: E402
from chalicelib import wiring  # noqa: E402

SETTINGS = wiring.SETTINGS
TEST_KEY = stage_environment(STAGE)["DEV_API_KEY"]  # every scope and source; made by the bootstrap
PLAIN = {"Content-Type": "application/json"}
JSON = {**PLAIN, "Authorization": f"Bearer {TEST_KEY}"}


@pytest.fixture(scope="session")
def queue_urls() -> Any:
    return bootstrap(STAGE)


@pytest.fixture(scope="session")
def sqs() -> Any:
    return aws_client("sqs", SETTINGS)


@pytest.fixture(scope="session")
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(SETTINGS.redis_url)


@pytest.fixture
def admin_db() -> Iterator[pymysql.connections.Connection]:
    """A root connection to the test database, for looking at what the app stored."""
    conn = admin_connection(SETTINGS.mysql.database, settings=SETTINGS)
    yield conn
    conn.close()


def _clean(queue_urls: Any, sqs: Any, redis_client: redis.Redis) -> None:
    with admin_connection(SETTINGS.mysql.database, settings=SETTINGS) as conn:
        empty_tables(conn)
    forget_redis_keys(SETTINGS.redis_url, SETTINGS.redis_key_prefix)
    purge_queues(sqs, (queue_urls.queue_url, queue_urls.dlq_url))
    wiring.reset_clients()


@pytest.fixture(autouse=True)
def clean_state(queue_urls: Any, sqs: Any, redis_client: redis.Redis) -> Iterator[None]:
    """Empty tables, keys and queues before and after each test; fresh clients for each."""
    _clean(queue_urls, sqs, redis_client)
    yield
    _clean(queue_urls, sqs, redis_client)


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(sluice_app.app, stage_name=STAGE) as test_client:
        yield test_client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {**JSON, "Authorization": f"Bearer {wiring.get_secrets().token('admin_token')}"}


def closed_port() -> int:
    """A local TCP port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def override_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Replace some settings (e.g. point Redis at a closed port) for one test; clients are rebuilt."""

    def apply(**changes: Any) -> None:
        mysql_changes = changes.pop("mysql", {})
        new = dataclasses.replace(wiring.SETTINGS, **changes)
        if mysql_changes:
            new = dataclasses.replace(new, mysql=dataclasses.replace(new.mysql, **mysql_changes))
        monkeypatch.setattr(wiring, "SETTINGS", new)
        wiring.reset_clients()

    yield apply
    monkeypatch.undo()
    wiring.reset_clients()


@contextmanager
def scratch_database(name: str) -> Iterator[pymysql.connections.Connection]:
    """A root connection in an empty database `name`, dropped afterwards."""
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    conn = admin_connection(name)
    try:
        yield conn
    finally:
        conn.close()
        with admin_connection() as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")


def body(response: Any) -> Any:
    return json.loads(response.body) if response.body else None


def received_messages(sqs: Any, queue_url: str, wait_s: int = 1) -> list[dict[str, Any]]:
    """Every message now in the queue (they stay in flight until deleted)."""
    messages: list[dict[str, Any]] = []
    while True:
        got = receive(sqs, queue_url, 10, wait_s if not messages else 0)
        if not got:
            return messages
        messages.extend(got)


def queue_arn(sqs: Any, queue_url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def deliver(client: Client, sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> Any:
    """Invoke consume_logs with real messages as Lambda's event source would, deleting those it
    did not name as failures (a partial batch response)."""
    event = lambda_event(messages, queue_arn(sqs, queue_url), SETTINGS.aws_region)
    result = client.lambda_.invoke("consume_logs", event)
    delete(sqs, queue_url, succeeded(messages, result.payload))
    return result.payload


@pytest.fixture
def consume(client: Client, sqs: Any, queue_urls: Any) -> Callable[[], Any]:
    """Drain the log queue into the consumer; returns the handler's result (None if the queue was empty)."""

    def run() -> Any:
        messages = received_messages(sqs, queue_urls.queue_url)
        return deliver(client, sqs, queue_urls.queue_url, messages) if messages else None

    return run


@pytest.fixture
def server_max_connections(admin_db):
    """Set the server's max_connections for one test; its old value is put back however the test ends."""
    with ExitStack() as changes:

        def set_to(value: int) -> None:
            changes.enter_context(global_variable(admin_db, "max_connections", value))

        yield set_to


def queue_depth(sqs, queue_urls) -> int:
    return log_queue_depth(sqs, queue_urls.queue_url)


@pytest.fixture(scope="session")  # Chalice makes the app a LocalChalice once per process
def server() -> Iterator[str]:
    """The test stage's API served as make up serves it (tools/devstack/chalice_local), on a free port."""
    local = create_server(STAGE, "127.0.0.1", 0)
    thread = threading.Thread(target=local.server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{local.server.server_address[1]}"
    local.shutdown()
    local.server.server_close()
