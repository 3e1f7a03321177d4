"""The packaged stack under test: deployed once per session in each emulator, and the checks its
tests make (shared with the least-privilege tests, which make one of them fail on purpose)."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql

from tests.integration.conftest import API
from tests.support.waiting import wait_for
from tools.aws import aws_client
from tools.deploy.stack import StackDeployment, delete, deploy, operator_client, targets
from tools.ops.migrate import invoke_migrate, migrate_client_config
from tools.ops.queues import queue_depth
from tools.ops.reset import empty_tables, forget_redis_keys, purge_queues
from tools.stage import stage_settings

STAGE = "stack"
SETTINGS = stage_settings(STAGE)  # names and prefixes; the servers are the stack's parameters
ENTRY = {"level": "info", "source": "web-1", "message": "through the packaged stack"}


class Stacks:
    """The stack deployed once per emulator and session, removed at the end."""

    def __init__(self) -> None:
        self._deployed: dict[str, StackDeployment] = {}

    def get(self, target: str, migrate: bool = True) -> StackDeployment:
        """The stack in `target`, deployed the first time; later, migrated again (unless the caller
        uses no database): both emulators' stacks (and the failed-deploy tests' stacks) share the
        local MariaDB's accounts, each with passwords from its own secrets, and the last migration
        run set them."""
        if target not in self._deployed:
            self._deployed[target] = deploy(STAGE, target)
        elif migrate:
            lambda_client = aws_client(
                "lambda", endpoint_url=targets()[target].endpoint, config=migrate_client_config(STAGE)
            )
            invoke_migrate(f"{self._deployed[target].stack_name}-migrate", lambda_client)
        return self._deployed[target]

    def remove_all(self) -> None:
        for target in list(self._deployed):
            delete(STAGE, target)
            del self._deployed[target]


def emulator(deployment: StackDeployment, service: str) -> Any:
    """A client of the emulator the stack runs in, as its account's root."""
    return aws_client(service, endpoint_url=targets()[deployment.target].endpoint)


def database() -> pymysql.connections.Connection:
    """Root on the local MariaDB, in the stack's database."""
    from tools.admin import admin_connection

    return admin_connection(SETTINGS.mysql.database)


def count(sql: str, args: Any = None) -> int:
    with database() as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
        return int(row[0]) if row else 0


def clean(deployment: StackDeployment) -> None:
    """Empty the stack's tables, Redis keys and queues."""
    with database() as conn:
        empty_tables(conn)
    forget_redis_keys(stage_settings("local").redis_url, SETTINGS.redis_key_prefix)
    urls = (deployment.outputs["LogQueueUrl"], deployment.outputs["LogDeadLetterQueueUrl"])
    operator = operator_client(deployment.target, deployment.parameters["RedriveRoleArn"], "sqs")
    purge_queues(operator, urls)  # the queues' policies let only the operator purge


@contextmanager
def logs_locked() -> Iterator[None]:
    """The logs table write-locked by another session: every consumer insert waits until its MySQL
    read timeout and fails as MySQL being unavailable (a real outage, as the consumer sees it)."""
    with database() as conn, conn.cursor() as cur:
        cur.execute("LOCK TABLES logs WRITE")
        try:
            yield
        finally:
            cur.execute("UNLOCK TABLES")


def check_an_entry_is_stored_exactly_once(api: API, deployment: StackDeployment) -> None:
    """POST /logs twice with one id (a client's retry) through the stack's URL: 202 both times,
    stored once by the event source mapping and the consumer, readable through GET /logs/{id}."""
    # WHEN one entry is posted twice with its id, as a retrying client would
    log_id = str(uuid.uuid4())
    for _ in range(2):
        answer = api.post("/logs", {**ENTRY, "id": log_id})
        assert (answer.status, answer.body) == (202, {"id": log_id, "status": "queued"}), answer.body
    # THEN once both messages are consumed (the queue empty: none waiting, none in flight) ...
    sqs, queue_url = emulator(deployment, "sqs"), deployment.outputs["LogQueueUrl"]
    wait_for(
        lambda: count("SELECT COUNT(*) FROM logs WHERE id = %s", (log_id,)) > 0 and queue_depth(sqs, queue_url) == 0,
        timeout_s=60,
    )
    # ... it is stored exactly once, and readable
    stored = api.get(f"/logs/{log_id}")
    assert (stored.status, stored.body["message"]) == (200, ENTRY["message"])
    assert count("SELECT COUNT(*) FROM logs WHERE id = %s", (log_id,)) == 1
