"""The CloudFormation custom resource protocol, for a function that runs during a deploy.

CloudFormation invokes the function with a Create, Update or Delete request and waits until
the function PUTs the outcome to the request's pre-signed `ResponseURL`. A failure makes the
deploy fail (and roll back) with the error's message as the reason, so a deploy whose database,
secret or CA bundle is wrong stops there instead of leaving a stack that cannot store entries.
"""

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

RESPONSE_TIMEOUT_S = 10
_REASON_MAX_CHARS = 3000  # CloudFormation keeps about 4 KB of the whole response


def is_request(event: Any) -> bool:
    """Whether the event is a CloudFormation custom resource request."""
    return isinstance(event, Mapping) and "RequestType" in event and "ResponseURL" in event


def handle(
    event: Mapping[str, Any], physical_id: str, on_create_or_update: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run `on_create_or_update` for Create and Update (Delete does nothing: data outlives the
    stack) and report the outcome to CloudFormation. Returns what was reported."""
    try:
        data = {} if event["RequestType"] == "Delete" else on_create_or_update()
        response = _response(event, physical_id, "SUCCESS", "", data)
    except Exception as exc:  # every failure must reach CloudFormation, or it waits for an hour
        logger.exception("custom resource %s failed", event.get("LogicalResourceId"))
        reason = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
        response = _response(event, physical_id, "FAILED", reason[:_REASON_MAX_CHARS], {})
    _send(str(event["ResponseURL"]), response)
    return response


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
