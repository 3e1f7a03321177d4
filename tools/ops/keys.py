"""`make key`: make, list and revoke API keys, as the admin routes do.

    python -m tools.ops.keys create --stage local --name web-1 --sources 'web-1,billing.*'
                                [--scopes logs:write,logs:read] [--rate 100] [--burst 2048]
    python -m tools.ops.keys list --stage local
    python -m tools.ops.keys revoke --stage local key_0123456789abcdef
    python -m tools.ops.keys create --stage prod --target aws [--stack-name sluice-prod] --name ... --sources ...

A local stage is served by this process itself (the app's KeyService, on the local MariaDB and
Redis: nothing else needs to run). A packaged stack goes through its API with its admin token:
`--target localstack|ministack` for a stack `make deploy-stack` made; `--target aws` for a stack on
AWS, with your usual credentials (it finds the stack's EndpointURL and AdminTokenSecretArn outputs
with CloudFormation, then reads the token from Secrets Manager; `--url` calls another URL of the
same API, a custom domain say); or `--url <EndpointURL>` alone with the token in ADMIN_TOKEN. A new
key's token is printed once; store it then.
"""

import argparse
import json
import os
import sys
from typing import Any

from tools.aws import aws_client
from tools.deploy.stack import RECORDS, admin_token, stack_name, targets
from tools.devstack.bootstrap import bootstrap_mysql
from tools.ops import deployed
from tools.stage import apply_stage_environment, is_packaged, stage_environment, stage_settings


def local_service(stage: str) -> Any:
    """The app's KeyService for a local stage, in this process (its schema brought up to date first)."""
    bootstrap_mysql(stage_settings(stage), stage_environment(stage).get("DEV_API_KEY"))
    apply_stage_environment(stage)
    from chalicelib import wiring

    return wiring.get_keys()


def call_api(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    """One call to a stack's /keys routes with its admin token; SystemExit on an error answer."""
    status, answer = deployed.api_request(url, token, method, path, body)
    if status >= 400:
        raise SystemExit(f"{method} {path}: {status} {json.dumps(answer)}")
    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["create", "list", "revoke"])
    parser.add_argument("key_id", nargs="?", help="for revoke")
    parser.add_argument("--stage", default="local")
    parser.add_argument(
        "--target", choices=[*sorted(targets()), "aws"], help="a packaged stack deployed on this machine, or on AWS"
    )
    parser.add_argument("--stack-name", help="--target aws: the stack (default: sluice-<stage>)")
    parser.add_argument("--url", help="a stack's API URL (its token in ADMIN_TOKEN, or the stack's with --target aws)")
    parser.add_argument("--name")
    parser.add_argument(
        "--sources", help="comma-separated names or prefixes ending in *; '*' for every source (required)"
    )
    parser.add_argument("--scopes", help="comma-separated: logs:write, logs:read (default: logs:write)")
    parser.add_argument("--rate", type=int, help="entries per second (default: KEY_DEFAULT_RATE_PER_S)")
    parser.add_argument("--burst", type=int, help="entries at once (default: KEY_DEFAULT_BURST)")
    args = parser.parse_args(argv)
    body: dict[str, Any] = {"name": args.name}
    for field, value in (("sources", args.sources), ("scopes", args.scopes)):
        if value:
            body[field] = [v.strip() for v in value.split(",") if v.strip()]
    for field, number in (("rate_per_s", args.rate), ("burst", args.burst)):
        if number is not None:
            body[field] = number
    if args.action == "create" and not (args.name and body.get("sources")):
        parser.error("create needs --name and --sources ('*' for every source)")
    if args.action == "revoke" and not args.key_id:
        parser.error("revoke needs the key's id")
    if args.target == "aws" and not is_packaged(args.stage):
        parser.error(f"--target aws needs a stage deployed as a stack (--stage prod, say), not {args.stage}")

    if not is_packaged(args.stage) and not args.url:
        service = local_service(args.stage)
        result = (
            service.create(body)
            if args.action == "create"
            else service.list()
            if args.action == "list"
            else service.revoke(str(args.key_id))
        )
    else:
        if args.target == "aws":
            name = args.stack_name or stack_name(args.stage)
            url, token = deployed.aws_stack_api(
                aws_client("cloudformation"), aws_client("secretsmanager"), name, args.url
            )
        elif args.url:
            url, token = args.url, os.environ.get("ADMIN_TOKEN", "")
            if not token:
                raise SystemExit("--url needs the stack's admin token in ADMIN_TOKEN")
        else:
            target = args.target or "localstack"
            url = json.loads((RECORDS / f"{target}-{args.stage}.json").read_text())["api_url"]
            token = admin_token(args.stage, target)
        if args.action == "create":
            result = call_api(url, token, "POST", "/keys", body)
        elif args.action == "list":
            result = call_api(url, token, "GET", "/keys")
        else:
            result = call_api(url, token, "DELETE", f"/keys/{args.key_id}")
    if args.action == "create":
        print(f"key {result['id']} ({result['name']}): {result['key']}\n  (its token is shown only now)")
    elif args.action == "list":
        print(json.dumps(result, indent=2))
    else:
        print(f"revoked {args.key_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
