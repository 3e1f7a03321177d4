"""The packaged stack (`make package STAGE=stack`, the template built for AWS) deployed through
the CloudFormation of LocalStack and of MiniStack (which enforces IAM), called over HTTP.

Its functions reach the local MariaDB and Redis over TLS, verified against the stage's CA
bundle, with credentials from the emulator's Secrets Manager; its migration runs in the deploy.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.database.accounts import MAINTAINER_CONNECTIONS
from chalicelib.database.partitions import FUTURE, day_name, read_partitions
from chalicelib.database.schema import latest_version, load_migrations
from tests.integration.conftest import API
from tests.integration.otel_checks import check_otel_exports_are_stored_once
from tests.integration.stack_checks import (
    ENTRY,
    SETTINGS,
    check_an_entry_is_stored_exactly_once,
    clean,
    count,
    database,
    emulator,
    logs_locked,
)
from tests.support.otel import DEPRECATED_HANDLER
from tests.support.waiting import wait_for
from tools.deploy.stack import StackDeployment, admin_token, operator_client
from tools.devstack.local_schedule import scheduled_event
from tools.ops.queues import queue_depth


@pytest.fixture(scope="module", params=["localstack", "ministack"])
def stack(request, stacks) -> Iterator[StackDeployment]:
    deployment = stacks.get(request.param)
    clean(deployment)
    yield deployment


@pytest.fixture(scope="module")
def keyed(stack) -> API:
    """The stack's API with a key of every scope and source, made with the stack's admin token."""
    anonymous = API(stack.api_url)
    return anonymous.with_key(anonymous.make_key(admin_token(stack.stage, stack.target)))


@pytest.fixture
def api(stack, keyed) -> Iterator[API]:
    yield keyed
    clean(stack)


def test_health_is_ok_over_tls_with_the_stacks_secrets(api, stack):
    assert (api.get("/health").status, api.get("/health").body) == (200, {"status": "ok"})
    admin = {"Authorization": f"Bearer {admin_token(stack.stage, stack.target)}"}
    answer = api.get("/health/dependencies", headers=admin)
    assert (answer.status, answer.body) == (
        200,
        {"status": "ok", "checks": {"mysql": "ok", "redis": "ok", "queue": "ok"}},
    )


def test_a_path_without_a_route_gets_the_templates_404_in_the_error_shape(stacks):
    # GIVEN the stack deployed into LocalStack, whose API definition carries the gateway responses
    # (LocalStack's only: MiniStack does not apply them; tests/functional/test_package.py reads
    # them in the template itself)
    api = API(stacks.get("localstack", migrate=False).api_url)  # no database: the other stack's accounts stay
    # WHEN a path without a route is asked for, with a token and without
    for headers in ({}, {"Authorization": "Bearer anything"}):
        nope = api.get("/nope", headers=headers)
        # THEN API Gateway's answer is the 404 in our shape, with its request id
        assert (nope.status, nope.body["error"]["code"]) == (404, "not_found"), nope
        assert nope.body["error"]["request_id"]


def test_the_deploy_ran_the_migrations_and_made_the_accounts(stack):
    # THEN the custom resource ran the migrate function: the schema is at this code's version
    assert stack.outputs["SchemaVersion"] == str(latest_version(load_migrations()))
    assert count("SELECT MAX(version) FROM schema_migrations") == latest_version(load_migrations())
    # AND the accounts exist with their connection caps and TLS required
    with database() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT user, max_user_connections, ssl_type FROM mysql.user WHERE user IN (%s, %s, %s)",
            tuple(f"{SETTINGS.mysql.database}_{role}" for role in ("api", "writer", "maintainer")),
        )
        accounts = {row[0]: (int(row[1]), row[2]) for row in cur.fetchall()}
    assert accounts == {
        f"{SETTINGS.mysql.database}_api": (SETTINGS.api_read_slots, "ANY"),
        f"{SETTINGS.mysql.database}_writer": (SETTINGS.consumer_max_concurrency, "ANY"),
        f"{SETTINGS.mysql.database}_maintainer": (MAINTAINER_CONNECTIONS, "ANY"),
    }


def test_the_scheduled_maintenance_keeps_the_log_partitions_with_its_own_account(stack):
    # GIVEN the stack's hourly maintenance function (its schedule is EventBridge's; here it is invoked)
    # WHEN it runs THEN it creates today's partition and the days ahead, over TLS, as the maintainer
    # (the clock may pass UTC midnight meanwhile: the day it started or ended on counts)
    started_on = datetime.now(UTC).date()
    answer = emulator(stack, "lambda").invoke(
        FunctionName=stack.outputs["MaintainFunctionName"], Payload=json.dumps(scheduled_event()).encode()
    )
    result = json.loads(answer["Payload"].read())
    ended_on = datetime.now(UTC).date()
    assert "FunctionError" not in answer, result
    with database() as conn:
        names = [p.name for p in read_partitions(conn)]
    ahead = timedelta(SETTINGS.log_partitions_ahead_days)
    assert any(day_name(day) in names and day_name(day + ahead) in names for day in {started_on, ended_on}), names
    assert names[-1] == FUTURE


def test_an_entry_is_stored_exactly_once(api, stack):
    check_an_entry_is_stored_exactly_once(api, stack)


@pytest.mark.filterwarnings(DEPRECATED_HANDLER)
def test_opentelemetry_exporters_through_the_stacks_api_gateway(api, stack):
    check_otel_exports_are_stored_once(
        api,
        stored=lambda source: count("SELECT COUNT(*) FROM logs WHERE source = %s", (source,)),
        queue_empty=lambda: queue_depth(emulator(stack, "sqs"), stack.outputs["LogQueueUrl"]) == 0,
    )


def test_a_read_is_cached_and_writes_need_the_stacks_admin_token(api, stack):
    token = admin_token(stack.stage, stack.target)
    assert api.put("/items/lamp", {"name": "Lamp"}, headers={"Authorization": "Bearer wrong"}).status == 403
    created = api.put("/items/lamp", {"name": "Lamp"}, headers={"Authorization": f"Bearer {token}"})
    assert created.status == 201
    assert api.get("/items/lamp").headers["x-cache"] == "miss"
    hit = api.get("/items/lamp")
    assert (hit.status, hit.headers["x-cache"], hit.body["name"]) == (200, "hit", "Lamp")


def test_an_entry_the_consumer_cannot_store_ends_in_the_dead_letter_queue(api, stack):
    # GIVEN a consumer whose inserts wait on a lock until they time out: every delivery fails, and
    # the consumer gives the message back with a short delay (sqs:ChangeMessageVisibility)
    with logs_locked():
        log_id = api.post("/logs", ENTRY).body["id"]
        # WHEN the event source mapping keeps delivering it
        # THEN after maxReceiveCount receives SQS moves it, unchanged, to the stack's dead-letter queue
        # the queues' policies let only the operator read dead letters
        sqs = operator_client(stack.target, stack.parameters["RedriveRoleArn"], "sqs")
        dead = wait_for(
            lambda: sqs.receive_message(
                QueueUrl=stack.outputs["LogDeadLetterQueueUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages"),
            timeout_s=SETTINGS.queue_visibility_timeout_s * (SETTINGS.queue_max_receive_count + 3),
        )
    assert [json.loads(m["Body"])["logs"][0]["id"] for m in dead] == [log_id]
    assert count("SELECT COUNT(*) FROM logs") == 0
