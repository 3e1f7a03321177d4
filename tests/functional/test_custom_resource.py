"""The migrate function's side of the CloudFormation custom resource protocol: the outcome is PUT
to the request's pre-signed URL (here a real HTTP server on 127.0.0.1), whatever happens."""

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from chalicelib.database import custom_resource
from chalicelib.errors import MigrationError


class Receiver(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[dict[str, str], dict[str, Any]]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.answers.append((dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def response_url() -> Iterator[str]:
    Receiver.answers = []
    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/presigned?X-Amz-Signature=abc"
    server.shutdown()


def request(url: str, request_type: str, physical_id: str | None = None) -> dict[str, Any]:
    event = {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/s/1",
        "RequestId": "r-1",
        "LogicalResourceId": "DatabaseMigration",
        "ResourceProperties": {"ServiceToken": "arn:f", "Revision": "abc"},
    }
    if physical_id:
        event["PhysicalResourceId"] = physical_id
    return event


def test_a_create_that_works_reports_success_with_its_data(response_url):
    event = request(response_url, "Create")
    assert custom_resource.is_request(event) and not custom_resource.is_request({})
    custom_resource.handle(event, "db-schema", lambda: {"schema_version": 1, "applied": [1]})
    headers, answer = Receiver.answers[0]
    assert headers["Content-Type"] == ""  # what the pre-signed URL was signed for
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == "db-schema"
    assert answer["Data"] == {"schema_version": "1", "applied": "[1]"}
    assert (answer["StackId"], answer["RequestId"], answer["LogicalResourceId"]) == (
        event["StackId"],
        "r-1",
        "DatabaseMigration",
    )


def test_a_failure_is_reported_with_its_reason_instead_of_leaving_cloudformation_waiting(response_url):
    def fail() -> dict[str, Any]:
        raise MigrationError("migration 0002_x changed after it ran")

    custom_resource.handle(request(response_url, "Update", "db-schema"), "db-schema", fail)
    _, answer = Receiver.answers[0]
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == "MigrationError: migration 0002_x changed after it ran"
    assert answer["PhysicalResourceId"] == "db-schema"


def test_a_delete_changes_nothing(response_url):
    ran: list[bool] = []

    def run() -> dict[str, Any]:
        ran.append(True)
        return {}

    custom_resource.handle(request(response_url, "Delete", "db-schema"), "db-schema", run)
    assert ran == []
    assert Receiver.answers[0][1]["Status"] == "SUCCESS"


def test_work_past_the_functions_time_is_answered_as_a_failure_before_it_ends(response_url):
    # GIVEN a migration that does not finish (it waits for the test), and a function with half a
    # second left once the time to answer is kept
    release = threading.Event()

    def slow() -> dict[str, Any]:
        release.wait(60)
        return {"schema_version": 1}

    remaining_ms = (custom_resource.ANSWER_MARGIN_S + 0.5) * 1000
    try:
        # WHEN the request is handled
        answer = custom_resource.handle(request(response_url, "Create"), "db-schema", slow, lambda: int(remaining_ms))
    finally:
        release.set()
    # THEN CloudFormation got a failure saying why and what to do, while the work was still running
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("DeadlineExceededError: not finished within")
    assert "retry the deploy" in answer["Reason"]
    assert [a["Status"] for _, a in Receiver.answers] == ["FAILED"]


def test_an_answer_that_cannot_be_sent_is_logged_not_raised(caplog):
    # GIVEN a response URL nothing listens on (a function in subnets without a way to S3)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    event = request(f"http://127.0.0.1:{port}/presigned", "Create")
    # WHEN the request is handled THEN it returns (Lambda would run a raised request again) and says why
    answer = custom_resource.handle(event, "db-schema", lambda: {"schema_version": 1}, lambda: 60_000)
    assert answer["Status"] == "SUCCESS"
    assert "can the function reach S3" in caplog.text
    assert custom_resource.FAILURE_MARKER in caplog.text  # what the stack's migration alarm counts


def test_a_failure_logs_the_marker_the_migration_alarm_counts(response_url, caplog):
    # GIVEN a migration that fails WHEN it is handled
    def fail() -> dict[str, Any]:
        raise MigrationError("no")

    custom_resource.handle(request(response_url, "Create"), "db-schema", fail)
    # THEN the log carries the marker the stack's metric filter matches (deploy/stack.yaml renders it)
    assert custom_resource.FAILURE_MARKER in caplog.text


OWN = {"Revision": "new", "MySQLHost": "db.example", "MySQLPort": "3306", "MySQLAdminSecretArn": "arn:admin"}


def update(url: str, properties: dict[str, str], old: dict[str, str]) -> dict[str, Any]:
    event = request(url, "Update", "db-schema")
    event["ResourceProperties"] = {"ServiceToken": "arn:f", **properties}
    event["OldResourceProperties"] = {"ServiceToken": "arn:f", **old}
    return event


def test_a_rollbacks_update_reaching_the_new_code_succeeds_without_migrating(response_url):
    # GIVEN a failed update's rollback: CloudFormation sends the old properties (an old revision and
    # database) to a function that already runs the new code, whose migration fails again
    ran: list[bool] = []

    def fail() -> dict[str, Any]:
        ran.append(True)
        raise MigrationError("would fail again, and the rollback with it")

    old = {**OWN, "Revision": "old", "MySQLHost": "old-db.example"}
    # WHEN it is handled
    answer = custom_resource.handle(update(response_url, old, OWN), "db-schema", fail, None, lambda: OWN)
    # THEN nothing ran and CloudFormation was told it succeeded, so the rollback completes
    assert ran == []
    assert answer["Status"] == "SUCCESS"
    assert answer["Data"] == {"schema_version": custom_resource.ROLLED_BACK}
    assert [a["Status"] for _, a in Receiver.answers] == ["SUCCESS"]


def test_an_update_for_this_function_migrates(response_url):
    # GIVEN an Update whose properties are the function's own (a forward deploy) WHEN handled
    old = {**OWN, "Revision": "old"}
    answer = custom_resource.handle(
        update(response_url, OWN, old), "db-schema", lambda: {"schema_version": 7}, None, lambda: OWN
    )
    # THEN the migration runs
    assert answer["Status"] == "SUCCESS" and answer["Data"] == {"schema_version": "7"}


def test_an_update_for_another_database_than_the_functions_is_refused(response_url):
    # GIVEN an Update for a database the function is not configured for, and neither was the last
    ran: list[bool] = []

    def work() -> dict[str, Any]:
        ran.append(True)
        return {}

    other = {**OWN, "MySQLHost": "elsewhere.example"}
    # WHEN handled
    answer = custom_resource.handle(update(response_url, other, other), "db-schema", work, None, lambda: OWN)
    # THEN nothing ran, and CloudFormation is told why, naming the property
    assert ran == []
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("ForeignRequestError: this Update is for MySQLHost elsewhere.example")


def test_a_create_migrates_whatever_its_properties(response_url):
    # GIVEN a Create (a new stack, or a replacement) whose properties are not the function's own
    answer = custom_resource.handle(
        request(response_url, "Create"), "db-schema", lambda: {"schema_version": 7}, None, lambda: OWN
    )
    # THEN it migrates: only an Update can come from a rollback
    assert answer["Status"] == "SUCCESS" and answer["Data"] == {"schema_version": "7"}
