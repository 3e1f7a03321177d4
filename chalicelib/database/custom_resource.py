"""The CloudFormation custom resource protocol, for a function that runs during a deploy.

CloudFormation invokes the function with a Create, Update or Delete request and waits until
the function PUTs the outcome to the request's pre-signed `ResponseURL`. A failure makes the
deploy fail (and roll back) with the error's message as the reason, so a deploy whose database,
secret or CA bundle is wrong stops there instead of leaving a stack that cannot store entries.

The outcome is always sent, once: work that has not finished when only the time to answer is
left is reported as a failure (the work is safe to run again), and the function never raises,
so Lambda does not run an asynchronous request again. If the answer itself cannot be sent (the
function cannot reach S3), that is logged: CloudFormation then waits for the resource's
ServiceTimeout, not an hour. Both failures log FAILURE_MARKER, which the stack's alarm counts.

An Update is checked against the properties the function expects (`own`: its revision and its
database): during a failed update's rollback CloudFormation sends the old properties, and the
function may already run the new code and configuration, which would fail again and leave the
stack UPDATE_ROLLBACK_FAILED. So an Update whose old properties are the function's own (a
rollback reaching it) succeeds without work, and one where neither are is refused.
"""

import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

RESPONSE_TIMEOUT_S = 10  # the PUT of the outcome
ANSWER_MARGIN_S = RESPONSE_TIMEOUT_S + 5  # kept of the function's time for sending the outcome
_REASON_MAX_CHARS = 3000  # CloudFormation keeps about 4 KB of the whole response
FAILURE_MARKER = "CUSTOM RESOURCE FAILED"  # in the log line of every failure (the stack's metric filter)


def is_request(event: Any) -> bool:
    """Whether the event is a CloudFormation custom resource request."""
    return isinstance(event, Mapping) and "RequestType" in event and "ResponseURL" in event


def handle(
    event: Mapping[str, Any],
    physical_id: str,
    on_create_or_update: Callable[[], dict[str, Any]],
    remaining_ms: Callable[[], int] | None = None,
    own: Callable[[], Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Run `on_create_or_update` for Create and Update (Delete does nothing: data outlives the
    stack; nor does a rollback's Update, see above) within the function's time less
    ANSWER_MARGIN_S (`remaining_ms`, Lambda's context), and report the outcome to CloudFormation.
    Returns what was reported; never raises."""
    try:
        mine = own() if own is not None and event["RequestType"] == "Update" else None
        if event["RequestType"] == "Delete":
            data: dict[str, Any] = {}
        elif mine is not None and not _are(event.get("ResourceProperties", {}), mine):
            if not _are(event.get("OldResourceProperties", {}), mine):
                raise ForeignRequestError(
                    f"this Update is for {_differences(event.get('ResourceProperties', {}), mine)}, and so was the"
                    " one before it: not this function's code or database; not migrating"
                )
            logger.warning(
                "a rollback's Update (%s): answering success, not migrating",
                _differences(event.get("ResourceProperties", {}), mine),
            )
            data = {"schema_version": ROLLED_BACK}
        else:
            limit_s = None if remaining_ms is None else max(0.0, remaining_ms() / 1000 - ANSWER_MARGIN_S)
            data = _within(on_create_or_update, limit_s)
        response = _response(event, physical_id, "SUCCESS", "", data)
    except Exception as exc:  # every failure must reach CloudFormation, or it waits until its timeout
        logger.exception("%s: %s", FAILURE_MARKER, event.get("LogicalResourceId"))
        reason = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
        response = _response(event, physical_id, "FAILED", reason[:_REASON_MAX_CHARS], {})
    try:
        _send(str(event["ResponseURL"]), response)
    except Exception:  # raising would make Lambda run the request again; CloudFormation times out instead
        logger.exception(
            "%s: could not report %s to CloudFormation: can the function reach S3 (an S3 gateway endpoint or a NAT)?",
            FAILURE_MARKER,
            response["Status"],
        )
    return response


ROLLED_BACK = "unchanged by the rollback"  # the schema_version a rollback's skipped Update reports


class ForeignRequestError(Exception):
    """An Update made for other code or another database than the function's."""


def _are(properties: Mapping[str, Any], mine: Mapping[str, str]) -> bool:
    return all(str(properties.get(name, "")) == value for name, value in mine.items())


def _differences(properties: Mapping[str, Any], mine: Mapping[str, str]) -> str:
    return ", ".join(
        f"{name} {properties.get(name, '')!s} (this function: {value})"
        for name, value in mine.items()
        if str(properties.get(name, "")) != value
    )


class DeadlineExceededError(Exception):
    """The work did not finish within the time the function had for it."""


def _within(work: Callable[[], dict[str, Any]], limit_s: float | None) -> dict[str, Any]:
    """`work()`'s result, or DeadlineExceededError once `limit_s` has passed (the work then runs on
    until the function ends; it must be safe to run again, as a migration is)."""
    if limit_s is None:
        return work()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["data"] = work()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="custom-resource-work", daemon=True)
    worker.start()
    worker.join(limit_s)
    if worker.is_alive():
        raise DeadlineExceededError(
            f"not finished within {limit_s:.0f} s (the function's time less {ANSWER_MARGIN_S} s to answer);"
            " it is safe to run again: retry the deploy"
        )
    if "error" in outcome:
        raise outcome["error"]
    return dict(outcome["data"])


def _response(
    event: Mapping[str, Any], physical_id: str, status: str, reason: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "Status": status,
        "Reason": reason or status,
        "PhysicalResourceId": event.get("PhysicalResourceId") or physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": {key: str(value) for key, value in data.items()},
    }


def _send(url: str, response: dict[str, Any]) -> None:
    body = json.dumps(response).encode()
    # The pre-signed URL is signed for an empty Content-Type.
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_S) as answer:
        logger.info("reported %s to CloudFormation: HTTP %s", response["Status"], answer.status)
