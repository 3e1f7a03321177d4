"""`make smoke`: after a deploy, prove the stack works end to end, or fail the deploy.

    python -m tools.deploy.smoke --stage prod --target aws [--stack-name sluice-prod] [--url URL]
    python -m tools.deploy.smoke --stage stack --target localstack|ministack

1. `GET /health/dependencies` with the stack's admin token: MySQL, Redis and the queue answer
   (a wrong host, security group or secret fails here, not at a user's first request);
2. a key for the source `sluice-smoke` only (`POST /keys`), one entry written with it
   (`POST /logs`), then read back (`GET /logs/{id}`) once the consumer stored it: the queue, the
   consumer's event source and the writer's account work;
3. the key is revoked, whatever happened. The entry stays (source `sluice-smoke`), as any entry.
"""

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime

from tools.aws import aws_client
from tools.ops.deployed import api_request, aws_stack_api

SMOKE_SOURCE = "sluice-smoke"
STORED_DEADLINE_S = 120.0  # for the entry to be stored: the consumer's batch window, a cold start and retries
POLL_INTERVAL_S = 1.0


class SmokeFailed(SystemExit):
    """The deployed stack failed a smoke step."""


def smoke(api_url: str, admin_token: str, deadline_s: float = STORED_DEADLINE_S) -> list[str]:
    """Run the steps against the API; return what each showed. SmokeFailed names the failed step."""
    shown = []
    status, body = api_request(api_url, admin_token, "GET", "/health/dependencies")
    if status != 200:
        raise SmokeFailed(f"smoke: GET /health/dependencies answered {status}: {json.dumps(body)}")
    shown.append(f"dependencies: {', '.join(f'{k} {v}' for k, v in body['checks'].items())}")
    name = f"sluice smoke {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    key = {"name": name, "scopes": ["logs:write", "logs:read"], "sources": [SMOKE_SOURCE]}
    status, made = api_request(api_url, admin_token, "POST", "/keys", key)
    if status != 201:
        raise SmokeFailed(f"smoke: POST /keys answered {status}: {json.dumps(made)}")
    try:
        shown.append(write_then_read(api_url, str(made["key"]), deadline_s))
    finally:
        status, body = api_request(api_url, admin_token, "DELETE", f"/keys/{made['id']}")
        unrevoked = f"smoke: revoking the smoke key {made['id']} answered {status}: {json.dumps(body)}"
        if status != 204 and sys.exc_info()[0] is None:
            raise SmokeFailed(unrevoked)
        if status != 204:  # the step's own failure goes on; this one is said beside it
            print(unrevoked, file=sys.stderr)
    shown.append(f"smoke key {made['id']} revoked")
    return shown


def write_then_read(api_url: str, key: str, deadline_s: float) -> str:
    """One entry written with `key`, then read back once stored."""
    entry = {"level": "info", "source": SMOKE_SOURCE, "message": "smoke test after deploy", "id": str(uuid.uuid4())}
    started = time.monotonic()
    status, body = api_request(api_url, key, "POST", "/logs", entry)
    if status != 202:
        raise SmokeFailed(f"smoke: POST /logs answered {status}: {json.dumps(body)}")
    while True:
        status, body = api_request(api_url, key, "GET", f"/logs/{entry['id']}")
        if status == 200 and body.get("message") == entry["message"]:
            return f"an entry written and read back, stored in {time.monotonic() - started:.1f}s"
        if status != 404:
            raise SmokeFailed(f"smoke: GET /logs/{entry['id']} answered {status}: {json.dumps(body)}")
        if time.monotonic() - started > deadline_s:
            raise SmokeFailed(
                f"smoke: the entry {entry['id']} was not stored within {deadline_s:.0f}s:"
                " see the consumer's log group and `make status`"
            )
        time.sleep(POLL_INTERVAL_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--target", choices=["localstack", "ministack", "aws"], default="aws")
    parser.add_argument("--stack-name", help="default: sluice-<stage>")
    parser.add_argument("--url", help="the API's URL, if not the stack's EndpointURL output (a custom domain)")
    args = parser.parse_args(argv)
    if args.target == "aws":
        name = args.stack_name or f"sluice-{args.stage}"
        url, token = aws_stack_api(aws_client("cloudformation"), aws_client("secretsmanager"), name, args.url)
    else:
        from tools.deploy.stack import RECORDS, admin_token

        url = args.url or json.loads((RECORDS / f"{args.target}-{args.stage}.json").read_text())["api_url"]
        token = admin_token(args.stage, args.target)
    for line in smoke(url, token):
        print(f"smoke: {line}")
    print(f"smoke ({args.stage}, {args.target}): passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
