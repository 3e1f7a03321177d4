"""`make key`: make, list and revoke API keys, as the admin routes do.

    python -m tools.ops.keys create --stage local --name web-1 --sources 'web-1,billing.*'
                                [--scopes logs:write,logs:read] [--rate 100] [--burst 2048]
    python -m tools.ops.keys list --stage local
    python -m tools.ops.keys revoke --stage local key_0123456789abcdef

A local stage is served by this process itself (the app's KeyService, on the local MariaDB and
Redis: nothing else needs to run). A packaged stack goes through its API with its admin token:
`--target localstack|ministack` for a stack `make deploy-stack` made, or `--url <EndpointURL>`
with the token in ADMIN_TOKEN (AWS). A new key's token is printed once; store it then.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from tools.deploy.stack import RECORDS, admin_token, targets
from tools.devstack.bootstrap import bootstrap_mysql
from tools.stage import apply_stage_environment, is_packaged, stage_environment, stage_settings


def local_service(stage: str) -> Any:
    """The app's KeyService for a local stage, in this process (its schema brought up to date first)."""
    bootstrap_mysql(stage_settings(stage), stage_environment(stage).get("DEV_API_KEY"))
    apply_stage_environment(stage)
    from chalicelib import wiring

    return wiring.get_keys()


def call_api(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    """One call to a stack's /keys routes with its admin token."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{method} {path}: {error.code} {error.read().decode(errors='replace')}") from None
    return json.loads(raw) if raw else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["create", "list", "revoke"])
    parser.add_argument("key_id", nargs="?", help="for revoke")
    parser.add_argument("--stage", default="local")
    parser.add_argument("--target", choices=sorted(targets()), help="a packaged stack deployed on this machine")
    parser.add_argument("--url", help="a stack's API URL (its token in ADMIN_TOKEN)")
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
        if args.url:
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
