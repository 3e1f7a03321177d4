"""The consumer as LocalStack runs it: invoked by the SQS event source mapping, logging to CloudWatch."""

import json
import time
import uuid
from typing import Any

import pytest

from tests.integration.conftest import SETTINGS, STAGE, aws, rows
from tests.support.waiting import wait_for
from tools.devstack.local_schedule import scheduled_event
from tools.stage import stage_secrets

pytestmark = pytest.mark.usefixtures("clean_state")

ENTRY = {"level": "warning", "source": "worker", "message": "slow query"}


def full_record(**changes):
    return {
        **ENTRY,
        "id": str(uuid.uuid4()),
        "timestamp": "2026-01-01T00:00:00Z",
        "attributes": {},
        "received_at": "2026-01-01T00:00:01Z",
        "key_id": "key_0123456789abcdef",
        **changes,
    }


def queue_empty(sqs, url) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return bool(attributes["ApproximateNumberOfMessages"] == "0" == attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_poison_message_beside_good_ones_is_set_aside_and_the_good_ones_stored(api, sqs, queue_urls, admin_db):
    # GIVEN in the queue: a good message, a body that is not ours, and a message with a bad entry among good ones
    good = full_record()
    mixed_good = full_record()
    sqs.send_message_batch(
        QueueUrl=queue_urls["queue"],
        Entries=[
            {"Id": "good", "MessageBody": json.dumps({"logs": [good]})},
            {"Id": "poison", "MessageBody": "<html>not a log</html>"},
            {"Id": "mixed", "MessageBody": json.dumps({"logs": [{"id": str(uuid.uuid4())}, mixed_good]})},
        ],
    )
    # WHEN the event source mapping delivers them
    wait_for(lambda: len(rows(admin_db, "SELECT message_id FROM log_rejects")) == 2, timeout_s=60)
    # THEN the good entries are stored, the bad ones set aside with reasons, and nothing is redelivered or dead-lettered
    assert {r[0] for r in rows(admin_db, "SELECT id FROM logs")} == {good["id"], mixed_good["id"]}
    reasons = dict(rows(admin_db, "SELECT entry_index, reason FROM log_rejects"))
    assert "not JSON" in reasons[-1]
    assert "level" in reasons[0]
    wait_for(lambda: queue_empty(sqs, queue_urls["queue"]), timeout_s=30)
    assert queue_empty(sqs, queue_urls["dlq"])


@pytest.fixture
def writer_locked(admin_db):
    """The writer's MySQL account locked: every consumer invocation fails to connect (a real MySQL failure)."""
    user = stage_secrets(STAGE).credentials("mysql_writer").username
    with admin_db.cursor() as cur:
        cur.execute("ALTER USER %s@'%%' ACCOUNT LOCK", (user,))
    yield
    with admin_db.cursor() as cur:
        cur.execute("ALTER USER %s@'%%' ACCOUNT UNLOCK", (user,))


def test_a_failing_consumer_is_redelivered_then_the_message_goes_to_the_dlq(
    keyed_api, deployment, sqs, queue_urls, admin_db, writer_locked
):
    api = keyed_api
    # GIVEN a consumer that cannot reach MySQL
    log_id = api.post("/logs", ENTRY).body["id"]
    started = time.monotonic()
    # WHEN the event source mapping keeps delivering the message
    # THEN after maxReceiveCount failed deliveries SQS moves it, unchanged, to the dead-letter queue
    dead = wait_for(
        lambda: sqs.receive_message(
            QueueUrl=queue_urls["dlq"], MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
        ).get("Messages"),
        timeout_s=SETTINGS.queue_visibility_timeout_s * (SETTINGS.queue_max_receive_count + 2),
    )
    assert [json.loads(m["Body"])["logs"][0]["id"] for m in dead] == [log_id]
    assert int(dead[0]["Attributes"]["ApproximateReceiveCount"]) >= SETTINGS.queue_max_receive_count
    assert rows(admin_db, "SELECT COUNT(*) FROM logs") == [(0,)]
    print(f"dead-lettered after {time.monotonic() - started:.1f}s")
    # AND each failure is in the consumer's CloudWatch logs
    logs = aws("logs")
    group = f"/aws/lambda/{deployment.consumer_function}"
    events = logs.filter_log_events(logGroupName=group)["events"]
    failures = [e for e in events if "DatabaseError" in e["message"]]  # MySQL refused the locked account
    assert len(failures) >= SETTINGS.queue_max_receive_count


def api_gateway_event(path: str, item_id: str, request_id: str) -> dict[str, Any]:
    """GET /items/{item_id} as API Gateway's proxy integration hands it to the API function."""
    context = {"resourcePath": "/items/{item_id}", "httpMethod": "GET", "path": path, "stage": "api"}
    return {
        "resource": "/items/{item_id}",
        "path": path,
        "httpMethod": "GET",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"item_id": item_id},
        "stageVariables": None,
        "requestContext": {**context, "requestId": request_id, "identity": {"sourceIp": "127.0.0.1"}},
        "body": None,
        "isBase64Encoded": False,
    }


def test_the_functions_logs_reach_cloudwatch_logs(deployment):
    # GIVEN a request only this test makes: an unknown item, with a marker as API Gateway's request id
    marker = f"marker-{uuid.uuid4()}"
    event = api_gateway_event(f"/items/{marker}", marker, marker)
    # WHEN the API function handles it
    answer = aws("lambda").invoke(FunctionName=deployment.api_function, Payload=json.dumps(event).encode())
    response = json.loads(answer["Payload"].read())
    assert response["statusCode"] == 404, response
    assert json.loads(response["body"])["error"]["request_id"] == marker  # it was our request
    invocation = answer["ResponseMetadata"]["RequestId"]  # Lambda's id of that invocation
    # THEN that invocation's own log lines are in its log group: the runtime's START/END/REPORT lines
    logs = aws("logs")
    group = f"/aws/lambda/{deployment.api_function}"

    def messages() -> list[str]:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
        return [e["message"] for page in pages for e in page["events"]]

    wait_for(lambda: any(m.startswith(f"REPORT RequestId: {invocation}") for m in messages()), timeout_s=30)
    lines = messages()
    assert any(m.startswith(f"START RequestId: {invocation}") for m in lines)
    assert any(m.startswith(f"END RequestId: {invocation}") for m in lines)


def test_partition_maintenance_is_an_hourly_eventbridge_rule_that_runs_the_function(deployment):
    # GIVEN the deployment's schedule, as chalice deploy made it in LocalStack's EventBridge
    events = aws("events")
    rules = [r for r in events.list_rules()["Rules"] if r.get("ScheduleExpression") == "rate(1 hour)"]
    targets = [t["Arn"] for rule in rules for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]]
    function = next(arn for arn in targets if arn.endswith(f"sluice-{STAGE}-maintain_partitions"))
    # WHEN its target is invoked with a scheduled event THEN it maintains the partitions
    answer = aws("lambda").invoke(FunctionName=function, Payload=json.dumps(scheduled_event()).encode())
    result = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, result
    assert set(result) == {"created", "dropped", "ids_forgotten"}
