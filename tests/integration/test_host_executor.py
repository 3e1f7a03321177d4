"""The host-process Lambda executor (localstack/host_executor) with a probe function in LocalStack."""

import base64
import io
import json
import os
import signal
import threading
import uuid
import zipfile
from typing import Any

from faults.deployed import handler_processes
from tests.integration.conftest import aws
from tests.waiting import wait_for


def invoke(lambda_client, name: str, event: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail")
    payload = json.loads(response["Payload"].read())
    return {**response, "Payload": payload}, base64.b64decode(response.get("LogResult", "")).decode()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_an_invocation_gets_its_event_environment_and_a_lambda_context(lambda_client, make_function):
    name = make_function("probe.context_info", timeout=60, environment={"GREETING": "hello"})
    response, logs = invoke(lambda_client, name, {"n": 1})
    body = response["Payload"]
    assert "FunctionError" not in response
    assert body["event"] == {"n": 1}
    assert body["function_name"] == name
    assert body["request_id"] == response["ResponseMetadata"]["RequestId"]
    # counts down from the configured 60 s, not the default 3 (however slowly the environment started)
    assert 3000 < body["remaining_ms"] <= 60_000
    assert body["greeting"] == "hello"
    assert body["cwd"] == body["task_root"]
    # the invocation's stdout and stderr are its logs, framed by the runtime's lines
    assert f"START RequestId: {body['request_id']}" in logs
    assert "probe: invoked with {'n': 1}" in logs
    assert "probe: to stderr" in logs
    assert f"REPORT RequestId: {body['request_id']}" in logs


def test_an_exception_is_reported_in_lambdas_error_shape(lambda_client, make_function):
    name = make_function("probe.fail")
    response, logs = invoke(lambda_client, name)
    assert response["FunctionError"] == "Unhandled"
    error = response["Payload"]
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "the probe failed on purpose"
    assert any('probe.py", line' in frame and "in fail" in frame for frame in error["stackTrace"])
    assert all("runtime.py" not in frame for frame in error["stackTrace"])
    assert "[ERROR] ValueError: the probe failed on purpose" in logs


def test_an_import_error_is_the_functions_error_not_a_hang(lambda_client, make_function):
    name = make_function("missing_module.handler")
    response, _ = invoke(lambda_client, name)
    # (a hang would end in LocalStack's startup timeout, a different error)
    assert response["FunctionError"] == "Unhandled"
    assert response["Payload"]["errorType"] == "Runtime.ImportModuleError"
    assert "missing_module" in response["Payload"]["errorMessage"]


def test_a_function_that_runs_past_its_timeout_is_reported_as_a_timeout(lambda_client, make_function):
    name = make_function("probe.sleep", timeout=1)
    response, logs = invoke(lambda_client, name, {"seconds": 5})
    assert response["FunctionError"] == "Unhandled"
    assert response["Payload"]["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in response["Payload"]["errorMessage"]
    assert "Task timed out after 1.00 seconds" in logs
    # AND the environment initialises again: the next invocation runs normally
    response, _ = invoke(lambda_client, name, {"seconds": 0})
    assert response["Payload"]["slept"] == 0


def test_a_crash_and_an_unserialisable_result_are_errors(lambda_client, make_function):
    name = make_function("probe.crash")
    crashed, _ = invoke(lambda_client, name)
    assert crashed["Payload"]["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in crashed["Payload"]["errorMessage"]
    # AND the environment initialises again: the next invocations run normally, on one new worker
    # (which outlives the invocation that started it)
    pids = {invoke(lambda_client, name, {"crash": False})[0]["Payload"]["pid"] for _ in range(3)}
    assert len(pids) == 1
    marshal, _ = invoke(lambda_client, make_function("probe.not_json"))
    assert marshal["Payload"]["errorType"] == "Runtime.MarshalError"


def test_a_handler_killed_from_outside_is_a_crash_and_the_next_invocation_runs(lambda_client, make_function):
    # GIVEN an invocation in the middle of its handler
    name = make_function("probe.sleep", timeout=30)
    results: list[dict[str, Any]] = []
    slow = threading.Thread(target=lambda: results.append(invoke(lambda_client, name, {"seconds": 25})[0]))
    slow.start()
    workers = wait_for(lambda: handler_processes(name), timeout_s=30)
    # WHEN its process is SIGKILLed (as the fault suite kills a consumer mid-batch)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    slow.join(timeout=30)
    # THEN the invocation ends at once as Lambda reports a runtime that exited
    assert not slow.is_alive()
    assert results[0]["Payload"]["errorType"] == "Runtime.ExitError"
    # AND the next invocations get one new worker and run normally
    answers = [invoke(lambda_client, name, {"seconds": 0})[0]["Payload"] for _ in range(3)]
    assert [a["slept"] for a in answers] == [0, 0, 0]
    assert len({a["pid"] for a in answers}) == 1
    assert answers[0]["pid"] not in workers


def test_concurrent_invocations_get_separate_environments_that_stop_with_the_function(
    lambda_client, make_function, tmp_path
):
    # GIVEN a handler that returns only once three invocations are inside it at the same time
    name = make_function("probe.rendezvous", timeout=60)
    results: list[dict[str, Any]] = []
    event = {"dir": str(tmp_path / "arrived"), "count": 3, "timeout_s": 50}

    def run() -> None:
        results.append(invoke(lambda_client, name, event)[0]["Payload"])

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN the three met, which only three environments (processes) at once can do
    assert [r["met"] for r in results] == [True, True, True]
    pids = {r["pid"] for r in results}
    assert len(pids) == 3
    assert all(pid_alive(pid) for pid in pids)
    # WHEN the function is deleted THEN its environments' processes end
    lambda_client.delete_function(FunctionName=name)
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout_s=15)


def test_the_invocation_logs_reach_cloudwatch_logs(lambda_client, make_function):
    name = make_function("probe.context_info")
    marker = f"marker-{uuid.uuid4()}"
    invoke(lambda_client, name, {"marker": marker})
    logs = aws("logs")

    def found() -> bool:
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            return False
        return any(marker in e["message"] for e in events)

    wait_for(found, timeout_s=30)


def test_updated_code_is_what_runs_next(lambda_client, make_function):
    # GIVEN a warm function
    name = make_function("probe.context_info")
    assert "FunctionError" not in invoke(lambda_client, name)[0]
    # WHEN its code is replaced (as a redeploy does)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("probe.py", "def context_info(event, context):\n    return {'version': 2}\n")
    lambda_client.update_function_code(FunctionName=name, ZipFile=buffer.getvalue())
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name)
    # THEN the next invocation runs the new code
    assert invoke(lambda_client, name)[0]["Payload"] == {"version": 2}
