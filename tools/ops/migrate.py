"""`make migrate STAGE=<stage>`: bring a stage's database to this code's schema and accounts.

    python -m tools.ops.migrate --stage local                          a local stage: as root, here
    python -m tools.ops.migrate --stage stack [--target localstack]    a deployed stack: its migrate function
    python -m tools.ops.migrate --stage prod --target aws [--stack-name sluice-prod]

Both run the same code (chalicelib.database.provision): the migrations the database has not run yet, the
API and writer accounts with their grants and connection caps, the budget checked against the
server's max_connections. A deployed stack also runs it at every deploy that changes it (its
DatabaseMigration custom resource); this runs it on demand, for example after restoring a backup.
On AWS it uses your usual credentials (AWS_PROFILE, AWS_REGION); it needs nothing but Python
and them (no local services).
"""

import argparse
import json
import sys
from typing import Any

import botocore.config
import botocore.exceptions

from tools.aws import aws_client
from tools.deploy.stack import stack_name, targets
from tools.devstack.bootstrap import bootstrap_mysql
from tools.stage import function_settings, is_packaged, stage_settings

MIGRATE_FUNCTION = "migrate"  # its name in app.py and .chalice/config.json
# The invoke is synchronous: botocore would give up reading after 60 s by default and call again,
# running a second migration beside the first. So the client waits this much longer than the
# function may run (Lambda ends it at its timeout, and answers), and never retries.
READ_TIMEOUT_MARGIN_S = 30


def migrate_client_config(stage: str) -> botocore.config.Config:
    """The Lambda client's settings: read past the migrate function's timeout, one attempt only."""
    read_timeout_s = function_settings(stage, MIGRATE_FUNCTION).timeout_s + READ_TIMEOUT_MARGIN_S
    return botocore.config.Config(read_timeout=read_timeout_s, retries={"total_max_attempts": 1})


def invoke_migrate(function_name: str, lambda_client: Any) -> dict[str, Any]:
    """Invoke a stack's migrate function once; SystemExit with its error if it fails."""
    try:
        response = lambda_client.invoke(FunctionName=function_name, InvocationType="RequestResponse", Payload=b"{}")
    except botocore.exceptions.ReadTimeoutError:
        raise SystemExit(
            f"{function_name} gave no answer in time; it may still be running: see its logs before running it again"
        ) from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SystemExit(f"{function_name} cannot be invoked: {exc}") from None
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        raise SystemExit(f"{function_name} failed: {payload.get('errorType')}: {payload.get('errorMessage')}")
    return dict(payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--target", choices=[*sorted(targets()), "aws"], default="localstack")
    parser.add_argument("--stack-name", help="default: sluice-<stage>")
    args = parser.parse_args(argv)
    if args.target == "aws" and not is_packaged(args.stage):
        parser.error(f"--target aws needs a stage deployed as a stack (--stage prod, say), not {args.stage}")
    if not is_packaged(args.stage):
        result = bootstrap_mysql(stage_settings(args.stage)).to_dict()
    else:
        function = f"{args.stack_name or stack_name(args.stage)}-{MIGRATE_FUNCTION}"
        endpoint = None if args.target == "aws" else targets()[args.target].endpoint
        lambda_client = aws_client("lambda", endpoint_url=endpoint, config=migrate_client_config(args.stage))
        result = invoke_migrate(function, lambda_client)
    print(
        f"migrate ({args.stage}): database {result['database']} at schema version {result['schema_version']}"
        f" (applied now: {result['applied'] or 'none'}); budget {result['budget']} below max_connections"
        f" {result['max_connections']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
