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
from tests.support.waiting import wait_for
from tools.procs import parent_pid, running


def invoke(lambda_client, name: str, event: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail")
    payload = json.loads(response["Payload"].read())
    return {**response, "Payload": payload}, base64.b64decode(response.get("LogResult", "")).decode()


def update_configuration(lambda_client, name: str, **changes: Any) -> None:
    """Change the function's configuration and wait until the new version serves."""
    lambda_client.update_function_configuration(FunctionName=name, **changes)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name)


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
    # GIVEN a function with a 10 s timeout: room for a new environment's init before the next
    # invocation, however slow the machine (a 1 s timeout had to fit it)
    name = make_function("probe.sleep", timeout=10)
    # WHEN an invocation runs far past it THEN it is reported as a timeout
    response, logs = invoke(lambda_client, name, {"seconds": 120})
    assert response["FunctionError"] == "Unhandled"
    assert response["Payload"]["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 10.00 seconds" in response["Payload"]["errorMessage"]
    assert "Task timed out after 10.00 seconds" in logs
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
    # AND all three are forks of the function's one template
    templates = {parent_pid(pid) for pid in pids}
    assert len(templates) == 1
    # WHEN the function is deleted THEN its environments' processes end, and its template
    lambda_client.delete_function(FunctionName=name)
    wait_for(lambda: not any(pid_alive(pid) for pid in pids | templates), timeout_s=15)


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


# --- Environments forked from a template (localstack/host_executor/sluice_host_executor/runtime.py)


def test_environments_forked_from_one_init_share_none_of_their_state(lambda_client, make_function, tmp_path):
    # GIVEN a function whose init prints a line and sets module state
    name = make_function("probe.state", timeout=30)
    # WHEN two invocations are in it at the same time (each waits in the handler until both are
    # there, so in two environments; no sleeps that have to overlap)
    answers: list[tuple[dict[str, Any], str]] = []
    meet = {"dir": str(tmp_path / "arrived"), "count": 2, "timeout_s": 25}

    def run() -> None:
        response, logs = invoke(lambda_client, name, {"meet": meet})
        answers.append((response["Payload"], logs))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (first, first_logs), (second, second_logs) = answers
    assert first["met"] and second["met"]
    # THEN they ran in two processes that both started from the one init ...
    assert first["pid"] != second["pid"]
    assert first["init_id"] == second["init_id"]
    # ... whose output starts each environment's first logs, as each environment's own init would
    assert "probe: module imported" in first_logs
    assert "probe: module imported" in second_logs
    # AND neither saw the other's change of module state, nor its random numbers
    assert first["calls"] == second["calls"] == 1
    assert first["random"] != second["random"]
    # AND nothing the template had open reached them: stdin, the output pipe (stdout, stderr),
    # and the two pipes of invocations and results; no socket, no other thread
    for answer in (first, second):
        assert sorted(answer["descriptors"].values()) == ["other", "pipe", "pipe", "pipe", "pipe"]
        assert answer["threads"] == answer["tasks"] == 1
    # WHEN invoked again THEN a warm environment runs it: its own state goes on, no init output
    again, again_logs = invoke(lambda_client, name, {})
    assert again["Payload"]["pid"] in {first["pid"], second["pid"]}
    assert again["Payload"]["calls"] == 2
    assert "probe: module imported" not in again_logs


def test_a_timeout_or_a_crash_starts_the_environment_again_from_init(lambda_client, make_function):
    # GIVEN a warm environment that has changed its module state (a 10 s timeout: room for each new
    # environment's init, however slow the machine)
    name = make_function("probe.state", timeout=10)
    invoke(lambda_client, name)
    warm = invoke(lambda_client, name)[0]["Payload"]
    assert warm["calls"] == 2
    # WHEN an invocation runs past the timeout THEN the next starts from init's state, in a new process
    assert invoke(lambda_client, name, {"seconds": 120})[0]["Payload"]["errorType"] == "Sandbox.Timedout"
    after_timeout, logs = invoke(lambda_client, name)
    assert after_timeout["Payload"]["calls"] == 1
    assert after_timeout["Payload"]["pid"] != warm["pid"]
    assert "probe: module imported" in logs
    # WHEN the process exits mid-invocation THEN the same
    crashed = invoke(lambda_client, name, {"crash": True})[0]["Payload"]
    assert crashed["errorType"] == "Runtime.ExitError"
    assert "exit status 5" in crashed["errorMessage"]
    after_crash = invoke(lambda_client, name)[0]["Payload"]
    assert after_crash["calls"] == 1
    assert after_crash["pid"] != after_timeout["Payload"]["pid"]


def test_only_what_init_can_see_starts_a_new_init(lambda_client, make_function):
    # GIVEN a warm function
    name = make_function("probe.state", environment={"GREETING": "hello"})
    before = invoke(lambda_client, name)[0]["Payload"]
    # WHEN a setting init cannot see changes (the description) THEN a new environment runs the
    # next invocation, forked from the same init
    update_configuration(lambda_client, name, Description="a new description")
    same_init = invoke(lambda_client, name)[0]["Payload"]
    assert same_init["pid"] != before["pid"]
    assert (same_init["init_id"], same_init["calls"]) == (before["init_id"], 1)
    # WHEN its environment variables change THEN init runs again, with them
    update_configuration(lambda_client, name, Environment={"Variables": {"GREETING": "bonjour"}})
    new_init = invoke(lambda_client, name)[0]["Payload"]
    assert new_init["init_id"] != before["init_id"]


def test_an_init_that_leaves_a_socket_open_runs_in_every_environment(lambda_client, make_function):
    # GIVEN a function whose init opens a socket (a fork would share it between environments)
    name = make_function("probe_socket.handler")
    first, first_logs = invoke(lambda_client, name)
    # WHEN a second environment starts
    update_configuration(lambda_client, name, Description="a second environment")
    second, second_logs = invoke(lambda_client, name)
    # THEN each ran init itself: its own socket, its own init output
    assert first["Payload"]["pid"] != second["Payload"]["pid"]
    assert first["Payload"]["inode"] != second["Payload"]["inode"]
    assert "probe_socket: module imported" in first_logs
    assert "probe_socket: module imported" in second_logs


def test_an_environment_whose_template_died_initialises_from_a_new_one(lambda_client, make_function):
    # GIVEN a warm environment, and its template killed from outside
    name = make_function("probe.state", timeout=30)
    first = invoke(lambda_client, name)[0]["Payload"]
    template = parent_pid(first["pid"])
    os.kill(template, signal.SIGKILL)
    wait_for(lambda: not running(template), timeout_s=15)
    # WHEN the environment's process then dies
    assert invoke(lambda_client, name, {"crash": True})[0]["Payload"]["errorType"] == "Runtime.ExitError"
    # THEN the next invocation runs init's state in a fork of a new template
    after = invoke(lambda_client, name)[0]["Payload"]
    assert after["calls"] == 1
    assert parent_pid(after["pid"]) not in (template, 1)
